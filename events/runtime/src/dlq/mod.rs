//! Dead-letter topics: what a consumer puts there, and replaying it.
//!
//! A record a consumer cannot apply (undecodable, schema-invalid, of an unknown type, with a
//! bad envelope, or failing its handler for good) is copied to `<topic>.dlq` with its key,
//! value and headers unchanged, plus the `dlq.*` headers of [`headers`] saying why and where
//! it came from. [`list`] reads them back; [`replay`] puts them back on their original topic
//! once the cause is fixed.
//!
//! Replaying reads each dead-letter partition only up to where it ended when the replay
//! started, so a record that fails again (and lands in the dead-letter topic again) is not
//! replayed again by the same run.
//!
//! Not here: deciding what is poison (that is the consumer's job).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use eventmart_events::RawRecord;
use eventmart_events::envelope::headers::EVENT_ID;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureProducer;

mod replay;

pub use self::replay::{DlqError, ReplayReport, Replayed, Selection, list, replay};

/// The headers a dead letter carries besides the original record's own.
pub mod headers {
    /// What every dead-letter header name starts with; the original's own headers with this
    /// prefix are dropped, so that no header key is ever repeated.
    pub const PREFIX: &str = "dlq.";
    /// The kind of failure: `undecodable`, `schema_invalid`, `unknown_event_type`,
    /// `bad_envelope` or `handler_failed`.
    pub const ERROR_KIND: &str = "dlq.error_kind";
    /// What went wrong, in words.
    pub const ERROR_MESSAGE: &str = "dlq.error_message";
    /// The full name of the topic the record was read from.
    pub const ORIGINAL_TOPIC: &str = "dlq.original_topic";
    /// Its partition there, in decimal.
    pub const ORIGINAL_PARTITION: &str = "dlq.original_partition";
    /// Its offset there, in decimal.
    pub const ORIGINAL_OFFSET: &str = "dlq.original_offset";
    /// The consumer group that gave up on it.
    pub const CONSUMER_GROUP: &str = "dlq.consumer_group";
    /// When, in RFC 3339 (UTC, milliseconds).
    pub const FAILED_AT: &str = "dlq.failed_at";
}

/// The failure kind of a record whose handler failed for good.
pub const HANDLER_FAILED: &str = "handler_failed";

/// Longest error message kept in a header; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 4096;

/// How long reading or writing one record may take before the broker counts as unreachable.
pub(crate) const BROKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Record headers as the codec reads them: name and value (a `None` value is a null header).
pub type RecordHeaders = Vec<(String, Option<Vec<u8>>)>;

/// Why and where a record is dead-lettered.
#[derive(Debug, Clone)]
pub struct Reason<'a> {
    /// The failure kind (a [`DecodeError::kind`](eventmart_events::DecodeError::kind) or
    /// [`HANDLER_FAILED`]).
    pub kind: &'a str,
    /// What went wrong.
    pub message: &'a str,
    /// The consumer group giving up on the record.
    pub consumer_group: &'a str,
    /// When.
    pub failed_at: DateTime<Utc>,
}

/// The headers of the dead letter of a record read at `topic`/`partition`@`offset` with
/// `original` headers: the original ones in order (minus any `dlq.*`), then the reason.
pub fn dead_letter_headers(
    original: &[(String, Option<Vec<u8>>)],
    topic: &str,
    partition: i32,
    offset: i64,
    reason: &Reason<'_>,
) -> RecordHeaders {
    let mut out: RecordHeaders = original
        .iter()
        .filter(|(name, _)| !name.starts_with(headers::PREFIX))
        .cloned()
        .collect();
    let text = |name: &str, value: String| (name.to_owned(), Some(value.into_bytes()));
    out.extend([
        text(headers::ERROR_KIND, reason.kind.to_owned()),
        text(
            headers::ERROR_MESSAGE,
            truncate(reason.message, MAX_MESSAGE_BYTES),
        ),
        text(headers::ORIGINAL_TOPIC, topic.to_owned()),
        text(headers::ORIGINAL_PARTITION, partition.to_string()),
        text(headers::ORIGINAL_OFFSET, offset.to_string()),
        text(headers::CONSUMER_GROUP, reason.consumer_group.to_owned()),
        text(
            headers::FAILED_AT,
            reason
                .failed_at
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        ),
    ]);
    out
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `headers` in the Kafka client's form.
pub(crate) fn owned_headers(headers: &[(String, Option<Vec<u8>>)]) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |out, (key, value)| {
            out.insert(Header {
                key,
                value: value.as_deref(),
            })
        },
    )
}

