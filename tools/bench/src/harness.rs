//! Each function alone, with a Runtime API of the benchmark's own: release binary size, init
//! (process start to its first `GET /next`), the first invocation, warm invocations, and peak
//! resident memory (VmHWM) after them.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{Mutex, mpsc};

use crate::Error;

/// Warm invocations after the first, for the warm figure and the memory peak.
const WARM: usize = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub function: String,
    pub binary_bytes: u64,
    pub init_ms: f64,
    pub first_invocation_ms: f64,
    pub warm_invocation_ms: f64,
    pub peak_mib: f64,
}

enum Signal {
    /// The instance asked for work.
    Next(Instant),
    /// It answered an invocation (its response or an error).
    Done(Instant),
}

struct Api {
    events: Mutex<mpsc::Receiver<Bytes>>,
    signals: mpsc::Sender<Signal>,
}

async fn serve(
    api: Arc<Api>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if request.method() == hyper::Method::GET && path.ends_with("/invocation/next") {
        let _ = api.signals.send(Signal::Next(Instant::now())).await;
        let Some(event) = api.events.lock().await.recv().await else {
            return Ok(Response::builder()
                .status(410)
                .body(Full::default())
                .expect("response"));
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        let answer = Response::builder()
            .header(
                "lambda-runtime-aws-request-id",
                uuid::Uuid::now_v7().to_string(),
            )
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(event))
            .expect("response");
        return Ok(answer);
    }
    let _ = request.into_body().collect().await;
    if path.ends_with("/response") || path.ends_with("/error") {
        let _ = api.signals.send(Signal::Done(Instant::now())).await;
    }
    Ok(Response::builder()
        .status(202)
        .body(Full::default())
        .expect("response"))
}

async fn next(signals: &mut mpsc::Receiver<Signal>, function: &str) -> Result<Signal, Error> {
    match tokio::time::timeout(Duration::from_secs(30), signals.recv()).await {
        Ok(Some(signal)) => Ok(signal),
        _ => crate::fail(format!("{function} did not reach its Runtime API in 30 s")),
    }
}

fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A function's process on a Runtime API of the benchmark's, from its start.
struct Instance {
    child: tokio::process::Child,
    server: tokio::task::JoinHandle<()>,
    events: mpsc::Sender<Bytes>,
    signals: mpsc::Receiver<Signal>,
    started: Instant,
}

impl Instance {
    async fn start(
        function: &str,
        binary: &Path,
        environment: &BTreeMap<String, String>,
        log: &Path,
    ) -> Result<Self, Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (event_tx, event_rx) = mpsc::channel(1);
        let (signal_tx, signals) = mpsc::channel(4);
        let api = Arc::new(Api {
            events: Mutex::new(event_rx),
            signals: signal_tx,
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let api = api.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| serve(api.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let output = std::fs::File::create(log)?;
        let started = Instant::now();
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(environment)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self {
            child,
            server,
            events: event_tx,
            signals,
            started,
        })
    }

    /// Init: from the process's start to its first `GET /next`.
    async fn ready(&mut self, function: &str) -> Result<Duration, Error> {
        let Signal::Next(ready) = next(&mut self.signals, function).await? else {
            return crate::fail(format!("{function}: no GET /next"));
        };
        Ok(ready - self.started)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}

/// The init of one cold start, the instance stopped at its first `GET /next`: nothing invoked,
/// so nothing it would set off.
pub async fn init_only(
    function: &str,
    binary: &Path,
    environment: &BTreeMap<String, String>,
    log: &Path,
) -> Result<Duration, Error> {
    let mut instance = Instance::start(function, binary, environment, log).await?;
    let init = instance.ready(function).await;
    instance.stop().await;
    init
}

/// Runs `binary` with `environment`, hands it `event` once cold and `WARM` times warm.
pub async fn measure(
    function: &str,
    binary: &Path,
    environment: &BTreeMap<String, String>,
    event: Bytes,
    log: &Path,
) -> Result<Figures, Error> {
    let mut instance = Instance::start(function, binary, environment, log).await?;
    let pid = instance.child.id().unwrap_or_default();
    let init = instance.ready(function).await?;
    let mut invocations = Vec::with_capacity(WARM + 1);
    for _ in 0..=WARM {
        let handed = Instant::now();
        instance.events.send(event.clone()).await?;
        loop {
            if let Signal::Done(done) = next(&mut instance.signals, function).await? {
                invocations.push(done - handed);
                break;
            }
        }
    }
    let peak = peak_kib(pid).unwrap_or(0);
    instance.stop().await;
    let mut warm: Vec<Duration> = invocations[1..].to_vec();
    warm.sort();
    Ok(Figures {
        function: function.to_owned(),
        binary_bytes: std::fs::metadata(binary)?.len(),
        init_ms: init.as_secs_f64() * 1000.0,
        first_invocation_ms: invocations[0].as_secs_f64() * 1000.0,
        warm_invocation_ms: warm[warm.len() / 2].as_secs_f64() * 1000.0,
        peak_mib: peak as f64 / 1024.0,
    })
}
