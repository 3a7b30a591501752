//! Record values to events and back: Avro through a schema registry, and JSON.
//!
//! - Values are written as Avro in the Confluent wire format, the schema registered under
//!   `<topic>-<record full name>` (TopicRecordNameStrategy) on first use ([`Codec::encode`]).
//! - Values are read from Avro (value starts with byte 0: writer schema fetched by id, resolved
//!   to ours) or from a JSON object (value starts with `{`: the shape in `schemas/README.md`),
//!   both checked against the same schema ([`Codec::decode`]). The paths that need no registry
//!   are free functions ([`decode_json`], [`decode_avro_with_schema`]).
//! - [`to_json`] prints a decoded event in the JSON shape the decoder reads.
//!
//! Decoding checks only what the schema (and the types its strings stand for) says; domain
//! rules such as "quantity > 0" belong to the services.
//!
//! This crate does not depend on a Kafka client: consumers fill a [`RawRecord`] from theirs.

mod avro;
mod error;
mod json;
mod mapping;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

#[cfg(test)]
pub(crate) use self::avro::write_datum;
pub use self::avro::{
    MAGIC_BYTE, decode_avro_with_schema, encode_with_schema_id, split_wire_format, to_avro_value,
    write_wire_format,
};
pub use self::error::{DecodeError, EncodeError};
use self::error::{FieldError, describe_registry_error, registry_error_is_transient};
pub use self::json::decode_json;
pub(crate) use self::mapping::avro_to_json;
use crate::envelope::{Envelope, EnvelopeError, EnvelopeFields, headers};
use crate::event::Event;
use crate::event_type::EventType;
use crate::timestamp;

/// A Kafka record as the codec needs it, borrowed from whatever client read it.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a> {
    /// The full topic name it was read from.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The record's timestamp, if it has one.
    pub timestamp: Option<DateTime<Utc>>,
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// The record value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Every header in record order; a `None` value is a header with a null value.
    pub headers: &'a [(String, Option<Vec<u8>>)],
}

impl<'a> RawRecord<'a> {
    /// A record with no key, timestamp or headers.
    pub fn new(topic: &'a str, partition: i32, offset: i64, value: Option<&'a [u8]>) -> Self {
        RawRecord {
            topic,
            partition,
            offset,
            timestamp: None,
            key: None,
            value,
            headers: &[],
        }
    }

    /// The same record with these headers.
    pub fn with_headers(self, headers: &'a [(String, Option<Vec<u8>>)]) -> Self {
        RawRecord { headers, ..self }
    }

    /// The same record with this timestamp.
    pub fn with_timestamp(self, timestamp: DateTime<Utc>) -> Self {
        RawRecord {
            timestamp: Some(timestamp),
            ..self
        }
    }

    /// The same record with this key.
    pub fn with_key(self, key: &'a [u8]) -> Self {
        RawRecord {
            key: Some(key),
            ..self
        }
    }

    /// The headers as `(name, value)` pairs.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        self.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The id given to an event whose record states none: a UUIDv5 of
    /// `"<topic>/<partition>/<offset>"`.
    ///
    /// Reading the same record again gives the same id, so redelivery and replays are
    /// recognised as duplicates. The same JSON produced twice is two records and gets two ids;
    /// a producer that wants a repeat recognised as a duplicate states `event_id` itself.
    pub fn fallback_event_id(&self) -> Uuid {
        let name = format!("{}/{}/{}", self.topic, self.partition, self.offset);
        Uuid::new_v5(&RECORD_ID_NAMESPACE, name.as_bytes())
    }
}

/// Namespace of the UUIDv5 ids given to records without an `event_id`.
const RECORD_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5d0a_3c3e_8f5e_4a55_9b2e_7e1c_0e6a_f00d);

/// A decoded record: its envelope (gaps filled), its event, and how it was encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The envelope, from headers and (for JSON) the value, gaps filled.
    pub envelope: Envelope,
    /// The event.
    pub event: Event,
    /// How the value was encoded.
    pub format: Format,
}

/// How a record value was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Avro in the Confluent wire format, written with the schema of this registry id.
    Avro {
        /// The writer schema's registry id.
        schema_id: u32,
    },
    /// A JSON object.
    Json,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Avro { schema_id } => write!(f, "avro (schema id {schema_id})"),
            Format::Json => f.write_str("json"),
        }
    }
}