/// A record's headers as the codec reads them.
pub(crate) fn record_headers<M: Message>(message: &M) -> RecordHeaders {
    message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default()
}

/// A producer that writes each record once and in order (`enable.idempotence`, `acks=all`).
pub(crate) fn idempotent_producer(kafka: &ClientConfig) -> Result<FutureProducer, KafkaError> {
    let mut config = kafka.clone();
    config
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", BROKER_TIMEOUT.as_millis().to_string());
    config.create()
}

/// A record read back from a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its partition in the dead-letter topic.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The failure kind (`dlq.error_kind`); empty if the header is missing.
    pub error_kind: String,
    /// What went wrong (`dlq.error_message`).
    pub error_message: String,
    /// Where the record was first read: topic, partition, offset. `None` for a record that
    /// lacks the `dlq.original_*` headers (not written by a consumer); it cannot be replayed.
    pub original: Option<(String, i32, i64)>,
    /// The consumer group that gave up on it.
    pub consumer_group: Option<String>,
    /// When (`dlq.failed_at`, as written).
    pub failed_at: Option<String>,
    /// The original key.
    pub key: Option<Vec<u8>>,
    /// The original value.
    pub value: Option<Vec<u8>>,
    /// The original headers, without the `dlq.*` ones.
    pub headers: RecordHeaders,
}

impl DeadLetter {
    /// Reads a dead-letter record.
    pub fn from_message<M: Message>(message: &M) -> Self {
        let all = record_headers(message);
        let text = |name: &str| {
            all.iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let original = text(headers::ORIGINAL_TOPIC).and_then(|topic| {
            let partition = text(headers::ORIGINAL_PARTITION)?.parse().ok()?;
            let offset = text(headers::ORIGINAL_OFFSET)?.parse().ok()?;
            Some((topic, partition, offset))
        });
        Self {
            partition: message.partition(),
            offset: message.offset(),
            error_kind: text(headers::ERROR_KIND).unwrap_or_default(),
            error_message: text(headers::ERROR_MESSAGE).unwrap_or_default(),
            original,
            consumer_group: text(headers::CONSUMER_GROUP),
            failed_at: text(headers::FAILED_AT),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: all
                .iter()
                .filter(|(k, _)| !k.starts_with(headers::PREFIX))
                .cloned()
                .collect(),
        }
    }

    /// The headers to replay the record with: its original ones, plus an `event_id` header
    /// when the record states no event id of its own.
    ///
    /// Without one, the event's id would be derived from its new position, so replaying the
    /// same dead letter twice (or two copies of it) would make two events. The id given is the
    /// one its original position stood for ([`RawRecord::fallback_event_id`]), the same on
    /// every replay, so a replayed event is applied once however often it is replayed.
    pub fn replay_headers(&self) -> RecordHeaders {
        let mut out = self.headers.clone();
        if let Some((topic, partition, offset)) = &self.original
            && !self.states_event_id()
        {
            let id = RawRecord::new(topic, *partition, *offset, None).fallback_event_id();
            out.push((EVENT_ID.to_owned(), Some(id.to_string().into_bytes())));
        }
        out
    }

    /// Whether the record names its event id, in a header or (JSON values) in the value.
    fn states_event_id(&self) -> bool {
        let in_header = self
            .headers
            .iter()
            .any(|(k, v)| k == EVENT_ID && v.is_some());
        let in_value = self.value.as_deref().is_some_and(|value| {
            serde_json::from_slice::<serde_json::Value>(value)
                .ok()
                .and_then(|json| json.get(EVENT_ID).cloned())
                .is_some_and(|id| !id.is_null())
        });
        in_header || in_value
    }

    /// `topic/partition@offset` of the original record, or `?`.
    pub fn original_position(&self) -> String {
        match &self.original {
            Some((topic, partition, offset)) => format!("{topic}/{partition}@{offset}"),
            None => "?".to_owned(),
        }
    }
}

/// Which dead letters to read.
#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    use super::*;

