//! What every HTTP function shares: JSON bodies decoded with the path of any error, the
//! correlation id as one layer (`correlation_layer`), and problem+json answers for routes and
//! methods it does not serve.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// The request's correlation id, as `correlation_layer` settled it: a handler takes it as
/// `Extension<CorrelationId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

/// The correlation id of every request, in one layer before any handler: the caller's
/// `X-Correlation-Id`, or a new one when it sent none, echoed in the response. One that breaks
/// the documented form is refused (`400`, answered with a new id). Install it with
/// `axum::middleware::from_fn(correlation_layer)`.
pub async fn correlation_layer(mut request: Request, next: Next) -> Response {
    let new = || Uuid::now_v7().to_string();
    let (id, response) = match header_token(request.headers(), &CORRELATION_ID, "X-Correlation-Id")
    {
        Ok(id) => {
            let id = id.unwrap_or_else(new);
            request.extensions_mut().insert(CorrelationId(id.clone()));
            (id, next.run(request).await)
        }
        Err(problem) => (new(), problem.into_response()),
    };
    with_correlation_id(response, &id)
}

fn with_correlation_id(mut response: Response, correlation_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        response.headers_mut().insert(CORRELATION_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    /// The id the handler saw, and the answer's status and echoed id.
    async fn sent(correlation_id: Option<&str>) -> (Option<String>, StatusCode, String) {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let handler_saw = seen.clone();
        let app = Router::new()
            .route(
                "/",
                get(
                    move |Extension(CorrelationId(id)): Extension<CorrelationId>| async move {
                        *handler_saw.lock().unwrap() = Some(id);
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .layer(axum::middleware::from_fn(correlation_layer));
        let mut request = axum::http::Request::builder().uri("/");
        if let Some(id) = correlation_id {
            request = request.header("x-correlation-id", id);
        }
        let response = app
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let echoed = response.headers()[CORRELATION_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let seen = seen.lock().unwrap().clone();
        (seen, response.status(), echoed)
    }

    #[tokio::test]
    async fn the_callers_correlation_id_reaches_the_handler_and_is_echoed() {
        let (seen, status, echoed) = sent(Some("trace-me")).await;
        assert_eq!(
            (seen.as_deref(), status, echoed.as_str()),
            (Some("trace-me"), StatusCode::NO_CONTENT, "trace-me")
        );
    }

    #[tokio::test]
    async fn without_one_a_new_id_is_made_for_the_handler_and_the_answer() {
        let (seen, status, echoed) = sent(None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(Uuid::parse_str(&echoed).is_ok(), "{echoed}");
        assert_eq!(seen, Some(echoed));
    }

    #[tokio::test]
    async fn one_outside_the_documented_form_is_refused_before_the_handler() {
        let (seen, status, echoed) = sent(Some(&"x".repeat(129))).await;
        assert_eq!((seen, status), (None, StatusCode::BAD_REQUEST));
        assert!(
            Uuid::parse_str(&echoed).is_ok(),
            "answered with a new id: {echoed}"
        );
    }
}
