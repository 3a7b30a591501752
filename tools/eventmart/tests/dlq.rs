//! `eventmart dlq` against a real broker: dead letters are listed one a line, shown one in
//! full, and replayed onto their original topic without their `dlq.*` headers.

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

/// Writes a dead letter of a record first read at `orders`/`partition`@`offset`; returns
/// its partition and offset in the dead-letter topic.
async fn dead_letter(
    producer: &FutureProducer,
    orders: &str,
    (partition, offset): (i32, i64),
    kind: &str,
    value: &[u8],
) -> (i32, i64) {
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
    let delivered = producer
        .send(
            FutureRecord::to(&format!("{orders}.dlq"))
                .key("k1")
                .payload(value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");
    (delivered.partition, delivered.offset)
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

    // A second consumer group failed on the same record: one copy goes back, for both.
    dead_letter(&producer, &orders, (2, 17), "schema_invalid", value).await;
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
    assert!(
        err.contains("1 more dead letters of records put back"),
        "{err}"
    );

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

#[tokio::test]
async fn a_dead_letter_is_shown_in_full_and_a_missing_one_is_an_error() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_prefix();
    let (ok, _, err) = eventmart(&broker.bootstrap, &prefix, &["topics", "create"]).await;
    assert!(ok, "{err}");
    let orders = format!("{prefix}orders");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("producer");
    let event = eventmart_events::samples::order_created();
    let envelope = eventmart_events::Envelope::new(&event);
    let json = eventmart_events::to_json(&event, &envelope);
    let value = serde_json::to_vec(&json).expect("json");
    let (partition, offset) =
        dead_letter(&producer, &orders, (2, 17), "handler_failed", &value).await;
    let (garbage_partition, garbage_offset) =
        dead_letter(&producer, &orders, (0, 3), "undecodable", b"\x07\x00").await;

    let position = format!("{partition}:{offset}");
    let (ok, shown, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "show", "--topic", "orders", &position],
    )
    .await;
    assert!(ok, "{err}");
    let line = |label: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("a {label} line in\n{shown}"))
            .split_once(':')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(line("dead letter"), format!("{orders}.dlq {position}"));
    assert_eq!(line("kind"), "handler_failed");
    assert_eq!(line("reason"), "field `order_id` is invalid:");
    assert!(shown.contains("\n                 missing\n"), "{shown}");
    assert_eq!(line("original"), format!("{orders}/2@17"));
    assert_eq!(line("consumer group"), "inventory");
    assert!(line("failed at").ends_with('Z'), "{shown}");
    assert_eq!(line("key"), "k1");
    assert!(shown.contains("\n  source:"), "{shown}");
    assert_eq!(line("value"), "json, decoded");
    let (_, value_text) = shown.split_once("value: json, decoded\n").expect("value");
    let decoded: serde_json::Value = serde_json::from_str(value_text).expect("pretty JSON");
    assert_eq!(decoded["event_type"], "order.created");
    assert_eq!(decoded["order_id"], json["order_id"]);
    assert_eq!(decoded["event_id"], json["event_id"]);

    let (ok, shown, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &[
            "dlq",
            "show",
            "-t",
            "orders",
            &format!("{garbage_partition}:{garbage_offset}"),
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(shown.contains("kind:            undecodable"), "{shown}");
    assert!(shown.contains("value: 2 bytes, does not decode"), "{shown}");
    assert!(shown.ends_with("\n\\x07\\x00\n"), "{shown}");

    let (ok, out, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &[
            "dlq",
            "show",
            "--topic",
            "orders",
            &format!("{partition}:99"),
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!("no dead letter at {orders}.dlq {partition}:99")),
        "{err}"
    );
    let (ok, _, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "show", "--topic", "orders", "7:0"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("has no partition 7"), "{err}");
    let (ok, _, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["dlq", "show", "-t", "orders", "zero"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("PARTITION:OFFSET"), "{err}");
}
