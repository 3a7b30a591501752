//! What can go wrong encoding or decoding, told apart by what the caller does next.
//!
//! A consumer retries a transient error ([`DecodeError::is_transient`]) and dead-letters any
//! other with [`DecodeError::kind`] and the message in the headers.

use schema_registry_converter::error::SRCError;

use crate::envelope::EnvelopeError;

/// Why a record could not be decoded into an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Neither Avro in the Confluent wire format nor a JSON object, malformed bytes, or no value
    /// at all. Dead-letter it: retrying cannot help.
    #[error("undecodable value: {0}")]
    Undecodable(String),
    /// The value does not fit its event type's schema (or the types the schema's strings stand
    /// for: UUIDs, currency codes). Dead-letter it; the producer must fix `field`.
    #[error("field `{field}` is invalid: {reason}")]
    SchemaInvalid {
        /// Path of the offending field, e.g. `lines[1].unit_price.cents`; empty for the value
        /// as a whole.
        field: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The event type (or, for Avro without an `event_type` header, the writer's record name)
    /// is not one this system knows. Dead-letter it (or upgrade the consumer).
    #[error(
        "unknown event type {0:?}; known types are: {known}",
        known = crate::event_type::known_names()
    )]
    UnknownEventType(String),
    /// The schema registry could not be reached or failed (connection refused, timeout, 5xx).
    /// Transient: retry the same record later, do not dead-letter it.
    #[error("schema registry unavailable: {0}; retry once it is back")]
    RegistryUnavailable(String),
    /// An envelope header or field is malformed or contradicts the value. Dead-letter it.
    #[error("bad envelope: {0}")]
    BadEnvelope(#[from] EnvelopeError),
}

impl DecodeError {
    /// A stable snake_case name for headers, logs and metrics: `undecodable`,
    /// `schema_invalid`, `unknown_event_type`, `registry_unavailable`, `bad_envelope`.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Undecodable(_) => "undecodable",
            DecodeError::SchemaInvalid { .. } => "schema_invalid",
            DecodeError::UnknownEventType(_) => "unknown_event_type",
            DecodeError::RegistryUnavailable(_) => "registry_unavailable",
            DecodeError::BadEnvelope(_) => "bad_envelope",
        }
    }

    /// Whether retrying the same record later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable(_))
    }

    pub(crate) fn unknown_event_type(what: &str) -> Self {
        DecodeError::UnknownEventType(what.to_owned())
    }
}

impl From<FieldError> for DecodeError {
    fn from(e: FieldError) -> Self {
        DecodeError::SchemaInvalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// Why an event could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The event does not fit its own schema: a bug in the producer or in this crate.
    #[error("field `{field}` does not fit the schema: {reason}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The schema registry could not be reached or failed (connection refused, timeout, 5xx).
    /// Transient: retry later.
    #[error("schema registry unavailable: {0}; retry once it is back")]
    RegistryUnavailable(String),
    /// The registry refused the schema (e.g. incompatible with the subject's earlier versions).
    /// Not transient: the schema or the subject's compatibility setting must change.
    #[error("the schema registry refused schema subject {subject}: {reason}")]
    Rejected {
        /// The subject, `<topic>-<record name>`.
        subject: String,
        /// The registry's answer.
        reason: String,
    },
}

impl EncodeError {
    /// A stable snake_case name: `invalid`, `registry_unavailable`, `rejected`.
    pub fn kind(&self) -> &'static str {
        match self {
            EncodeError::Invalid { .. } => "invalid",
            EncodeError::RegistryUnavailable(_) => "registry_unavailable",
            EncodeError::Rejected { .. } => "rejected",
        }
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EncodeError::RegistryUnavailable(_))
    }
}

impl From<FieldError> for EncodeError {
    fn from(e: FieldError) -> Self {
        EncodeError::Invalid {
            field: e.field,
            reason: e.reason,
        }
    }
}

/// A value that does not fit a schema, at a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Whether a registry client error is worth retrying: the connection failed or timed out, or
/// the registry answered 5xx, 408 or 429 (the client itself only flags 502 and 503), or 401 or
/// 403: a credentials problem is the operator's to fix, and until then records must wait
/// rather than be dead-lettered.
pub(crate) fn registry_error_is_transient(e: &SRCError) -> bool {
    e.retriable || http_status(e).is_some_and(|s| s >= 500 || matches!(s, 401 | 403 | 408 | 429))
}

/// The HTTP status the registry answered with, if the error came from an answer.
fn http_status(e: &SRCError) -> Option<u16> {
    let (_, rest) = e.error.split_once("failed with status ")?;
    rest.get(..3)?.parse().ok()
}

/// The registry client's error as one line.
pub(crate) fn describe_registry_error(e: &SRCError) -> String {
    match &e.cause {
        Some(cause) => format!("{}: {cause}", e.error),
        None => e.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: &str) -> SRCError {
        SRCError::new(
            &format!("HTTP request to schema registry failed with status {status}"),
            None,
            false,
        )
    }

    #[test]
    fn server_errors_and_credential_problems_are_transient() {
        for status in [
            "500 Internal Server Error",
            "504 Gateway Timeout",
            "401 Unauthorized",
            "429 Too Many Requests",
        ] {
            assert!(registry_error_is_transient(&answered(status)), "{status}");
        }
    }

    #[test]
    fn a_missing_schema_or_an_incompatible_one_is_not_transient() {
        for status in ["404 Not Found", "409 Conflict", "422 Unprocessable Entity"] {
            assert!(!registry_error_is_transient(&answered(status)), "{status}");
        }
        let unparsable = SRCError::new("Could not get raw schema from response", None, false);
        assert!(!registry_error_is_transient(&unparsable));
    }
}
