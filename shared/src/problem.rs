//! RFC 9457 problem details (`application/problem+json`): every HTTP error this system returns.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One offending input field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// A JSON path into the request, such as `lineItems[3].quantity`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest id (consumer, restaurant, menu item), in characters.
pub const MAX_ID_CHARS: usize = 64;

/// The rule for every id a client sends: 1 to 64 characters, not all spaces, no control or
/// format characters (docs/openapi.yaml, schema `Id`). Adds the field's error to `errors`.
pub fn check_id(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    let message = if value.trim().is_empty() {
        "must not be empty".to_owned()
    } else if value.chars().count() > MAX_ID_CHARS {
        format!("must be at most {MAX_ID_CHARS} characters")
    } else if let Some(c) = value.chars().find(|&c| c.is_control() || is_format(c)) {
        format!(
            "must not contain control or format characters, such as U+{:04X}",
            c as u32
        )
    } else {
        return;
    };
    errors.push(FieldError::new(field, message));
}

/// A format character (Unicode category Cf: bidirectional controls, zero-width spaces, ...):
/// invisible, and able to make one id look like another or reorder the text around it.
pub fn is_format(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    c.general_category() == GeneralCategory::Format
}

/// The format characters a name keeps: the zero-width non-joiner (Persian, Kurdish and Indic
/// spelling needs it) and joiner (emoji sequences).
pub const NAME_FORMAT_CHARACTERS: [char; 2] = ['\u{200C}', '\u{200D}'];

/// The longest display name (a consumer's, a restaurant's, a menu item's), in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A display name: 1 to 200 characters, not all spaces, no control or format characters but
/// the zero-width non-joiner and joiner.
pub fn check_name(errors: &mut Vec<FieldError>, field: &str, name: &str) {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || (is_format(c) && !NAME_FORMAT_CHARACTERS.contains(&c)))
    {
        errors.push(FieldError::new(
            field,
            format!(
                "must be 1 to {MAX_NAME_CHARS} characters, not all spaces, no control or format \
                 characters"
            ),
        ));
    }
}

/// An ISO 4217 code: three capital letters.
pub fn check_currency(errors: &mut Vec<FieldError>, field: &str, currency: &str) {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            field,
            "must be three capital letters (ISO 4217)",
        ));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A stable identifier of the kind of problem, relative to the API's base URL.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, in words a person can act on.
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds after which the same request may pass, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// The same problem, telling the client when to come back.
    pub fn retry_after(self, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..self
        }
    }

    /// A request whose fields break the documented bounds: every broken field is listed.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-fields",
                "Invalid fields",
                detail,
            )
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// A body past a limit (`413`): the body's size, or what it would make, in `detail`.
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Request body too large",
            detail,
        )
    }

    /// A body over `limit` bytes.
    pub fn body_over(bytes: usize, limit: usize) -> Self {
        Self::payload_too_large(format!("the body is {bytes} bytes; the limit is {limit}"))
    }

    /// A request the verified caller may not make; `detail` names the rule that refused it.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// A dependency failed for now (`503`): the same request may succeed in a moment.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
            detail,
        )
    }

    /// For failures of ours, not the caller's: the detail stays generic, the log has the cause.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request could not be completed; it is safe to retry with the same Idempotency-Key",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let self_retry_after = self.retry_after;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self_retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters `keep` refuses, as the ranges of a regex character class written in YAML's
    /// double-quoted escapes (`\u00AD`, `\U000110BD`).
    fn refused_ranges(refused: impl Fn(char) -> bool) -> String {
        let escape = |c: char| match c as u32 {
            n @ ..=0xFFFF => format!("\\u{n:04X}"),
            n => format!("\\U{n:08X}"),
        };
        let mut text = String::new();
        let mut run: Option<(char, char)> = None;
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            match (refused(c), run) {
                (true, Some((start, end))) if end as u32 + 1 == c as u32 => run = Some((start, c)),
                (true, _) => {
                    if let Some((start, end)) = run.replace((c, c)) {
                        text += &range(start, end, &escape);
                    }
                }
                (false, _) => {}
            }
        }
        if let Some((start, end)) = run {
            text += &range(start, end, &escape);
        }
        text
    }

    fn range(start: char, end: char, escape: &impl Fn(char) -> String) -> String {
        match start == end {
            true => escape(start),
            false => format!("{}-{}", escape(start), escape(end)),
        }
    }

    #[test]
    fn the_documented_schemas_refuse_exactly_the_format_characters_the_code_refuses() {
        let openapi = include_str!("../../docs/openapi.yaml");
        // Any number of allowed characters around one that is not a space either.
        let pattern = |refused: String| {
            let class = format!("\\\\u0000-\\\\u001F\\\\u007F-\\\\u009F{refused}");
            format!("pattern: \"^[^{class}]*[^\\\\s{class}][^{class}]*$\"\n")
        };
        let id = pattern(refused_ranges(is_format));
        let name = pattern(refused_ranges(|c| {
            is_format(c) && !NAME_FORMAT_CHARACTERS.contains(&c)
        }));
        // Each schema's own lines, from its name to the next schema.
        let schema = |name: &str| -> String {
            let start = openapi.find(&format!("\n    {name}:\n")).expect(name) + 1;
            let mut lines = openapi[start..].lines();
            let header = lines.next().unwrap_or_default();
            let body = lines.take_while(|line| line.starts_with("      "));
            std::iter::once(header)
                .chain(body)
                .map(|line| format!("{line}\n"))
                .collect()
        };
        assert!(schema("Id").contains(&id), "schema Id should be {id}");
        assert!(
            schema("Name").contains(&name),
            "schema Name should be {name}"
        );
    }

    #[test]
    fn ids_and_names_refuse_bidirectional_controls_and_zero_width_characters() {
        for refused in [
            "abc\u{202E}def",
            "a\u{200B}b",
            "\u{2066}x",
            "\u{FEFF}",
            "x\u{E0041}",
        ] {
            let mut errors = Vec::new();
            check_id(&mut errors, "consumerId", refused);
            check_name(&mut errors, "name", refused);
            assert_eq!(errors.len(), 2, "{refused:?}: {errors:?}");
        }
        let mut errors = Vec::new();
        check_name(&mut errors, "name", "Chef \u{1F469}\u{200D}\u{1F373}");
        check_name(
            &mut errors,
            "name",
            "\u{631}\u{633}\u{62A}\u{648}\u{631}\u{627}\u{646}\u{200C}\u{647}\u{627}",
        );
        check_id(&mut errors, "consumerId", "caf\u{E9}-1");
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn invalid_fields_name_every_field_in_the_detail() {
        let problem = Problem::invalid_fields(vec![
            FieldError::new("consumerId", "must not be empty"),
            FieldError::new("lineItems[0].quantity", "must be between 1 and 100"),
        ]);
        assert_eq!(problem.status, 422);
        assert_eq!(
            problem.detail,
            "consumerId: must not be empty; lineItems[0].quantity: must be between 1 and 100"
        );
    }

    #[test]
    fn responses_carry_the_problem_media_type() {
        let response = Problem::not_found("no order 42").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
