//! The JSON path, as a kcat user meets it.

use serde_json::{Value as Json, json};

use super::*;
use crate::Event;
use crate::money::Currency;
use crate::orders::CancellationReason;

const ORDER: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000001";
const USER: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000002";
const PRODUCT: &str = "0190c2a8-7a8e-7cc4-9f3c-000000000003";

fn decode_with(
    value: &Json,
    headers: &[(String, Option<Vec<u8>>)],
) -> Result<Decoded, DecodeError> {
    let bytes = serde_json::to_vec(value).unwrap();
    decode_json(&RawRecord::new("orders", 2, 17, Some(&bytes)).with_headers(headers))
}

fn decode(value: &Json) -> Result<Decoded, DecodeError> {
    decode_with(value, &[])
}

fn header(name: &str, value: &str) -> (String, Option<Vec<u8>>) {
    (name.to_owned(), Some(value.as_bytes().to_vec()))
}

fn order_created() -> Json {
    json!({
        "event_type": "order.created",
        "order_id": ORDER,
        "user_id": USER,
        "lines": [
            {"product_id": PRODUCT, "quantity": 2, "unit_price": {"cents": 1999, "currency": "EUR"}},
            {"product_id": PRODUCT, "quantity": 1, "unit_price": {"cents": 500, "currency": "EUR"}}
        ],
        "total": {"cents": 4498, "currency": "EUR"},
        "created_at": "2024-05-01T12:00:00.123Z"
    })
}

fn cancelled(extra: Json) -> Json {
    let mut value = json!({
        "event_type": "order.cancelled",
        "order_id": ORDER,
        "reason": "timeout",
        "cancelled_at": 1714564800123i64
    });
    value
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    value
}

fn schema_invalid(result: Result<Decoded, DecodeError>) -> (String, String) {
    match result {
        Err(DecodeError::SchemaInvalid { field, reason }) => (field, reason),
        other => panic!("expected schema_invalid, got {other:?}"),
    }
}

#[test]
fn a_natural_order_decodes_and_gets_a_complete_envelope() {
    let decoded = decode(&order_created()).unwrap();
    let Event::OrderCreated(order) = &decoded.event else {
        panic!("{:?}", decoded.event)
    };
    assert_eq!(order.lines[0].unit_price.currency, Currency::EUR);
    assert_eq!(order.created_at, crate::samples::at());
    assert_eq!(decoded.format, Format::Json);
    assert_eq!(decoded.envelope.event_type, "order.created");
    assert_eq!(decoded.envelope.aggregate_id, ORDER);
    assert_eq!(decoded.envelope.correlation_id, decoded.envelope.event_id);
    assert_eq!(decoded.envelope.causation_id, None);
}

#[test]
fn optional_fields_may_be_absent_null_or_set() {
    let absent = decode(&cancelled(json!({}))).unwrap();
    let null = decode(&cancelled(json!({"detail": null}))).unwrap();
    let set = decode(&cancelled(json!({"detail": "too slow"}))).unwrap();
    let detail = |d: &Decoded| match &d.event {
        Event::OrderCancelled(e) => e.detail.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(detail(&absent), None);
    assert_eq!(detail(&null), None);
    assert_eq!(detail(&set).as_deref(), Some("too slow"));
}

#[test]
fn timestamps_may_be_epoch_millis_or_rfc3339_with_any_offset() {
    let millis = decode(&cancelled(json!({}))).unwrap();
    let text = decode(&cancelled(
        json!({"cancelled_at": "2024-05-01T14:00:00.123+02:00"}),
    ))
    .unwrap();
    assert_eq!(millis.event, text.event);
    assert_eq!(millis.event.occurred_at(), crate::samples::at());
}

#[test]
fn enums_are_written_as_their_symbol() {
    let decoded = decode(&cancelled(json!({"reason": "cancelled_by_customer"}))).unwrap();
    let Event::OrderCancelled(e) = decoded.event else {
        panic!()
    };
    assert_eq!(e.reason, CancellationReason::CancelledByCustomer);
}

#[test]
fn a_wrong_type_is_named() {
    let mut value = order_created();
    value["total"]["cents"] = json!("4498");
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "total.cents");
    assert!(reason.contains("expected an integer"), "{reason}");
}

#[test]
fn a_missing_required_field_is_named() {
    let mut value = order_created();
    value["lines"][1]
        .as_object_mut()
        .unwrap()
        .remove("unit_price");
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "lines[1].unit_price");
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn an_unknown_field_is_named() {
    let mut value = order_created();
    value["lines"][0]["colour"] = json!("red");
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "lines[0].colour");
    assert!(reason.contains("unknown field"), "{reason}");
}

#[test]
fn a_bad_enum_symbol_is_named_with_the_allowed_ones() {
    let (field, reason) = schema_invalid(decode(&cancelled(json!({"reason": "bored"}))));
    assert_eq!(field, "reason");
    assert!(reason.contains("\"out_of_stock\""), "{reason}");
}

#[test]
fn a_fractional_int_is_named() {
    let mut value = order_created();
    value["lines"][1]["quantity"] = json!(1.5);
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "lines[1].quantity");
    assert!(reason.contains("fractions"), "{reason}");
}

#[test]
fn a_null_for_a_required_field_is_named() {
    let mut value = order_created();
    value["user_id"] = Json::Null;
    let (field, _) = schema_invalid(decode(&value));
    assert_eq!(field, "user_id");
}

#[test]
fn an_id_that_is_not_a_uuid_is_named() {
    let mut value = order_created();
    value["lines"][0]["product_id"] = json!("mug");
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "lines[0].product_id");
    assert!(reason.contains("UUID"), "{reason}");
}

