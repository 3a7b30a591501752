//! The Avro path: Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro
//! binary), read with the writer's schema and resolved to ours.
//!
//! Nothing here talks to the registry: the caller brings the writer schema (the [`Codec`]
//! fetches it by id), which keeps this testable without one.
//!
//! [`Codec`]: super::Codec

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use super::error::{DecodeError, EncodeError};
use super::mapping::json_to_avro;
use super::{Decoded, Format, RawRecord, complete_envelope, event_from_avro, value_bytes};
use crate::envelope::{EnvelopeError, EnvelopeFields, headers};
use crate::event::Event;
use crate::event_type::EventType;

/// The magic byte that starts every value in the Confluent wire format.
pub const MAGIC_BYTE: u8 = 0;

/// Splits a wire-format value into its schema id and the Avro datum that follows.
pub fn split_wire_format(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [MAGIC_BYTE, ..] => Err(DecodeError::Undecodable(format!(
            "the value starts with the Avro magic byte 0 but is only {} bytes long; the \
             Confluent wire format needs at least 5 (magic byte and 4-byte schema id)",
            bytes.len()
        ))),
        _ => Err(DecodeError::Undecodable(
            "the value does not start with the Avro magic byte 0".to_owned(),
        )),
    }
}

/// Prefixes an Avro datum with the magic byte and `schema_id`.
pub fn write_wire_format(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + datum.len());
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(datum);
    out
}

/// Decodes a wire-format record whose schema id stands for `writer`, without a registry.
///
/// The value is read with `writer` and resolved to the current schema of its event type, so
/// data written with an older or newer compatible schema decodes into today's type. The event
/// type is the `event_type` header if present (it must name the writer's record), else the one
/// whose record has the writer's full name.
pub fn decode_avro_with_schema(
    record: &RawRecord<'_>,
    writer: &Schema,
) -> Result<Decoded, DecodeError> {
    let (schema_id, datum) = split_wire_format(value_bytes(record)?)?;
    decode_datum(record, writer, schema_id, datum)
}

/// [`decode_avro_with_schema`] once the wire header is split off.
pub(crate) fn decode_datum(
    record: &RawRecord<'_>,
    writer: &Schema,
    schema_id: u32,
    datum: &[u8],
) -> Result<Decoded, DecodeError> {
    let fields = EnvelopeFields::from_headers(record.header_pairs())?;
    let Schema::Record(writer_record) = writer else {
        return Err(DecodeError::Undecodable(format!(
            "schema id {schema_id} is not an Avro record schema, so it is no eventmart event"
        )));
    };
    let writer_name = writer_record.name.fullname(None);
    let event_type = event_type_of(fields.event_type.as_deref(), &writer_name)?;

    let mut reader = datum;
    let written = GenericDatumReader::builder(writer)
        .build()
        .and_then(|r| r.read_value(&mut reader))
        .map_err(|e| {
            DecodeError::Undecodable(format!(
                "the Avro bytes do not match schema id {schema_id} ({writer_name}): {e}"
            ))
        })?;
    let value = written
        .resolve(event_type.schema())
        .map_err(|e| DecodeError::SchemaInvalid {
            field: String::new(),
            reason: format!(
                "a value written with schema id {schema_id} cannot be read with the current \
                 schema of {}: {e}",
                event_type.record_name
            ),
        })?;
    let event = event_from_avro(event_type, &value)?;
    let envelope = complete_envelope(fields, &event, record)?;
    Ok(Decoded {
        envelope,
        event,
        format: Format::Avro { schema_id },
    })
}

/// The event type named by the header, checked against the writer's record, or else the one
/// the writer's record stands for.
fn event_type_of(
    header: Option<&str>,
    writer_name: &str,
) -> Result<&'static EventType, DecodeError> {
    match header {
        Some(name) => {
            let event_type =
                EventType::by_name(name).ok_or_else(|| DecodeError::unknown_event_type(name))?;
            if event_type.record_name != writer_name {
                return Err(EnvelopeError::Invalid {
                    field: headers::EVENT_TYPE,
                    reason: format!(
                        "is {name:?}, whose record is {}, but the value was written with a \
                         schema for {writer_name}",
                        event_type.record_name
                    ),
                }
                .into());
            }
            Ok(event_type)
        }
        None => EventType::by_record_name(writer_name)
            .ok_or_else(|| DecodeError::unknown_event_type(writer_name)),
    }
}

/// The event as an Avro value of its current schema.
pub fn to_avro_value(event: &Event) -> Result<Value, EncodeError> {
    let json = event.payload_json().map_err(|e| EncodeError::Invalid {
        field: String::new(),
        reason: e.to_string(),
    })?;
    Ok(json_to_avro(event.descriptor().schema(), &json)?)
}

