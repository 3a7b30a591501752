//! The envelope: what every record carries besides its payload, as Kafka headers.
//!
//! Headers (UTF-8 text): `event_id` (UUIDv7 for events we produce), `event_type`,
//! `aggregate_id`, `occurred_at` (RFC 3339, UTC, milliseconds), `correlation_id`,
//! `causation_id` and `traceparent` (W3C trace context); the last two only when present.
//!
//! This module builds envelopes and reads them back from headers; it does not decide what
//! fills the gaps when a record (typically one typed into kcat) lacks some: that is the
//! codec's job.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;
use crate::timestamp;

/// Header names, exactly as they appear on records.
pub mod headers {
    /// The event's unique id, a UUID; the key of deduplication.
    pub const EVENT_ID: &str = "event_id";
    /// The dotted event type, e.g. `order.created`.
    pub const EVENT_TYPE: &str = "event_type";
    /// The id of the aggregate the event belongs to (also the record key).
    pub const AGGREGATE_ID: &str = "aggregate_id";
    /// When the event happened, RFC 3339 in UTC with milliseconds.
    pub const OCCURRED_AT: &str = "occurred_at";
    /// The id shared by every event of one business flow (e.g. an order's saga).
    pub const CORRELATION_ID: &str = "correlation_id";
    /// The id of the event that caused this one, if any.
    pub const CAUSATION_ID: &str = "causation_id";
    /// The W3C `traceparent` of the trace the event was produced in, if any.
    pub const TRACEPARENT: &str = "traceparent";

    /// Every envelope header, in the order [`Envelope::to_headers`](super::Envelope::to_headers)
    /// writes them.
    pub const ALL: [&str; 7] = [
        EVENT_ID,
        EVENT_TYPE,
        AGGREGATE_ID,
        OCCURRED_AT,
        CORRELATION_ID,
        CAUSATION_ID,
        TRACEPARENT,
    ];
}

/// The metadata of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Unique id of the event; consumers deduplicate by it.
    pub event_id: Uuid,
    /// The dotted event type, e.g. `"order.created"`.
    pub event_type: String,
    /// The aggregate the event belongs to; also the record key.
    pub aggregate_id: String,
    /// When the event happened (millisecond precision).
    pub occurred_at: DateTime<Utc>,
    /// Shared by every event of one flow; the first event's own id.
    pub correlation_id: Uuid,
    /// The event that caused this one.
    pub causation_id: Option<Uuid>,
    /// The W3C trace context the event was produced in.
    pub traceparent: Option<String>,
}

/// A `traceparent` (W3C trace context, version 00) for a new, sampled trace: random trace and
/// span ids.
fn new_trace() -> String {
    let trace = Uuid::new_v4().as_u128() | 1;
    let span = (Uuid::new_v4().as_u128() as u64) | 1;
    format!("00-{trace:032x}-{span:016x}-01")
}

impl Envelope {
    /// The envelope of a new event that starts a flow: a fresh UUIDv7 id, which is also the
    /// correlation id; `occurred_at` is the payload's own timestamp (to the millisecond); and a
    /// new W3C trace, so that every record carries a `traceparent` its consumers continue.
    pub fn new(event: &Event) -> Self {
        let event_id = Uuid::now_v7();
        Envelope {
            event_id,
            event_type: event.event_type().to_owned(),
            aggregate_id: event.aggregate_id(),
            occurred_at: event.occurred_at().trunc_subsecs(3),
            correlation_id: event_id,
            causation_id: None,
            traceparent: Some(new_trace()),
        }
    }

