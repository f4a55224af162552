//! The order API as a client sees it: place an order, read it, and follow it to its decision with
//! the long poll (`Prefer: wait` and `If-None-Match`), never a polling loop of its own.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long one request waits for a change; the API holds it at most 20 s.
pub const WAIT_SECONDS: u64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the API: {0}")]
    Http(String),
    #[error("the API answered {status}: {body}{}", hint(*.status))]
    Refused { status: u16, body: String },
}

pub struct Api {
    base: String,
    token: Option<String>,
    http: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// What a read of the order gave: its state and ETag, or nothing new.
pub enum Read {
    Order { etag: Option<String>, order: Value },
    Unchanged,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| ClientError::Http(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), ClientError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(body.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// `POST /orders`; the answer's `orderId`.
    pub async fn place(&self, order: &Value, key: Option<String>) -> Result<String, ClientError> {
        let headers: Vec<_> = key.into_iter().map(|k| ("idempotency-key", k)).collect();
        let (status, _, body) = self
            .send(Method::POST, "/orders", &headers, Some(order))
            .await?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
        match answer["orderId"].as_str() {
            Some(id) if status == StatusCode::ACCEPTED => Ok(id.to_owned()),
            _ => Err(refused(status, &body)),
        }
    }

    /// `GET /orders/{id}`, waiting up to `wait` seconds for a change from `etag`.
    pub async fn read(
        &self,
        id: &str,
        etag: Option<&str>,
        wait: Option<u64>,
    ) -> Result<Read, ClientError> {
        let mut headers = Vec::new();
        if let Some(etag) = etag {
            headers.push(("if-none-match", etag.to_owned()));
        }
        if let Some(wait) = wait {
            headers.push(("prefer", format!("wait={wait}")));
        }
        let (status, response_headers, body) = self
            .send(Method::GET, &format!("/orders/{id}"), &headers, None)
            .await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Read::Unchanged),
            StatusCode::OK => Ok(Read::Order {
                etag: response_headers
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                order: serde_json::from_slice(&body)
                    .map_err(|e| ClientError::Http(e.to_string()))?,
            }),
            _ => Err(refused(status, &body)),
        }
    }

    /// Follows the order until it is decided, calling `seen` with each state it passes through
    /// (the first one included), and returns the decided order.
    pub async fn follow(
        &self,
        id: &str,
        mut seen: impl FnMut(&Value),
    ) -> Result<Value, ClientError> {
        let mut etag: Option<String> = None;
        loop {
            match self
                .read(id, etag.as_deref(), etag.as_ref().map(|_| WAIT_SECONDS))
                .await?
            {
                Read::Unchanged => continue,
                Read::Order { etag: tag, order } => {
                    seen(&order);
                    if is_decided(&order) {
                        return Ok(order);
                    }
                    etag = tag;
                }
            }
        }
    }
}

/// What to do about a refusal of the token.
fn hint(status: u16) -> &'static str {
    match status {
        401 => {
            " (send a valid token with --token or ORDERCTL_TOKEN; locally: \
             python -m infra.devstack token --sub CONSUMER_ID)"
        }
        403 => " (the token's consumer may act for itself only)",
        _ => "",
    }
}

fn refused(status: StatusCode, body: &[u8]) -> ClientError {
    ClientError::Refused {
        status: status.as_u16(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

pub fn is_decided(order: &Value) -> bool {
    matches!(order["status"].as_str(), Some("VALIDATED" | "REJECTED"))
}

/// A `Money` of the API as a person reads it (`25.00 EUR`); as sent when it is none.
pub fn shown_money(total: &Value) -> String {
    match serde_json::from_value::<shared::language::events::Money>(total.clone()) {
        Ok(money) => money.to_string(),
        Err(_) => total.to_string(),
    }
}

/// One line of progress: how long since the order was placed, its status, and, once decided,
/// its total or its reasons.
pub fn progress_line(order: &Value) -> String {
    let history = order["history"].as_array().cloned().unwrap_or_default();
    let at = |change: Option<&Value>| {
        change
            .and_then(|c| c["at"].as_str())
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
    };
    let elapsed = match (at(history.first()), at(history.last())) {
        (Some(first), Some(last)) => (last - first).num_milliseconds() as f64 / 1000.0,
        _ => 0.0,
    };
    let status = order["status"].as_str().unwrap_or("?");
    let mut line = format!("{elapsed:>7.2} s  {status}");
    if let Some(total) = order.get("total") {
        line += &format!("  total {}", shown_money(total));
    }
    if let Some(reasons) = order["rejectionReasons"].as_array() {
        let reasons: Vec<&str> = reasons.iter().filter_map(Value::as_str).collect();
        line += &format!("  {}", reasons.join("; "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_shows_time_since_placement_status_and_outcome() {
        let order = json!({"status": "VALIDATED", "total": {"currency": "EUR", "amountMinor": 2350},
            "history": [{"status": "PENDING", "at": "2026-11-27T12:00:00.000Z"},
                        {"status": "VALIDATED", "at": "2026-11-27T12:00:00.410Z"}]});
        assert_eq!(
            progress_line(&order),
            "   0.41 s  VALIDATED  total 23.50 EUR"
        );
        let rejected = json!({"status": "REJECTED", "rejectionReasons": ["VALIDATION_TIMEOUT"],
            "history": [{"status": "PENDING", "at": "2026-11-27T12:00:00Z"},
                        {"status": "REJECTED", "at": "2026-11-27T12:15:00Z"}]});
        assert_eq!(
            progress_line(&rejected),
            " 900.00 s  REJECTED  VALIDATION_TIMEOUT"
        );
        assert!(is_decided(&rejected) && !is_decided(&json!({"status": "PENDING"})));
    }
}
