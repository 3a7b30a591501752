//! `eventmart status` against a real broker: each group's committed positions, its lag in
//! events and in seconds, and the dead-letter counts.

use std::time::Duration;

use chrono::Utc;
use eventmart_runtime::testing::{TestBroker, unique_prefix};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
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

/// Writes one record to `topic`/`partition`, stamped `age` ago.
async fn produce(producer: &FutureProducer, topic: &str, partition: i32, age: Duration) {
    let at = Utc::now().timestamp_millis() - i64::try_from(age.as_millis()).expect("small");
    producer
        .send(
            FutureRecord::to(topic)
                .partition(partition)
                .key("k")
                .payload("{}")
                .timestamp(at),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");
}

/// Commits `offsets` (topic, partition, next offset) as consumer group `group`, the way a
/// consumer's background commit does.
fn commit(broker: &str, group: &str, offsets: &[(&str, i32, i64)]) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for (topic, partition, offset) in offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("offset");
    }
    consumer
        .commit(&list, CommitMode::Sync)
        .expect("the group's offsets are committed");
}

fn group<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == name)
        .unwrap_or_else(|| panic!("group {name} in {status:#}"))
}

fn partition<'a>(group: &'a Value, topic: &str, partition: i64) -> &'a Value {
    group["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .find(|p| p["topic"] == topic && p["partition"] == partition)
        .unwrap_or_else(|| panic!("{topic}/{partition} in {group:#}"))
}

#[tokio::test]
async fn status_shows_each_groups_lag_in_events_and_seconds_and_the_dead_letter_counts() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_prefix();
    let (ok, _, err) = eventmart(&broker.bootstrap, &prefix, &["topics", "create"]).await;
    assert!(ok, "{err}");
    let orders = format!("{prefix}orders");
    let users = format!("{prefix}users");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("producer");

    // orders/0: five records, the third written 90 s ago; orders/1: one record.
    for age in [300, 200, 90, 30, 10] {
        produce(&producer, &orders, 0, Duration::from_secs(age)).await;
    }
    produce(&producer, &orders, 1, Duration::from_secs(5)).await;
    for _ in 0..2 {
        produce(&producer, &users, 2, Duration::ZERO).await;
    }
    // Dead letters: two of orders, one of users.
    for partition in [0, 2] {
        produce(
            &producer,
            &format!("{orders}.dlq"),
            partition,
            Duration::ZERO,
        )
        .await;
    }
    produce(&producer, &format!("{users}.dlq"), 1, Duration::ZERO).await;

    // inventory has consumed two records of orders/0 and all of orders/1; sales none of
    // orders/0; a rebuilt read model, found by name, is at the start of users/2.
    commit(
        &broker.bootstrap,
        "inventory",
        &[(&orders, 0, 2), (&orders, 1, 1)],
    );
    commit(&broker.bootstrap, "sales", &[(&orders, 0, 0)]);
    commit(&broker.bootstrap, "order-view.v2", &[(&users, 2, 0)]);

    let (ok, out, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["status", "--json", "--group", "order-view.v2"],
    )
    .await;
    assert!(ok, "{err}");
    let status: Value = serde_json::from_str(&out).expect("status --json prints JSON");

    let inventory = group(&status, "inventory");
    let behind = partition(inventory, &orders, 0);
    assert_eq!(behind["committed"], 2, "{behind}");
    assert_eq!(behind["high_watermark"], 5, "{behind}");
    assert_eq!(behind["lag"], 3, "{behind}");
    // The oldest unconsumed record is the one written 90 s ago.
    let age = behind["lag_seconds"].as_f64().expect("seconds");
    assert!((89.0..150.0).contains(&age), "{behind}");
    let done = partition(inventory, &orders, 1);
    assert_eq!(
        (done["lag"].as_i64(), done["lag_seconds"].as_f64()),
        (Some(0), Some(0.0))
    );
    assert_eq!(inventory["lag"], 3);
    assert_eq!(inventory["lag_seconds"], behind["lag_seconds"]);
    assert_eq!(inventory["partitions"].as_array().map(Vec::len), Some(2));

    // Another group on the same partition, further behind: its oldest record is older.
    let sales = partition(group(&status, "sales"), &orders, 0);
    assert_eq!(sales["lag"], 5, "{sales}");
    let age = sales["lag_seconds"].as_f64().expect("seconds");
    assert!((299.0..360.0).contains(&age), "{sales}");

    let rebuild = group(&status, "order-view.v2");
    assert_eq!(rebuild["lag"], 2, "{rebuild}");
    let age = rebuild["lag_seconds"].as_f64().expect("seconds");
    assert!((0.0..60.0).contains(&age), "{rebuild}");

    // A known group that has committed nothing is there, with no positions.
    let payments = group(&status, "payments");
    assert_eq!(payments["partitions"], Value::Array(vec![]));
    assert_eq!(payments["lag"], Value::Null);

    let counts: Vec<(String, Value)> = status["dead_letters"]
        .as_array()
        .expect("dead letters")
        .iter()
        .map(|d| {
            (
                d["topic"].as_str().expect("topic").to_owned(),
                d["count"].clone(),
            )
        })
        .collect();
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(
        counts.contains(&(format!("{orders}.dlq"), 2.into())),
        "{counts:?}"
    );
    assert!(
        counts.contains(&(format!("{users}.dlq"), 1.into())),
        "{counts:?}"
    );
    assert!(
        counts.contains(&(format!("{prefix}payments.dlq"), 0.into())),
        "{counts:?}"
    );

    // The same in the table.
    let (ok, table, err) = eventmart(
        &broker.bootstrap,
        &prefix,
        &["status", "--group", "order-view.v2"],
    )
    .await;
    assert!(ok, "{err}");
    let words = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let lines: Vec<Vec<String>> = table.lines().map(words).collect();
    assert_eq!(
        lines[0],
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "HIGH-WATERMARK",
            "LAG",
            "LAG-SECONDS"
        ],
        "{table}"
    );
    let row = |first: &[&str]| {
        lines
            .iter()
            .find(|l| l.len() >= first.len() && l[..first.len()] == *first)
            .unwrap_or_else(|| panic!("a row starting {first:?} in\n{table}"))
    };
    assert_eq!(
        row(&["inventory", &orders, "0"])[3..6],
        ["2", "5", "3"],
        "{table}"
    );
    assert_eq!(row(&["inventory", "(total)"])[2], "3", "{table}");
    assert_eq!(row(&[&format!("{orders}.dlq")])[1], "2", "{table}");
    assert_eq!(row(&[&format!("{prefix}catalog.dlq")])[1], "0", "{table}");
}