    /// Marks this event as caused by `cause`: same correlation id, causation id = the cause's
    /// event id, and the cause's trace when it has one (set a child span with
    /// [`Envelope::with_traceparent`] afterwards where one is known).
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.correlation_id = cause.correlation_id;
        self.causation_id = Some(cause.event_id);
        if cause.traceparent.is_some() {
            self.traceparent.clone_from(&cause.traceparent);
        }
        self
    }

    /// The envelope of `event`, caused by `cause` at saga step `step`: the cause's correlation
    /// id and trace, the cause's id as causation id, and an id derived from the cause's id
    /// and `step` ([`derived_event_id`]). Reacting to the same cause at the same step always
    /// gives the same id, so a redelivered cause can never produce a second distinct event.
    pub fn reacting_to(event: &Event, cause: &Cause, step: &str) -> Self {
        Envelope {
            event_id: derived_event_id(cause.event_id, step),
            event_type: event.event_type().to_owned(),
            aggregate_id: event.aggregate_id(),
            occurred_at: event.occurred_at().trunc_subsecs(3),
            correlation_id: cause.correlation_id,
            causation_id: Some(cause.event_id),
            traceparent: cause.traceparent.clone().or_else(|| Some(new_trace())),
        }
    }

    /// Sets the W3C traceparent.
    pub fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The headers to put on the record, each name once, absent optional ones left out.
    pub fn to_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut out = vec![
            (headers::EVENT_ID, self.event_id.to_string().into_bytes()),
            (headers::EVENT_TYPE, self.event_type.clone().into_bytes()),
            (
                headers::AGGREGATE_ID,
                self.aggregate_id.clone().into_bytes(),
            ),
            (
                headers::OCCURRED_AT,
                timestamp::to_rfc3339(&self.occurred_at).into_bytes(),
            ),
            (
                headers::CORRELATION_ID,
                self.correlation_id.to_string().into_bytes(),
            ),
        ];
        if let Some(causation_id) = self.causation_id {
            out.push((headers::CAUSATION_ID, causation_id.to_string().into_bytes()));
        }
        if let Some(traceparent) = &self.traceparent {
            out.push((headers::TRACEPARENT, traceparent.clone().into_bytes()));
        }
        out
    }

    /// Reads a complete envelope from headers. Other headers are ignored; a header given twice
    /// must have the same value both times; a header with a null value counts as absent.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<Self, EnvelopeError> {
        let fields = EnvelopeFields::from_headers(headers)?;
        Ok(Envelope {
            event_id: fields
                .event_id
                .ok_or(EnvelopeError::Missing(headers::EVENT_ID))?,
            event_type: fields
                .event_type
                .ok_or(EnvelopeError::Missing(headers::EVENT_TYPE))?,
            aggregate_id: fields
                .aggregate_id
                .ok_or(EnvelopeError::Missing(headers::AGGREGATE_ID))?,
            occurred_at: fields
                .occurred_at
                .ok_or(EnvelopeError::Missing(headers::OCCURRED_AT))?,
            correlation_id: fields
                .correlation_id
                .ok_or(EnvelopeError::Missing(headers::CORRELATION_ID))?,
            causation_id: fields.causation_id,
            traceparent: fields.traceparent,
        })
    }
}

/// A UUIDv7 derived from `cause` and `step`: the same inputs always give the same id. It
/// keeps the cause's millisecond timestamp (when the cause is a UUIDv7), so derived ids sort
/// near their cause; the rest is a name-based hash of both.
pub fn derived_event_id(cause: Uuid, step: &str) -> Uuid {
    let mut bytes = Uuid::new_v5(&cause, step.as_bytes()).into_bytes();
    if cause.get_version_num() == 7 {
        bytes[..6].copy_from_slice(&cause.as_bytes()[..6]);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// What an event caused later needs to know of its cause, kept in a service's state so that a
/// deferred step (a deadline, a slow charge) still names its cause and its flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// The causing event's id.
    pub event_id: Uuid,
    /// Its flow's correlation id.
    pub correlation_id: Uuid,
    /// Its W3C trace context.
    pub traceparent: Option<String>,
}

impl From<&Envelope> for Cause {
    fn from(envelope: &Envelope) -> Self {
        Cause {
            event_id: envelope.event_id,
            correlation_id: envelope.correlation_id,
            traceparent: envelope.traceparent.clone(),
        }
    }
}

/// Why an envelope could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A required header is absent.
    #[error("header `{0}` is missing; records produced by services always carry it")]
    Missing(&'static str),
    /// A header or envelope field does not hold what it should.
    #[error("`{field}` {reason}")]
    Invalid {
        /// The header (or JSON field) name.
        field: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The same envelope field was given twice with different values.
    #[error(
        "`{field}` is given twice with different values, {first:?} and {second:?}; give it \
         once, or give the same value in both places"
    )]
    Conflict {
        /// The header (or JSON field) name.
        field: &'static str,
        /// One value.
        first: String,
        /// The other.
        second: String,
    },
}

/// Envelope fields as far as a record states them; the codec fills the gaps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EnvelopeFields {
    pub(crate) event_id: Option<Uuid>,
    pub(crate) event_type: Option<String>,
    pub(crate) aggregate_id: Option<String>,
    pub(crate) occurred_at: Option<DateTime<Utc>>,
    pub(crate) correlation_id: Option<Uuid>,
    pub(crate) causation_id: Option<Uuid>,
    pub(crate) traceparent: Option<String>,
}

