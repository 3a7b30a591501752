//! The codec as a consumer or a CLI uses it: dispatch by format, printing, and the registry
//! being away.

use std::net::TcpListener;

use super::*;
use crate::samples;

fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn printed_events_decode_back_to_the_same_event_and_envelope() {
    for event in samples::full().into_iter().chain(samples::sparse()) {
        let cause = Envelope::new(&samples::order_created());
        for envelope in [
            Envelope::new(&event),
            Envelope::new(&event)
                .caused_by(&cause)
                .with_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ] {
            let printed = serde_json::to_vec_pretty(&to_json(&event, &envelope)).unwrap();
            let decoded = decode_json(&RawRecord::new("t", 0, 0, Some(&printed))).unwrap();
            assert_eq!(decoded.event, event);
            assert_eq!(decoded.envelope, envelope);
        }
    }
}

#[test]
fn printed_events_have_rfc3339_timestamps_and_flat_fields() {
    let event = samples::order_created();
    let json = to_json(&event, &Envelope::new(&event));
    assert_eq!(json["event_type"], "order.created");
    assert_eq!(json["occurred_at"], "2024-05-01T12:00:00.123Z");
    assert_eq!(json["created_at"], "2024-05-01T12:00:00.123Z");
    assert_eq!(json["total"]["currency"], "EUR");
    assert!(json.get("causation_id").is_none());
}

#[test]
fn every_example_in_the_schemas_readme_decodes() {
    let readme = include_str!("../../../../schemas/README.md");
    let mut seen = std::collections::BTreeSet::new();
    let mut blocks = readme.split("```json\n").skip(1);
    for (n, block) in blocks.by_ref().enumerate() {
        let example = block.split("```").next().unwrap();
        let decoded = decode_json(&RawRecord::new(
            "readme",
            0,
            n as i64,
            Some(example.as_bytes()),
        ))
        .unwrap_or_else(|e| panic!("example {} does not decode: {e}\n{example}", n + 1));
        seen.insert(decoded.event.event_type());
    }
    let all: std::collections::BTreeSet<_> = crate::catalog().iter().map(|t| t.name).collect();
    assert_eq!(seen, all, "the README shows an example of every event type");
}

#[test]
fn a_value_that_is_neither_avro_nor_json_is_undecodable() {
    let codec = Codec::new(&closed_port_url());
    for value in [&b"hello"[..], b"", b"  \n", b"\x01\x02"] {
        let record = RawRecord::new("orders", 0, 0, Some(value));
        let err = runtime().block_on(codec.decode(&record)).unwrap_err();
        assert_eq!(err.kind(), "undecodable", "{value:?}: {err}");
        assert!(!err.is_transient());
    }
}

#[test]
fn a_tombstone_is_undecodable() {
    let codec = Codec::new(&closed_port_url());
    let err = runtime()
        .block_on(codec.decode(&RawRecord::new("orders", 0, 0, None)))
        .unwrap_err();
    assert_eq!(err.kind(), "undecodable");
}

#[test]
fn json_decodes_without_asking_the_registry() {
    let codec = Codec::new(&closed_port_url());
    let event = samples::order_created();
    let printed = serde_json::to_vec(&to_json(&event, &Envelope::new(&event))).unwrap();
    let decoded = runtime()
        .block_on(codec.decode(&RawRecord::new("orders", 0, 0, Some(&printed))))
        .unwrap();
    assert_eq!(decoded.event, event);
    assert_eq!(decoded.format.to_string(), "json");
}

#[test]
fn an_unreachable_registry_is_a_transient_decode_error() {
    let codec = Codec::with_timeout(&closed_port_url(), std::time::Duration::from_secs(5));
    let bytes = encode_with_schema_id(&samples::order_created(), 1).unwrap();
    let record = RawRecord::new("orders", 0, 0, Some(&bytes));
    let err = runtime().block_on(codec.decode(&record)).unwrap_err();
    assert_eq!(err.kind(), "registry_unavailable", "{err}");
    assert!(err.is_transient());
}

#[test]
fn an_unreachable_registry_is_a_transient_encode_error() {
    let codec = Codec::with_timeout(&closed_port_url(), std::time::Duration::from_secs(5));
    let err = runtime()
        .block_on(codec.encode("orders", &samples::order_created()))
        .unwrap_err();
    assert_eq!(err.kind(), "registry_unavailable", "{err}");
    assert!(err.is_transient());
}

#[test]
fn error_kinds_have_stable_names() {
    let kinds = [
        DecodeError::Undecodable(String::new()).kind(),
        DecodeError::SchemaInvalid {
            field: String::new(),
            reason: String::new(),
        }
        .kind(),
        DecodeError::UnknownEventType(String::new()).kind(),
        DecodeError::RegistryUnavailable(String::new()).kind(),
        DecodeError::BadEnvelope(EnvelopeError::Missing("event_id")).kind(),
    ];
    assert_eq!(
        kinds,
        [
            "undecodable",
            "schema_invalid",
            "unknown_event_type",
            "registry_unavailable",
            "bad_envelope"
        ]
    );
}

#[test]
fn formats_print_their_schema_id() {
    assert_eq!(
        Format::Avro { schema_id: 3 }.to_string(),
        "avro (schema id 3)"
    );
}
