//! What every HTTP function shares: JSON bodies decoded with the path of any error, the
//! correlation id header, and problem+json answers for routes and methods it does not serve.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::language::input::FieldError;
use crate::platform::problem::Problem;

pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");
const MAX_HEADER_TOKEN_CHARS: usize = 128;

/// The body decoded as `T`, or `400` naming the JSON path of what does not fit.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let decoder = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(decoder).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        malformed(FieldError::new(field, e.inner().to_string()))
    })
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

pub fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    if media_type.as_deref() == Some("application/json") {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!(
            "send the body as JSON with Content-Type: application/json (got {})",
            media_type.unwrap_or_else(|| "no Content-Type".into())
        ),
    ))
}

pub fn malformed(error: FieldError) -> Problem {
    Problem {
        errors: vec![error.clone()],
        ..Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            format!("{}: {}", error.field, error.message),
        )
    }
}

/// A header value that is 1 to 128 visible ASCII characters, or `None` when absent; `400`
/// naming the header as `label` otherwise.
pub fn header_token(
    headers: &HeaderMap,
    name: &HeaderName,
    label: &str,
) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(text)
            if (1..=MAX_HEADER_TOKEN_CHARS).contains(&text.len())
                && text.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(text.to_owned()))
        }
        _ => Err(invalid_header(label)),
    }
}

fn invalid_header(name: &str) -> Problem {
    let message = format!("must be 1 to {MAX_HEADER_TOKEN_CHARS} visible ASCII characters");
    Problem {
        errors: vec![FieldError::new(name, message.clone())],
        ..Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-header",
            "Invalid header",
            format!("{name}: {message}"),
        )
    }
}

/// The caller's `X-Correlation-Id`, or a new one when it sent none; echoed in the response. One
/// that breaks the documented form is refused (`400`, answered with a new id).
pub fn correlation_id(headers: &HeaderMap) -> (String, Option<Problem>) {
    let new = || Uuid::now_v7().to_string();
    match header_token(headers, &CORRELATION_ID, "X-Correlation-Id") {
        Ok(id) => (id.unwrap_or_else(new), None),
        Err(problem) => (new(), Some(problem)),
    }
}

pub fn with_correlation_id(mut response: Response, correlation_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}
