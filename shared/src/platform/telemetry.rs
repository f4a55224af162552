//! JSON logs through `tracing`, one object per line, as CloudWatch Logs Insights reads them.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. The level comes from `AWS_LAMBDA_LOG_LEVEL` (set by Lambda's
/// advanced logging controls) or `RUST_LOG`, and defaults to `info`.
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|level| EnvFilter::new(level.to_lowercase()))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_ansi(false)
        .with_target(false)
        .init();
}

static COLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// True for the first invocation this process serves (a Lambda cold start), false after.
pub fn cold_start() -> bool {
    COLD.swap(false, std::sync::atomic::Ordering::Relaxed)
}