/// Encoder and decoder bound to one schema registry; cheap to clone, caches schemas by id
/// and subject.
#[derive(Clone, Debug)]
pub struct Codec {
    registry_url: String,
    encoder: Arc<AvroEncoder>,
    decoder: Arc<AvroDecoder>,
}

impl Codec {
    /// How long a registry call may take by default before it counts as unavailable.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A codec using the registry at `registry_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(registry_url: &str) -> Self {
        Codec::with_timeout(registry_url, Codec::DEFAULT_TIMEOUT)
    }

    /// Like [`Codec::new`], with calls to the registry given up after `timeout`.
    pub fn with_timeout(registry_url: &str, timeout: Duration) -> Self {
        let settings = SrSettings::new_builder(registry_url.to_owned())
            .set_timeout(timeout)
            .build()
            // Building fails only where the HTTP client cannot be set up at all; the plain
            // settings then fail the same way on first use, reported as RegistryUnavailable.
            .unwrap_or_else(|_| SrSettings::new(registry_url.to_owned()));
        Codec {
            registry_url: registry_url.to_owned(),
            encoder: Arc::new(AvroEncoder::new(settings.clone())),
            decoder: Arc::new(AvroDecoder::new(settings)),
        }
    }

    /// The registry's URL.
    pub fn registry_url(&self) -> &str {
        &self.registry_url
    }

    /// Encodes `event` for the topic with full name `topic`: Avro in the Confluent wire format,
    /// its schema registered under `<topic>-<record full name>` on first use.
    pub async fn encode(&self, topic: &str, event: &Event) -> Result<Vec<u8>, EncodeError> {
        let value = to_avro_value(event)?;
        let event_type = event.descriptor();
        let strategy = SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
            topic.to_owned(),
            SuppliedSchema::new(
                Some(event_type.record_name.to_owned()),
                SchemaType::Avro,
                event_type.avsc.to_owned(),
            ),
        );
        self.encoder
            .encode_value(value, &strategy)
            .await
            .map_err(|e| {
                if registry_error_is_transient(&e) {
                    // The client caches errors it thinks permanent (e.g. a 500); this one is not.
                    self.encoder.remove_errors_from_cache();
                    EncodeError::RegistryUnavailable(format!(
                        "{} at {}",
                        describe_registry_error(&e),
                        self.registry_url
                    ))
                } else {
                    EncodeError::Rejected {
                        subject: event_type.subject(topic),
                        reason: describe_registry_error(&e),
                    }
                }
            })
    }

    /// Decodes a record: Avro (value starts with byte 0) with the writer schema from the
    /// registry, or JSON (value starts with `{`).
    pub async fn decode(&self, record: &RawRecord<'_>) -> Result<Decoded, DecodeError> {
        let bytes = value_bytes(record)?;
        if bytes.first() == Some(&MAGIC_BYTE) {
            let (schema_id, datum) = split_wire_format(bytes)?;
            let writer = self.decoder.get_schema(schema_id).await.map_err(|e| {
                if registry_error_is_transient(&e) {
                    self.decoder.remove_errors_from_cache();
                    DecodeError::RegistryUnavailable(format!(
                        "{} at {}",
                        describe_registry_error(&e),
                        self.registry_url
                    ))
                } else {
                    DecodeError::Undecodable(format!(
                        "schema id {schema_id} could not be had from the registry at {}: {}; \
                         the record was written against another registry, or its schema \
                         was deleted",
                        self.registry_url,
                        describe_registry_error(&e)
                    ))
                }
            })?;
            avro::decode_datum(record, &writer.parsed, schema_id, datum)
        } else {
            json::decode_json_bytes(record, bytes)
        }
    }
}

