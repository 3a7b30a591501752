//! `eventmart dlq` against a real broker: dead letters are listed one a line and replayed onto
//! their original topic without their `dlq.*` headers.

use std::time::Duration;

use chrono::Utc;
use eventmart_events::RawRecord;
use eventmart_runtime::dlq::{self, Reason};
use eventmart_runtime::testing::{TestBroker, unique_prefix};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::process::Command;

async fn eventmart(broker: &str, prefix: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eventmart"))
        .args(args)
        .env("EVENTMART_BOOTSTRAP_SERVERS", broker)
        .env("EVENTMART_REGISTRY_URL", "http://127.0.0.1:1")
        .env("EVENTMART_TOPIC_PREFIX", prefix)
        .output()
        .await
        .expect("eventmart runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes a dead letter of a record first read at `orders`/`partition`@`offset`.
async fn dead_letter(
    producer: &FutureProducer,
    orders: &str,
    (partition, offset): (i32, i64),
    kind: &str,
    value: &[u8],
) {
    let reason = Reason {
        kind,
        message: "field `order_id` is invalid:\nmissing",
        consumer_group: "inventory",
        failed_at: Utc::now(),
    };
    let original = vec![("source".to_owned(), Some(b"kcat".to_vec()))];
    let headers = dlq::dead_letter_headers(&original, orders, partition, offset, &reason)
        .iter()
        .fold(OwnedHeaders::new(), |out, (key, value)| {
            out.insert(Header {
                key,
                value: value.as_deref(),
            })
        });
    producer
        .send(
            FutureRecord::to(&format!("{orders}.dlq"))
                .key("k1")
                .payload(value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_onto_their_topic() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_prefix();
    let (ok, _, err) = eventmart(&broker.bootstrap, &prefix, &["topics", "create"]).await;
    assert!(ok, "{err}");
    let orders = format!("{prefix}orders");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("producer");
    let value = br#"{"event_type": "order.created"}"#;
    dead_letter(&producer, &orders, (2, 17), "schema_invalid", value).await;
    dead_letter(&producer, &orders, (0, 3), "undecodable", b"\x07").await;

    let (ok, listed, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "list", "--topic", "orders"],
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].contains("schema_invalid"), "{listed}");
    assert!(lines[0].contains(&format!("{orders}/2@17")), "{listed}");
    assert!(
        lines[0].ends_with("field `order_id` is invalid: missing"),
        "{listed}"
    );
    let (ok, only, _) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "list", "--topic", "orders", "--kind", "undecodable"],
    )
    .await;
    assert!(ok);
    assert_eq!(only.lines().count(), 1, "{only}");
    let (ok, later, _) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "list", "--topic", "orders", "--from-offset", "1"],
    )
    .await;
    assert!(ok);
    assert_eq!(later.lines().count(), 1, "{later}");
    assert!(later.contains("undecodable"), "{later}");

    let (ok, replayed, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &[
            "dlq",
            "replay",
            "--topic",
            "orders",
            "--kind",
            "schema_invalid",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(replayed.lines().count(), 1, "{replayed}");
    assert!(err.contains("replayed 1 dead letters"), "{err}");

    // The record is back on its topic as it was, named by its original position.
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "dlq-test")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment
            .add_partition_offset(&orders, partition, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&assignment).expect("assigned");
    let message = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
        .await
        .expect("the replayed record arrives")
        .expect("no error");
    assert_eq!(message.key(), Some(&b"k1"[..]));
    assert_eq!(message.payload(), Some(&value[..]));
    let headers: Vec<(String, String)> = message
        .headers()
        .expect("headers")
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
            (h.key.to_owned(), value)
        })
        .collect();
    let event_id = RawRecord::new(&orders, 2, 17, None).fallback_event_id();
    assert_eq!(
        headers,
        [
            ("source".to_owned(), "kcat".to_owned()),
            ("event_id".to_owned(), event_id.to_string()),
        ]
    );
}