    fn reason() -> Reason<'static> {
        Reason {
            kind: "schema_invalid",
            message: "field `lines` is invalid",
            consumer_group: "inventory",
            failed_at: DateTime::from_timestamp_millis(1_714_564_800_123).expect("valid"),
        }
    }

    fn header(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
        (name.to_owned(), Some(value.as_bytes().to_vec()))
    }

    fn dead_letter(value: &[u8], original: &RecordHeaders) -> DeadLetter {
        let headers = dead_letter_headers(original, "orders", 2, 41, &reason());
        let message = OwnedMessage::new(
            Some(value.to_vec()),
            Some(b"k".to_vec()),
            "orders.dlq".to_owned(),
            Timestamp::NotAvailable,
            1,
            7,
            Some(owned_headers(&headers)),
        );
        DeadLetter::from_message(&message)
    }

    #[test]
    fn dead_letter_headers_keep_the_originals_and_never_repeat_a_key() {
        let original = vec![
            header("event_type", "order.created"),
            header(headers::ERROR_KIND, "stale"),
            ("nothing".to_owned(), None),
        ];
        let out = dead_letter_headers(&original, "orders", 2, 41, &reason());
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "event_type",
                "nothing",
                headers::ERROR_KIND,
                headers::ERROR_MESSAGE,
                headers::ORIGINAL_TOPIC,
                headers::ORIGINAL_PARTITION,
                headers::ORIGINAL_OFFSET,
                headers::CONSUMER_GROUP,
                headers::FAILED_AT,
            ]
        );
        assert_eq!(out[2].1.as_deref(), Some(&b"schema_invalid"[..]));
        assert_eq!(out[8].1.as_deref(), Some(&b"2024-05-01T12:00:00.123Z"[..]));
    }

    #[test]
    fn a_dead_letter_reads_back_with_its_origin_and_without_dlq_headers() {
        let letter = dead_letter(b"{}", &vec![header("event_id", "x")]);
        assert_eq!(letter.error_kind, "schema_invalid");
        assert_eq!(letter.original, Some(("orders".to_owned(), 2, 41)));
        assert_eq!(letter.original_position(), "orders/2@41");
        assert_eq!(letter.consumer_group.as_deref(), Some("inventory"));
        assert_eq!(letter.headers, vec![header("event_id", "x")]);
        assert_eq!((letter.partition, letter.offset), (1, 7));
    }

    #[test]
    fn a_replay_names_the_event_its_original_position_stood_for_unless_the_record_does() {
        let bare = dead_letter(br#"{"event_type": "order.created"}"#, &Vec::new());
        let expected = RawRecord::new("orders", 2, 41, None)
            .fallback_event_id()
            .to_string();
        assert_eq!(bare.replay_headers(), vec![header("event_id", &expected)]);

        let in_value = dead_letter(
            br#"{"event_id": "0190c2a8-7a8e-7cc4-9f3c-2b4a6c1d5e7f"}"#,
            &Vec::new(),
        );
        assert!(in_value.replay_headers().is_empty());

        let in_header = dead_letter(b"\x00garbage", &vec![header("event_id", "y")]);
        assert_eq!(in_header.replay_headers(), vec![header("event_id", "y")]);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let cut = truncate(&"é".repeat(10), 5);
        assert_eq!(cut, "éé…");
    }
}