/// The natural JSON form of an event with its envelope: envelope fields and payload fields in
/// one flat object, timestamps in RFC 3339. [`decode_json`] reads it back to the same
/// envelope and event.
pub fn to_json(event: &Event, envelope: &Envelope) -> Json {
    let mut out = Map::new();
    let mut put = |k: &str, v: Json| {
        out.insert(k.to_owned(), v);
    };
    put(headers::EVENT_TYPE, event.event_type().into());
    put(headers::EVENT_ID, envelope.event_id.to_string().into());
    put(headers::AGGREGATE_ID, envelope.aggregate_id.clone().into());
    put(
        headers::OCCURRED_AT,
        timestamp::to_rfc3339(&envelope.occurred_at).into(),
    );
    put(
        headers::CORRELATION_ID,
        envelope.correlation_id.to_string().into(),
    );
    if let Some(causation_id) = envelope.causation_id {
        put(headers::CAUSATION_ID, causation_id.to_string().into());
    }
    if let Some(traceparent) = &envelope.traceparent {
        put(headers::TRACEPARENT, traceparent.clone().into());
    }
    if let Ok(Json::Object(payload)) = event.payload_json() {
        out.extend(payload);
    }
    Json::Object(out)
}

/// The record's value bytes, refusing tombstones and empty values; anything that is neither
/// wire-format Avro nor a JSON object is refused too.
fn value_bytes<'a>(record: &RawRecord<'a>) -> Result<&'a [u8], DecodeError> {
    let Some(bytes) = record.value else {
        return Err(DecodeError::Undecodable(
            "the record has no value (a tombstone); eventmart topics hold no tombstones, so \
             produce the event as the value"
                .to_owned(),
        ));
    };
    if bytes.first() == Some(&MAGIC_BYTE) {
        return Ok(bytes);
    }
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(bytes),
        None => Err(DecodeError::Undecodable(
            "the value is empty; send a JSON object or Avro in the Confluent wire format"
                .to_owned(),
        )),
        Some(other) => Err(DecodeError::Undecodable(format!(
            "the value is neither Avro in the Confluent wire format (first byte 0) nor a JSON \
             object (first character '{{'); it starts with byte 0x{other:02x}"
        ))),
    }
}

/// The event in an Avro value of `event_type`'s current schema. A failure names the field: it
/// means a string the schema allows is not what the type needs (a UUID, a currency code).
fn event_from_avro(event_type: &EventType, value: &Value) -> Result<Event, DecodeError> {
    match Event::from_payload_json(event_type, avro_to_json(value)) {
        Some(Ok(event)) => Ok(event),
        Some(Err(e)) => {
            let field = match e.path().to_string() {
                root if root == "." => String::new(),
                path => path,
            };
            let inner = e.into_inner().to_string();
            let reason = if field.ends_with("_id") {
                format!("must be a UUID such as \"0190c2a8-7a8e-7cc4-9f3c-2b4a6c1d5e7f\" ({inner})")
            } else {
                inner
            };
            Err(FieldError { field, reason }.into())
        }
        None => Err(DecodeError::unknown_event_type(event_type.name)),
    }
}

/// The complete envelope of a decoded `event`: what the record states, gaps filled.
///
/// - `event_id`: [`RawRecord::fallback_event_id`];
/// - `occurred_at`: the record's timestamp, else now;
/// - `correlation_id`: the event id;
/// - `aggregate_id`: the payload's aggregate (a stated one must agree with it).
fn complete_envelope(
    fields: EnvelopeFields,
    event: &Event,
    record: &RawRecord<'_>,
) -> Result<Envelope, DecodeError> {
    let aggregate_id = event.aggregate_id();
    if let Some(stated) = &fields.aggregate_id {
        let same = *stated == aggregate_id
            || Uuid::parse_str(stated).ok() == Uuid::parse_str(&aggregate_id).ok();
        if !same {
            return Err(EnvelopeError::Invalid {
                field: headers::AGGREGATE_ID,
                reason: format!(
                    "is {stated:?}, but this {} belongs to aggregate {aggregate_id}; leave \
                     aggregate_id out or make it match",
                    event.event_type()
                ),
            }
            .into());
        }
    }
    let event_id = fields
        .event_id
        .unwrap_or_else(|| record.fallback_event_id());
    Ok(Envelope {
        event_id,
        event_type: event.event_type().to_owned(),
        aggregate_id,
        occurred_at: fields
            .occurred_at
            .or(record.timestamp)
            .unwrap_or_else(timestamp::now),
        correlation_id: fields.correlation_id.unwrap_or(event_id),
        causation_id: fields.causation_id,
        traceparent: fields.traceparent,
    })
}

#[cfg(test)]
mod tests;