impl EnvelopeFields {
    /// Reads the envelope headers among `headers`, ignoring other headers and null values.
    pub(crate) fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Result<Self, EnvelopeError> {
        let mut fields = EnvelopeFields::default();
        for (key, value) in headers {
            let Some(field) = headers::ALL.into_iter().find(|h| *h == key) else {
                continue;
            };
            let Some(value) = value else { continue };
            let text = std::str::from_utf8(value).map_err(|_| EnvelopeError::Invalid {
                field,
                reason: "is not UTF-8 text".to_owned(),
            })?;
            fields.set_text(field, text)?;
        }
        Ok(fields)
    }

    /// Sets `field` from its text form, refusing a second, different value.
    pub(crate) fn set_text(
        &mut self,
        field: &'static str,
        text: &str,
    ) -> Result<(), EnvelopeError> {
        match field {
            headers::EVENT_ID => set(&mut self.event_id, field, parse_uuid(field, text)?),
            headers::EVENT_TYPE => set(&mut self.event_type, field, non_empty(field, text)?),
            headers::AGGREGATE_ID => set(&mut self.aggregate_id, field, non_empty(field, text)?),
            headers::OCCURRED_AT => set(&mut self.occurred_at, field, parse_time(field, text)?),
            headers::CORRELATION_ID => {
                set(&mut self.correlation_id, field, parse_uuid(field, text)?)
            }
            headers::CAUSATION_ID => set(&mut self.causation_id, field, parse_uuid(field, text)?),
            headers::TRACEPARENT => set(&mut self.traceparent, field, non_empty(field, text)?),
            _ => Ok(()),
        }
    }

    /// Sets `occurred_at` from epoch milliseconds, refusing a second, different value.
    pub(crate) fn set_occurred_at_millis(
        &mut self,
        field: &'static str,
        millis: i64,
    ) -> Result<(), EnvelopeError> {
        let at = timestamp::from_millis(millis).ok_or_else(|| EnvelopeError::Invalid {
            field,
            reason: format!("{millis} ms since the epoch is out of range"),
        })?;
        set(&mut self.occurred_at, field, at)
    }
}

