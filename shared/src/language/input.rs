//! The rules every input a client sends follows, whichever context receives it: ids, display
//! names and currency codes (docs/openapi.yaml's schemas `Id`, `Name`, `Currency`), and the
//! error naming the offending field.

use serde::Serialize;

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
        let openapi = include_str!("../../../docs/openapi.yaml");
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
}