/// Encodes `event` with its current schema into the wire format, stating `schema_id` as the
/// id that schema has in the registry. No registry is contacted: for tests and for tools that
/// registered the schema themselves.
pub fn encode_with_schema_id(event: &Event, schema_id: u32) -> Result<Vec<u8>, EncodeError> {
    let datum = write_datum(event.descriptor().schema(), to_avro_value(event)?)?;
    Ok(write_wire_format(schema_id, &datum))
}

/// Avro binary of `value`, validated against `schema`.
pub(crate) fn write_datum(schema: &Schema, value: Value) -> Result<Vec<u8>, EncodeError> {
    GenericDatumWriter::builder(schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .map_err(|e| EncodeError::Invalid {
            field: String::new(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;
    use crate::samples;
    use serde_json::json;

    fn record<'a>(value: &'a [u8], headers: &'a [(String, Option<Vec<u8>>)]) -> RawRecord<'a> {
        RawRecord::new("orders", 0, 42, Some(value)).with_headers(headers)
    }

    fn headers_of(envelope: &Envelope) -> Vec<(String, Option<Vec<u8>>)> {
        envelope
            .to_headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Some(v)))
            .collect()
    }

    #[test]
    fn every_sample_decodes_back_to_itself_with_its_envelope() {
        for event in samples::full().into_iter().chain(samples::sparse()) {
            let envelope = Envelope::new(&event);
            let headers = headers_of(&envelope);
            let bytes = encode_with_schema_id(&event, 7).unwrap();
            let decoded =
                decode_avro_with_schema(&record(&bytes, &headers), event.descriptor().schema())
                    .unwrap();
            assert_eq!(decoded.event, event);
            assert_eq!(decoded.envelope, envelope);
            assert_eq!(decoded.format, Format::Avro { schema_id: 7 });
        }
    }

    #[test]
    fn the_event_type_comes_from_the_writer_record_when_there_is_no_header() {
        let event = samples::order_created();
        let bytes = encode_with_schema_id(&event, 1).unwrap();
        let decoded =
            decode_avro_with_schema(&record(&bytes, &[]), event.descriptor().schema()).unwrap();
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.envelope.aggregate_id, event.aggregate_id());
    }

    #[test]
    fn a_value_written_with_an_older_schema_decodes_into_the_current_type() {
        // Version 1 of order.cancelled had no `detail`.
        let current: serde_json::Value =
            serde_json::from_str(EventType::by_name("order.cancelled").unwrap().avsc).unwrap();
        let mut older = current.clone();
        let fields = older["fields"].as_array_mut().unwrap();
        fields.retain(|f| f["name"] != "detail");
        let older = Schema::parse(&older).unwrap();

        let payload = json!({
            "order_id": "0190c2a8-7a8e-7cc4-9f3c-000000000001",
            "reason": "timeout",
            "cancelled_at": "2024-05-01T12:00:00.123Z",
        });
        let datum = write_datum(&older, json_to_avro(&older, &payload).unwrap()).unwrap();
        let bytes = write_wire_format(3, &datum);

        let decoded = decode_avro_with_schema(&record(&bytes, &[]), &older).unwrap();
        let crate::Event::OrderCancelled(cancelled) = decoded.event else {
            panic!("decoded {:?}", decoded.event);
        };
        assert_eq!(cancelled.detail, None);
        assert_eq!(cancelled.reason, crate::orders::CancellationReason::Timeout);
    }

    #[test]
    fn a_header_naming_another_record_is_a_bad_envelope() {
        let event = samples::order_created();
        let bytes = encode_with_schema_id(&event, 1).unwrap();
        let headers = vec![("event_type".to_owned(), Some(b"order.confirmed".to_vec()))];
        let err = decode_avro_with_schema(&record(&bytes, &headers), event.descriptor().schema())
            .unwrap_err();
        assert_eq!(err.kind(), "bad_envelope", "{err}");
    }

    #[test]
    fn bytes_that_do_not_match_the_writer_schema_are_undecodable() {
        let bytes = write_wire_format(1, &[0x02, 0xff]);
        let schema = EventType::by_name("order.created").unwrap().schema();
        let err = decode_avro_with_schema(&record(&bytes, &[]), schema).unwrap_err();
        assert_eq!(err.kind(), "undecodable", "{err}");
    }

    #[test]
    fn a_value_too_short_for_the_wire_header_is_undecodable() {
        let err = split_wire_format(&[0, 0, 1]).unwrap_err();
        assert_eq!(err.kind(), "undecodable");
    }
}
