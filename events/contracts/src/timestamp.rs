//! Timestamps: UTC instants with millisecond precision, the precision of Avro's
//! `timestamp-millis`.
//!
//! In JSON a timestamp is written as an RFC 3339 string with milliseconds
//! (`"2024-05-01T12:00:00.123Z"`) and read from either such a string (any offset) or an integer
//! number of milliseconds since the Unix epoch. Use [`now`] rather than `Utc::now()` for event
//! timestamps, so that an event compares equal to itself after a trip through Avro.
//!
//! The module doubles as a serde `with` module for `DateTime<Utc>` fields.

use std::fmt;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserializer, Serializer, de};

/// The current time, truncated to whole milliseconds.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// The instant `millis` milliseconds after the Unix epoch, if representable.
pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

/// RFC 3339 in UTC with exactly three fractional digits: `2024-05-01T12:00:00.123Z`.
pub fn to_rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp with any offset into UTC, truncated to milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc).trunc_subsecs(3))
}

/// Serde: writes a timestamp as an RFC 3339 string with milliseconds.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&to_rfc3339(at))
}

/// Serde: reads a timestamp from an RFC 3339 string or integer epoch milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_any(TimestampVisitor)
}

struct TimestampVisitor;

impl de::Visitor<'_> for TimestampVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "an RFC 3339 timestamp such as \"2024-05-01T12:00:00.000Z\" or epoch milliseconds",
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        parse_rfc3339(text)
            .map_err(|e| E::custom(format!("{text:?} is not an RFC 3339 timestamp: {e}")))
    }

    fn visit_i64<E: de::Error>(self, millis: i64) -> Result<Self::Value, E> {
        from_millis(millis).ok_or_else(|| E::custom(format!("{millis} ms is out of range")))
    }

    fn visit_u64<E: de::Error>(self, millis: u64) -> Result<Self::Value, E> {
        i64::try_from(millis)
            .map_err(|_| E::custom(format!("{millis} ms is out of range")))
            .and_then(|m| self.visit_i64(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct At(#[serde(with = "super")] DateTime<Utc>);

    #[test]
    fn timestamps_are_written_as_rfc3339_with_milliseconds() {
        let at = from_millis(1_714_564_800_123).unwrap();
        assert_eq!(
            serde_json::to_string(&At(at)).unwrap(),
            "\"2024-05-01T12:00:00.123Z\""
        );
    }

    #[test]
    fn timestamps_are_read_from_rfc3339_or_epoch_millis() {
        let at = from_millis(1_714_564_800_123).unwrap();
        let from_text: At = serde_json::from_str("\"2024-05-01T14:00:00.123+02:00\"").unwrap();
        let from_millis: At = serde_json::from_str("1714564800123").unwrap();
        assert_eq!(from_text.0, at);
        assert_eq!(from_millis.0, at);
    }

    #[test]
    fn now_has_millisecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
