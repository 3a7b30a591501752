//! The one rule every text on the wire and in a request follows, whatever the engine behind
//! it: no control characters (PostgreSQL's JSON cannot hold U+0000, SQLite would; a text
//! accepted on one engine and refused on the other would make the system's outcome depend on
//! its storage).

use serde_json::Value;

/// What a caller is told about a text with a control character.
pub const CONTROL_CHARACTERS: &str =
    "must not contain control characters (U+0000 to U+001F, U+007F to U+009F)";

/// The path (`lines[1].note`, `name`) of the first text in `value` that holds a control
/// character, if any.
pub fn control_character(value: &Value) -> Option<String> {
    find(value, String::new())
}

fn find(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(text) => text.chars().any(char::is_control).then_some(path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(name, item)| {
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            find(item, path)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_first_text_with_a_control_character_is_named_by_its_path() {
        assert_eq!(
            control_character(&json!({"name": "Ki\u{0}m"})),
            Some("name".into())
        );
        assert_eq!(
            control_character(&json!({"lines": [{"note": "ok"}, {"note": "a\u{1f}b"}]})),
            Some("lines[1].note".into())
        );
        assert_eq!(
            control_character(&json!({"user": {"email": "a@b.c\u{7f}"}})),
            Some("user.email".into())
        );
        assert_eq!(control_character(&json!({"name": "Kim été", "n": 1})), None);
    }
}
