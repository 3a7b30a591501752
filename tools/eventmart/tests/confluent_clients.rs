//! Conformance with Confluent's own client: `confluent-kafka` for Python (its
//! `SchemaRegistryClient`, `AvroSerializer` and `AvroDeserializer`) against our schema
//! registry. What Confluent's serializer writes must decode with our codec, and what our codec
//! writes must deserialize with theirs.

use std::process::Stdio;

use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderCreated, OrderLine};
use eventmart_events::{Codec, Currency, Event, Money, RawRecord, catalog};
use eventmart_runtime::testing::TestRegistry;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python/confluent_client.py"
);

/// Runs the Python client (EVENTMART_PYTHON, set by scripts/test) with `input` on stdin.
async fn python(args: &[&str], input: &str) -> String {
    let python = std::env::var("EVENTMART_PYTHON")
        .expect("EVENTMART_PYTHON names a Python with confluent-kafka (scripts/test sets it)");
    let mut child = Command::new(python)
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python exits");
    assert!(
        out.status.success(),
        "confluent client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn schema_file(event_type: &str) -> String {
    let entry = catalog()
        .iter()
        .find(|e| e.name == event_type)
        .expect("known event type");
    format!(
        "{}/../../schemas/{}",
        env!("CARGO_MANIFEST_DIR"),
        entry.path()
    )
}

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::parse("EUR").expect("currency"))
}

fn millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).expect("timestamp")
}

/// The same order.created as our type and as the record Confluent's serializer takes.
fn order_created() -> (Event, Value) {
    let order = "0193a0c4-7b1e-7c3a-9b7e-2f4c8d9e1a01";
    let user = "5b0e6a8e-3c1f-4d2a-9e7b-1a2b3c4d5e6f";
    let product = "9d4b7c1e-2a3f-4e5d-8c6b-7a8f9e0d1c2b";
    let event = Event::OrderCreated(OrderCreated {
        order_id: order.parse().expect("uuid"),
        user_id: user.parse().expect("uuid"),
        lines: vec![OrderLine {
            product_id: product.parse().expect("uuid"),
            quantity: 2,
            unit_price: eur(1250),
        }],
        total: eur(2500),
        payment_token: None,
        created_at: millis(1_795_000_000_123),
    });
    let record = json!({
        "order_id": order,
        "user_id": user,
        "lines": [{"product_id": product, "quantity": 2, "unit_price": {"cents": 1250, "currency": "EUR"}}],
        "total": {"cents": 2500, "currency": "EUR"},
        "payment_token": null,
        "created_at": 1_795_000_000_123i64,
    });
    (event, record)
}

/// An order.cancelled with an enum and an optional field left empty.
fn order_cancelled() -> (Event, Value) {
    let order = "0193a0c4-7b1e-7c3a-9b7e-2f4c8d9e1a01";
    let event = Event::OrderCancelled(OrderCancelled {
        order_id: order.parse().expect("uuid"),
        reason: CancellationReason::PaymentDeclined,
        detail: None,
        cancelled_at: millis(1_795_000_000_999),
    });
    let record = json!({
        "order_id": order,
        "reason": "payment_declined",
        "detail": null,
        "cancelled_at": 1_795_000_000_999i64,
    });
    (event, record)
}

#[tokio::test]
async fn what_confluents_serializer_writes_decodes_with_our_codec() {
    let registry = TestRegistry::start().await.expect("registry");
    let codec = Codec::new(&registry.url);
    for (event, record) in [order_created(), order_cancelled()] {
        let topic = "orders";
        let schema = schema_file(event.event_type());
        let hex = python(
            &["serialize", &registry.url, topic, &schema],
            &record.to_string(),
        )
        .await;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(
            bytes[0], 0,
            "Confluent wire format starts with magic byte 0"
        );
        let decoded = codec
            .decode(&RawRecord::new(topic, 0, 0, Some(&bytes)))
            .await
            .expect("our codec decodes Confluent's bytes");
        assert_eq!(decoded.event, event);
    }
}

#[tokio::test]
async fn what_our_codec_writes_deserializes_with_confluents_client() {
    let registry = TestRegistry::start().await.expect("registry");
    let codec = Codec::new(&registry.url);
    for (event, record) in [order_created(), order_cancelled()] {
        let topic = "orders";
        let bytes = codec.encode(topic, &event).await.expect("encodes");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let out = python(&["deserialize", &registry.url, topic], &hex).await;
        let read: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(read, record);
    }
}

#[tokio::test]
async fn every_event_type_round_trips_through_our_registry_with_its_envelope() {
    let registry = TestRegistry::start().await.expect("registry");
    let codec = Codec::new(&registry.url);
    let events = eventmart_events::samples::full()
        .into_iter()
        .chain(eventmart_events::samples::sparse());
    for event in events {
        let topic = event.topic().base_name();
        let envelope = eventmart_events::Envelope::new(&event);
        let bytes = codec.encode(topic, &event).await.expect("encodes");
        let headers: Vec<(String, Option<Vec<u8>>)> = envelope
            .to_headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Some(v)))
            .collect();
        let record = RawRecord::new(topic, 0, 0, Some(&bytes)).with_headers(&headers);
        let decoded = codec.decode(&record).await.expect("decodes");
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.envelope, envelope);
        assert!(matches!(
            decoded.format,
            eventmart_events::Format::Avro { .. }
        ));
    }
}
