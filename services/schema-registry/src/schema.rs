//! Avro schema text in, canonical text and a checkable schema out.
//!
//! A schema is identified by its canonical text, the parsed schema serialised again: two texts
//! that differ only in layout, key order or `{"type":"string"}` versus `"string"` get the same
//! id, while docs, defaults and custom attributes still count. Types from other subjects come
//! in through references, whose texts are parsed together with the schema. This module does
//! no I/O: fetching referenced texts is the registry's job.

use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use serde::{Deserialize, Serialize};

/// The only schema type served, Confluent's default when a request names none.
pub(crate) const AVRO: &str = "AVRO";

/// A named type taken from a version of another subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Reference {
    /// The full name of the type as the schema uses it, e.g. `com.example.Address`.
    pub(crate) name: String,
    /// The subject holding the type's schema.
    pub(crate) subject: String,
    /// The version of that subject.
    pub(crate) version: i64,
}

/// Why a schema cannot be registered; the client must fix the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SchemaError {
    /// JSON Schema, Protobuf or an unknown type was asked for.
    #[error("Schema type {0} is not supported: this registry serves AVRO schemas only")]
    UnsupportedType(String),
    /// The text is not a valid Avro schema (or a reference does not resolve).
    #[error("Invalid schema: {0}")]
    Invalid(String),
}

/// A schema that parsed, with what the registry stores and checks.
#[derive(Debug, Clone)]
pub(crate) struct ParsedSchema {
    /// The text stored and served, which identifies the schema.
    pub(crate) canonical: String,
    /// The Rabin fingerprint of the Parsing Canonical Form, in hex: an index, not an identity.
    pub(crate) fingerprint: String,
    /// The schema with referenced types inlined, for compatibility checks.
    pub(crate) resolved: Schema,
}

/// Accepts a request's `schemaType`: absent or `AVRO` (in any case).
pub(crate) fn accept_type(schema_type: Option<&str>) -> Result<(), SchemaError> {
    match schema_type {
        None => Ok(()),
        Some(name) if name.eq_ignore_ascii_case(AVRO) => Ok(()),
        Some(other) => Err(SchemaError::UnsupportedType(other.to_owned())),
    }
}

/// Parses `text` with the texts of every schema it references, directly or not.
pub(crate) fn parse(text: &str, referenced: &[String]) -> Result<ParsedSchema, SchemaError> {
    if text.trim().is_empty() {
        return Err(SchemaError::Invalid("the schema is empty".to_owned()));
    }
    let invalid = |error: apache_avro::Error| SchemaError::Invalid(error.to_string());
    let (schema, named) = if referenced.is_empty() {
        (Schema::parse_str(text).map_err(invalid)?, Vec::new())
    } else {
        Schema::parse_str_with_list(text, referenced).map_err(invalid)?
    };
    let canonical =
        serde_json::to_string(&schema).map_err(|error| SchemaError::Invalid(error.to_string()))?;
    let fingerprint = schema.fingerprint::<Rabin>().to_string();
    let mut resolved = schema;
    resolved.denormalize(&named).map_err(invalid)?;
    Ok(ParsedSchema {
        canonical,
        fingerprint,
        resolved,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{
        "type": "record", "name": "Order", "namespace": "com.example",
        "doc": "An order.",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": {"type": "string"}, "default": "none"}
        ]
    }"#;

    #[test]
    fn layout_does_not_change_the_canonical_text() {
        // given
        let compact = r#"{"fields":[{"type":"string","name":"id"},{"name":"note","default":"none","type":"string"}],"doc":"An order.","name":"com.example.Order","type":"record"}"#;
        // when
        let pretty = parse(ORDER, &[]).unwrap();
        let other = parse(compact, &[]).unwrap();
        // then
        assert_eq!(pretty.canonical, other.canonical);
        assert_eq!(pretty.fingerprint, other.fingerprint);
    }

    #[test]
    fn the_canonical_text_keeps_docs_and_defaults_and_parses_again() {
        // given
        let parsed = parse(ORDER, &[]).unwrap();
        // when
        let again = parse(&parsed.canonical, &[]).unwrap();
        // then
        assert!(
            parsed.canonical.contains(r#""doc":"An order.""#),
            "{}",
            parsed.canonical
        );
        assert!(
            parsed.canonical.contains(r#""default":"none""#),
            "{}",
            parsed.canonical
        );
        assert_eq!(again.canonical, parsed.canonical);
    }

    #[test]
    fn a_changed_default_is_a_different_schema() {
        // given
        let changed = ORDER.replace(r#""default": "none""#, r#""default": "n/a""#);
        // when / then
        assert_ne!(
            parse(ORDER, &[]).unwrap().canonical,
            parse(&changed, &[]).unwrap().canonical
        );
    }

    #[test]
    fn text_that_is_not_avro_is_invalid() {
        // given / when / then
        for text in [
            "",
            "{",
            r#"{"type":"record","name":"X"}"#,
            r#"{"type":"money"}"#,
        ] {
            assert!(
                matches!(parse(text, &[]), Err(SchemaError::Invalid(_))),
                "{text:?} parsed"
            );
        }
    }

    #[test]
    fn a_referenced_type_resolves_only_with_its_text() {
        // given
        let address = r#"{"type":"record","name":"Address","namespace":"com.example","fields":[{"name":"city","type":"string"}]}"#;
        let customer = r#"{"type":"record","name":"Customer","namespace":"com.example","fields":[{"name":"address","type":"com.example.Address"}]}"#;
        // when
        let without = parse(customer, &[]);
        let with = parse(customer, &[address.to_owned()]).unwrap();
        // then: stored by name, checked with the type inlined
        assert!(matches!(without, Err(SchemaError::Invalid(_))));
        assert!(
            with.canonical.contains(r#""type":"com.example.Address""#),
            "{}",
            with.canonical
        );
        let inlined = serde_json::to_string(&with.resolved).unwrap();
        assert!(inlined.contains(r#""city""#), "{inlined}");
    }

    #[test]
    fn only_avro_is_accepted() {
        // given / when / then
        assert_eq!(accept_type(None), Ok(()));
        assert_eq!(accept_type(Some("AVRO")), Ok(()));
        assert_eq!(accept_type(Some("avro")), Ok(()));
        assert_eq!(
            accept_type(Some("PROTOBUF")),
            Err(SchemaError::UnsupportedType("PROTOBUF".to_owned()))
        );
        assert!(accept_type(Some("JSON")).is_err());
    }
}
