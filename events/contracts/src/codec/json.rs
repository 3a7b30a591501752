//! The JSON path: a flat JSON object as a person types it into kcat.
//!
//! The object holds `event_type` (unless an `event_type` header names it), optionally the
//! envelope fields `event_id`, `aggregate_id`, `occurred_at`, `correlation_id`,
//! `causation_id` and `traceparent` (each may come as a header instead; if both are given they
//! must agree), and the payload's fields at the top level. `schemas/README.md` shows one per
//! event type. The payload is checked against the event type's schema like an Avro value.

use serde_json::{Map, Value as Json};

use super::error::DecodeError;
use super::mapping::json_to_avro;
use super::{
    Decoded, Format, MAGIC_BYTE, RawRecord, complete_envelope, event_from_avro, value_bytes,
};
use crate::envelope::{EnvelopeError, EnvelopeFields, headers};
use crate::event_type::EventType;

/// Decodes a record whose value is a JSON object, without a registry.
pub fn decode_json(record: &RawRecord<'_>) -> Result<Decoded, DecodeError> {
    let bytes = value_bytes(record)?;
    if bytes.first() == Some(&MAGIC_BYTE) {
        return Err(DecodeError::Undecodable(
            "the value is Avro in the Confluent wire format, not JSON; decode it with a Codec, \
             which fetches its schema from the registry"
                .to_owned(),
        ));
    }
    decode_json_bytes(record, bytes)
}

pub(crate) fn decode_json_bytes(
    record: &RawRecord<'_>,
    bytes: &[u8],
) -> Result<Decoded, DecodeError> {
    let json: Json = serde_json::from_slice(bytes).map_err(|e| {
        DecodeError::Undecodable(format!("the value looks like JSON but does not parse: {e}"))
    })?;
    if let Some(field) = crate::text::control_character(&json) {
        return Err(DecodeError::SchemaInvalid {
            field,
            reason: crate::text::CONTROL_CHARACTERS.to_owned(),
        });
    }
    let Json::Object(mut object) = json else {
        return Err(DecodeError::Undecodable(
            "the value is JSON but not an object; send one JSON object per record".to_owned(),
        ));
    };

    let mut fields = EnvelopeFields::from_headers(record.header_pairs())?;
    take_envelope_fields(&mut object, &mut fields)?;
    let Some(name) = fields.event_type.as_deref() else {
        return Err(DecodeError::SchemaInvalid {
            field: headers::EVENT_TYPE.to_owned(),
            reason: format!(
                "is missing; name the event type in the value or in an `event_type` header, \
                 one of: {}",
                crate::event_type::known_names()
            ),
        });
    };
    let event_type =
        EventType::by_name(name).ok_or_else(|| DecodeError::unknown_event_type(name))?;

    let value = json_to_avro(event_type.schema(), &Json::Object(object))?;
    if !value.validate(event_type.schema()) {
        // The mapping checks as it goes; this guards against the two ever disagreeing.
        return Err(DecodeError::SchemaInvalid {
            field: String::new(),
            reason: format!(
                "the value does not fit the schema of {}",
                event_type.record_name
            ),
        });
    }
    let event = event_from_avro(event_type, &value)?;
    let envelope = complete_envelope(fields, &event, record)?;
    Ok(Decoded {
        envelope,
        event,
        format: Format::Json,
    })
}

/// Moves the envelope fields out of `object` into `fields`; what remains is the payload.
/// `null` counts as absent.
fn take_envelope_fields(
    object: &mut Map<String, Json>,
    fields: &mut EnvelopeFields,
) -> Result<(), EnvelopeError> {
    for field in headers::ALL {
        match object.remove(field) {
            None | Some(Json::Null) => {}
            Some(Json::String(text)) => fields.set_text(field, &text)?,
            Some(Json::Number(n)) if field == headers::OCCURRED_AT => match n.as_i64() {
                Some(millis) => fields.set_occurred_at_millis(field, millis)?,
                None => {
                    return Err(EnvelopeError::Invalid {
                        field,
                        reason: format!("must be whole epoch milliseconds, got {n}"),
                    });
                }
            },
            Some(other) => {
                return Err(EnvelopeError::Invalid {
                    field,
                    reason: format!("must be a string, got {other}"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
