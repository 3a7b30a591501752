//! Compatibility levels and the Avro checks behind them.
//!
//! A level says in which direction a new schema must be compatible with earlier versions of its
//! subject, and with how many of them. The checks are Avro's schema-resolution rules as
//! `apache_avro::schema_compatibility` implements them: BACKWARD means the new schema can read
//! data written with an earlier one, FORWARD that earlier schemas can read data written with the
//! new one, FULL both. Everything here is pure; which versions exist is the caller's business.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::error::CompatibilityError;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Serialize, Serializer};

/// How a new version of a subject must relate to the earlier ones (Confluent's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatibilityLevel {
    /// No check: any schema is accepted.
    None,
    /// The new schema can read data written with the latest version.
    Backward,
    /// The new schema can read data written with every version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every version can read data written with the new schema.
    ForwardTransitive,
    /// Both BACKWARD and FORWARD, against the latest version.
    Full,
    /// Both BACKWARD and FORWARD, against every version.
    FullTransitive,
}

/// A compatibility level name that is not one of Confluent's seven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid compatibility level {0:?}; valid values are {levels}", levels = CompatibilityLevel::names())]
pub struct InvalidLevel(pub String);

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [Self; 7] = [
        Self::None,
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
    ];

    /// The name used on the wire and in storage, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// The valid names, comma-separated, for error messages.
    pub(crate) fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            Self::Backward | Self::BackwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            Self::Forward | Self::ForwardTransitive | Self::Full | Self::FullTransitive
        )
    }

    fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }
}

impl FromStr for CompatibilityLevel {
    type Err = InvalidLevel;

    /// Parses a level name, ignoring case and surrounding blanks.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let wanted = name.trim();
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| InvalidLevel(name.to_owned()))
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CompatibilityLevel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An earlier version of a subject, as a compatibility check needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Earlier<'a> {
    /// Its version number, for messages.
    pub(crate) version: i64,
    /// Its schema, with referenced types inlined.
    pub(crate) schema: &'a Schema,
}

/// Of a subject's live versions (oldest first), the ones `level` checks a new schema against:
/// all of them when transitive, the latest otherwise, none for NONE.
pub(crate) fn versions_to_check<T>(level: CompatibilityLevel, live: &[T]) -> &[T] {
    if level == CompatibilityLevel::None {
        &[]
    } else if level.is_transitive() {
        live
    } else {
        &live[live.len().saturating_sub(1)..]
    }
}

/// Checks `candidate` against each of `earlier` in the directions `level` requires, and returns
/// one message per incompatibility (empty when compatible).
///
/// A "partial" match, where only some data would resolve (a missing enum symbol or union
/// branch), counts as incompatible, as it does for Confluent.
pub(crate) fn check(
    level: CompatibilityLevel,
    candidate: &Schema,
    earlier: &[Earlier<'_>],
) -> Vec<String> {
    let mut problems = Vec::new();
    for old in earlier {
        if level.checks_backward()
            && let Some(reason) = cannot_read(old.schema, candidate)
        {
            problems.push(format!(
                "version {}: the new schema cannot read data written with it ({level}): {reason}",
                old.version
            ));
        }
        if level.checks_forward()
            && let Some(reason) = cannot_read(candidate, old.schema)
        {
            problems.push(format!(
                "version {}: it cannot read data written with the new schema ({level}): {reason}",
                old.version
            ));
        }
    }
    problems
}

/// Why `reader` cannot read everything written with `writer`, if it cannot.
fn cannot_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only some data would resolve (an enum symbol or a union branch is missing)".to_owned(),
        ),
        Err(error) => Some(describe(&error)),
    }
}

/// A one-line account of an incompatibility, naming the field path where it lies.
fn describe(error: &CompatibilityError) -> String {
    match error {
        CompatibilityError::FieldTypeMismatch(field, inner) => {
            format!("field '{field}': {}", describe(inner))
        }
        CompatibilityError::MissingDefaultValue(field) => {
            format!("field '{field}' is missing in the writer's schema and has no default value")
        }
        // The library renders both types with `{:#?}`, a whole pretty-printed schema tree;
        // the variant name at its start is what a reader of the message needs.
        CompatibilityError::WrongType {
            writer_schema_type,
            reader_schema_type,
        } => format!(
            "written as {}, read as {}",
            kind_of(writer_schema_type),
            kind_of(reader_schema_type)
        ),
        other => other.to_string(),
    }
}