#[test]
fn a_malformed_currency_is_named() {
    let mut value = order_created();
    value["total"]["currency"] = json!("euro");
    let (field, reason) = schema_invalid(decode(&value));
    assert_eq!(field, "total.currency");
    assert!(reason.contains("ISO 4217"), "{reason}");
}

#[test]
fn an_unknown_event_type_lists_the_known_ones() {
    let mut value = order_created();
    value["event_type"] = json!("order.creatd");
    let err = decode(&value).unwrap_err();
    assert_eq!(err.kind(), "unknown_event_type");
    assert!(err.to_string().contains("order.created"), "{err}");
}

#[test]
fn a_missing_event_type_is_named() {
    let mut value = order_created();
    value.as_object_mut().unwrap().remove("event_type");
    let (field, _) = schema_invalid(decode(&value));
    assert_eq!(field, "event_type");
}

#[test]
fn the_event_type_may_come_from_a_header_alone() {
    let mut value = order_created();
    value.as_object_mut().unwrap().remove("event_type");
    let decoded = decode_with(&value, &[header("event_type", "order.created")]).unwrap();
    assert_eq!(decoded.event.event_type(), "order.created");
}

#[test]
fn a_header_agreeing_with_the_value_is_fine() {
    let decoded = decode_with(&order_created(), &[header("event_type", "order.created")]);
    assert!(decoded.is_ok(), "{decoded:?}");
}

#[test]
fn a_header_disagreeing_with_the_value_is_a_bad_envelope() {
    let err =
        decode_with(&order_created(), &[header("event_type", "order.confirmed")]).unwrap_err();
    assert_eq!(err.kind(), "bad_envelope");
    assert!(err.to_string().contains("order.confirmed"), "{err}");
}

#[test]
fn envelope_fields_in_the_value_are_used() {
    let mut value = order_created();
    let event_id = "0190c2a8-7a8e-7cc4-9f3c-0000000000aa";
    let cause = "0190c2a8-7a8e-7cc4-9f3c-0000000000bb";
    value["event_id"] = json!(event_id);
    value["causation_id"] = json!(cause);
    value["occurred_at"] = json!(1714564800000i64);
    value["traceparent"] = json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let envelope = decode(&value).unwrap().envelope;
    assert_eq!(envelope.event_id.to_string(), event_id);
    assert_eq!(envelope.correlation_id.to_string(), event_id);
    assert_eq!(
        envelope.causation_id.map(|c| c.to_string()).as_deref(),
        Some(cause)
    );
    assert_eq!(envelope.occurred_at.timestamp_millis(), 1714564800000);
    assert!(envelope.traceparent.is_some());
}

#[test]
fn a_malformed_envelope_field_is_a_bad_envelope() {
    let mut value = order_created();
    value["event_id"] = json!("42");
    let err = decode(&value).unwrap_err();
    assert_eq!(err.kind(), "bad_envelope");
    assert!(err.to_string().contains("event_id"), "{err}");
}

#[test]
fn a_stated_aggregate_id_must_match_the_payload() {
    let mut value = order_created();
    value["aggregate_id"] = json!(USER);
    let err = decode(&value).unwrap_err();
    assert_eq!(err.kind(), "bad_envelope");
    value["aggregate_id"] = json!(ORDER.to_uppercase());
    assert_eq!(decode(&value).unwrap().envelope.aggregate_id, ORDER);
}

#[test]
fn without_an_event_id_rereading_a_record_gives_the_same_id() {
    let first = decode(&order_created()).unwrap().envelope.event_id;
    let again = decode(&order_created()).unwrap().envelope.event_id;
    assert_eq!(first, again);
    assert_eq!(first.get_version_num(), 5);
    let bytes = serde_json::to_vec(&order_created()).unwrap();
    let elsewhere = decode_json(&RawRecord::new("orders", 2, 18, Some(&bytes))).unwrap();
    assert_ne!(elsewhere.envelope.event_id, first);
}

#[test]
fn occurred_at_falls_back_to_the_record_timestamp() {
    let bytes = serde_json::to_vec(&order_created()).unwrap();
    let at = crate::timestamp::from_millis(1_700_000_000_000).unwrap();
    let record = RawRecord::new("orders", 0, 0, Some(&bytes)).with_timestamp(at);
    assert_eq!(decode_json(&record).unwrap().envelope.occurred_at, at);
}

#[test]
fn json_that_is_not_an_object_or_does_not_parse_is_undecodable() {
    for bytes in [&b"{\"event_type\": "[..], b"[1, 2]", b"order.created"] {
        let err = decode_json(&RawRecord::new("orders", 0, 0, Some(bytes))).unwrap_err();
        assert_eq!(err.kind(), "undecodable", "{bytes:?}: {err}");
    }
}

#[test]
fn avro_bytes_are_not_mistaken_for_json() {
    let bytes = crate::codec::encode_with_schema_id(&crate::samples::order_created(), 1).unwrap();
    let err = decode_json(&RawRecord::new("orders", 0, 0, Some(&bytes))).unwrap_err();
    assert_eq!(err.kind(), "undecodable");
    assert!(err.to_string().contains("Codec"), "{err}");
}

#[test]
fn a_control_character_in_any_text_is_schema_invalid_naming_the_field() {
    let registered = json!({"event_type": "user.registered", "user_id": USER,
        "email": "kim@example.com", "name": "Ki\u{0}m", "registered_at": 1714564800123i64});
    let (field, why) = schema_invalid(decode(&registered));
    assert_eq!(field, "name");
    assert!(why.contains("control characters"), "{why}");
}