/// Stores `value` unless a different one is already there.
fn set<T: PartialEq + std::fmt::Debug>(
    slot: &mut Option<T>,
    field: &'static str,
    value: T,
) -> Result<(), EnvelopeError> {
    match slot {
        Some(existing) if *existing != value => Err(EnvelopeError::Conflict {
            field,
            first: format!("{existing:?}").trim_matches('"').to_owned(),
            second: format!("{value:?}").trim_matches('"').to_owned(),
        }),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

fn parse_uuid(field: &'static str, text: &str) -> Result<Uuid, EnvelopeError> {
    Uuid::parse_str(text).map_err(|_| EnvelopeError::Invalid {
        field,
        reason: format!(
            "must be a UUID such as \"0190c2a8-7a8e-7cc4-9f3c-2b4a6c1d5e7f\", got {text:?}"
        ),
    })
}

fn parse_time(field: &'static str, text: &str) -> Result<DateTime<Utc>, EnvelopeError> {
    if let Ok(millis) = text.parse::<i64>()
        && let Some(at) = timestamp::from_millis(millis)
    {
        return Ok(at);
    }
    timestamp::parse_rfc3339(text).map_err(|_| EnvelopeError::Invalid {
        field,
        reason: format!(
            "must be an RFC 3339 timestamp such as \"2024-05-01T12:00:00.000Z\" or epoch \
             milliseconds, got {text:?}"
        ),
    })
}

fn non_empty(field: &'static str, text: &str) -> Result<String, EnvelopeError> {
    if text.is_empty() {
        Err(EnvelopeError::Invalid {
            field,
            reason: "must not be empty".to_owned(),
        })
    } else {
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn derived_ids_are_stable_per_cause_and_step_and_are_v7() {
        let cause = uuid::Uuid::now_v7();
        let a = super::derived_event_id(cause, "reserve");
        assert_eq!(a, super::derived_event_id(cause, "reserve"));
        assert_ne!(a, super::derived_event_id(cause, "release"));
        assert_ne!(a, super::derived_event_id(uuid::Uuid::now_v7(), "reserve"));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.as_bytes()[..6], cause.as_bytes()[..6]);
    }

    use super::*;
    use crate::samples;

    fn as_pairs<'a>(headers: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'a str, Option<&'a [u8]>)> {
        headers
            .iter()
            .map(|(k, v)| (*k, Some(v.as_slice())))
            .collect()
    }

    #[test]
    fn a_new_envelope_starts_its_own_flow() {
        let event = samples::order_created();
        let envelope = Envelope::new(&event);
        assert_eq!(envelope.event_id.get_version_num(), 7);
        assert_eq!(envelope.correlation_id, envelope.event_id);
        assert_eq!(envelope.causation_id, None);
        assert_eq!(envelope.event_type, "order.created");
        assert_eq!(envelope.aggregate_id, event.aggregate_id());
        assert_eq!(envelope.occurred_at, event.occurred_at());
    }

    #[test]
    fn a_new_event_starts_a_w3c_trace() {
        let envelope = Envelope::new(&samples::order_created());
        let traceparent = envelope.traceparent.expect("a trace");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(
            (parts[0], parts[1].len(), parts[2].len(), parts[3]),
            ("00", 32, 16, "01")
        );
        assert_ne!(
            Envelope::new(&samples::order_created()).traceparent,
            Some(traceparent)
        );
    }

    #[test]
    fn a_caused_event_joins_its_causes_flow_and_trace() {
        let cause = Envelope::new(&samples::order_created()).with_traceparent("00-abc-def-01");
        let effect = Envelope::new(&samples::inventory_updated()).caused_by(&cause);
        assert_eq!(effect.correlation_id, cause.correlation_id);
        assert_eq!(effect.causation_id, Some(cause.event_id));
        assert_eq!(effect.traceparent.as_deref(), Some("00-abc-def-01"));
        assert_ne!(effect.event_id, cause.event_id);
    }

    #[test]
    fn headers_name_each_field_once_and_leave_out_absent_ones() {
        let envelope = Envelope::new(&samples::order_created());
        let names: Vec<_> = envelope.to_headers().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "event_id",
                "event_type",
                "aggregate_id",
                "occurred_at",
                "correlation_id",
                "traceparent"
            ]
        );
        let full = envelope
            .clone()
            .caused_by(&envelope)
            .with_traceparent("00-abc-def-01");
        let names: Vec<_> = full.to_headers().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, headers::ALL);
    }

    #[test]
    fn occurred_at_is_written_as_rfc3339_utc_with_milliseconds() {
        let envelope = Envelope::new(&samples::order_created());
        let headers = envelope.to_headers();
        let (_, value) = headers.iter().find(|(k, _)| *k == "occurred_at").unwrap();
        assert_eq!(
            std::str::from_utf8(value).unwrap(),
            "2024-05-01T12:00:00.123Z"
        );
    }

    #[test]
    fn headers_read_back_into_the_same_envelope() {
        let cause = Envelope::new(&samples::order_created());
        let envelope = Envelope::new(&samples::inventory_updated())
            .caused_by(&cause)
            .with_traceparent("00-abc-def-01");
        let headers = envelope.to_headers();
        assert_eq!(Envelope::from_headers(as_pairs(&headers)), Ok(envelope));
    }

    #[test]
    fn a_missing_required_header_is_named() {
        let headers = Envelope::new(&samples::order_created()).to_headers();
        let without: Vec<_> = as_pairs(&headers)
            .into_iter()
            .filter(|(k, _)| *k != "correlation_id")
            .collect();
        assert_eq!(
            Envelope::from_headers(without),
            Err(EnvelopeError::Missing("correlation_id"))
        );
    }

    #[test]
    fn a_malformed_event_id_is_named() {
        let err = Envelope::from_headers([("event_id", Some(&b"not-a-uuid"[..]))]).unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::Invalid {
                    field: "event_id",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("must be a UUID"), "{err}");
    }

    #[test]
    fn a_header_repeated_with_another_value_is_a_conflict() {
        let err = EnvelopeFields::from_headers([
            ("event_type", Some(&b"order.created"[..])),
            ("event_type", Some(&b"order.confirmed"[..])),
        ])
        .unwrap_err();
        assert!(
            matches!(
                err,
                EnvelopeError::Conflict {
                    field: "event_type",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unrelated_and_null_headers_are_ignored() {
        let fields = EnvelopeFields::from_headers([
            ("x-dlq-reason", Some(&b"whatever"[..])),
            ("traceparent", None),
        ])
        .unwrap();
        assert_eq!(fields, EnvelopeFields::default());
    }
}