/// `"Record(\n  RecordSchema { …"` → `"record"`.
fn kind_of(debug: &str) -> String {
    debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or(debug)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> Schema {
        let text = format!(r#"{{"type":"record","name":"Order","fields":[{fields}]}}"#);
        Schema::parse_str(&text).unwrap()
    }

    const ID: &str = r#"{"name":"id","type":"string"}"#;
    const NOTE_WITH_DEFAULT: &str = r#"{"name":"note","type":"string","default":""}"#;
    const NOTE: &str = r#"{"name":"note","type":"string"}"#;

    fn versions(schemas: &[Schema]) -> Vec<Earlier<'_>> {
        schemas
            .iter()
            .zip(1..)
            .map(|(schema, version)| Earlier { version, schema })
            .collect()
    }

    #[test]
    fn adding_a_field_with_a_default_is_backward_compatible() {
        // given
        let earlier = [record(ID)];
        // when
        let problems = check(
            CompatibilityLevel::Backward,
            &record(&format!("{ID},{NOTE_WITH_DEFAULT}")),
            &versions(&earlier),
        );
        // then
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn adding_a_field_without_a_default_is_not_backward_compatible() {
        // given
        let earlier = [record(ID)];
        // when
        let problems = check(
            CompatibilityLevel::Backward,
            &record(&format!("{ID},{NOTE}")),
            &versions(&earlier),
        );
        // then
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("version 1"), "{problems:?}");
        assert!(problems[0].contains("'note'"), "{problems:?}");
        assert!(problems[0].contains("no default"), "{problems:?}");
    }

    #[test]
    fn changing_a_string_field_to_int_is_not_backward_compatible() {
        // given
        let earlier = [record(ID)];
        // when
        let problems = check(
            CompatibilityLevel::Backward,
            &record(r#"{"name":"id","type":"int"}"#),
            &versions(&earlier),
        );
        // then
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("field 'id': written as string, read as int"),
            "{problems:?}"
        );
    }

    #[test]
    fn removing_a_field_is_backward_but_not_forward_compatible() {
        // given
        let earlier = [record(&format!("{ID},{NOTE}"))];
        let candidate = record(ID);
        // when
        let backward = check(
            CompatibilityLevel::Backward,
            &candidate,
            &versions(&earlier),
        );
        let forward = check(CompatibilityLevel::Forward, &candidate, &versions(&earlier));
        let full = check(CompatibilityLevel::Full, &candidate, &versions(&earlier));
        // then
        assert!(backward.is_empty(), "{backward:?}");
        assert_eq!(forward.len(), 1);
        assert!(forward[0].contains("'note'"), "{forward:?}");
        assert_eq!(full.len(), 1);
    }

    #[test]
    fn promoting_int_to_long_is_backward_but_not_forward_compatible() {
        // given
        let earlier = [record(r#"{"name":"n","type":"int"}"#)];
        let candidate = record(r#"{"name":"n","type":"long"}"#);
        // when
        let backward = check(
            CompatibilityLevel::Backward,
            &candidate,
            &versions(&earlier),
        );
        let forward = check(CompatibilityLevel::Forward, &candidate, &versions(&earlier));
        // then
        assert!(backward.is_empty(), "{backward:?}");
        assert_eq!(forward.len(), 1);
    }

    #[test]
    fn dropping_an_enum_symbol_is_forward_but_not_backward_compatible() {
        // given
        let enum_of = |symbols: &str| {
            Schema::parse_str(&format!(
                r#"{{"type":"enum","name":"Status","symbols":[{symbols}]}}"#
            ))
            .unwrap()
        };
        let earlier = [enum_of(r#""OPEN","CLOSED""#)];
        let candidate = enum_of(r#""OPEN""#);
        // when
        let forward = check(CompatibilityLevel::Forward, &candidate, &versions(&earlier));
        let backward = check(
            CompatibilityLevel::Backward,
            &candidate,
            &versions(&earlier),
        );
        // then: old readers know every new symbol, but the new reader cannot read CLOSED
        assert!(forward.is_empty(), "{forward:?}");
        assert_eq!(backward.len(), 1);
        assert!(backward[0].contains("only some data"), "{backward:?}");
    }

    #[test]
    fn none_checks_nothing() {
        // given
        let live = [1, 2, 3];
        // when
        let chosen = versions_to_check(CompatibilityLevel::None, &live);
        // then
        assert!(chosen.is_empty());
    }

    #[test]
    fn non_transitive_levels_check_only_the_latest_version() {
        // given
        let live = [1, 2, 3];
        // when / then
        for level in [
            CompatibilityLevel::Backward,
            CompatibilityLevel::Forward,
            CompatibilityLevel::Full,
        ] {
            assert_eq!(versions_to_check(level, &live), &[3]);
        }
        assert!(versions_to_check::<i32>(CompatibilityLevel::Full, &[]).is_empty());
    }

    #[test]
    fn transitive_levels_check_every_version() {
        // given
        let live = [1, 2, 3];
        // when / then
        for level in [
            CompatibilityLevel::BackwardTransitive,
            CompatibilityLevel::ForwardTransitive,
            CompatibilityLevel::FullTransitive,
        ] {
            assert_eq!(versions_to_check(level, &live), &[1, 2, 3]);
        }
    }

    #[test]
    fn a_schema_that_reads_only_the_latest_version_fails_a_transitive_check() {
        // given: v1 lacks `note`, v2 added it with a default, v3 drops the default
        let earlier = [record(ID), record(&format!("{ID},{NOTE_WITH_DEFAULT}"))];
        let candidate = record(&format!("{ID},{NOTE}"));
        let all = versions(&earlier);
        // when
        let latest = check(
            CompatibilityLevel::Backward,
            &candidate,
            versions_to_check(CompatibilityLevel::Backward, &all),
        );
        let transitive = check(
            CompatibilityLevel::BackwardTransitive,
            &candidate,
            versions_to_check(CompatibilityLevel::BackwardTransitive, &all),
        );
        // then
        assert!(latest.is_empty(), "{latest:?}");
        assert_eq!(transitive.len(), 1);
        assert!(transitive[0].starts_with("version 1:"), "{transitive:?}");
    }

    #[test]
    fn level_names_parse_in_any_case_and_print_in_upper_case() {
        // given / when
        let parsed: CompatibilityLevel = " full_transitive ".parse().unwrap();
        // then
        assert_eq!(parsed, CompatibilityLevel::FullTransitive);
        assert_eq!(parsed.to_string(), "FULL_TRANSITIVE");
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
        }
    }

    #[test]
    fn an_unknown_level_name_is_rejected_with_the_valid_ones() {
        // given / when
        let error = "SIDEWAYS".parse::<CompatibilityLevel>().unwrap_err();
        // then
        assert!(error.to_string().contains("SIDEWAYS"));
        assert!(error.to_string().contains("FULL_TRANSITIVE"));
    }
}
