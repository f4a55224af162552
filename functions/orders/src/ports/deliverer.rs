//! Sending a signed outcome to a callback URL already checked (`crate::app::callbacks`).

use std::future::Future;
use std::time::Duration;

use crate::domain::callback_urls::Checked;

/// How long one delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one signed POST to an address already checked.
pub trait Deliverer: Send + Sync {
    /// The HTTP status the receiver answered.
    fn post(
        &self,
        target: &Checked,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<u16, String>> + Send;
}
