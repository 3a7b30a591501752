//! The `eventmart` tool against a real broker and schema registry: topic provisioning,
//! durability across a broker restart, and decoding what people and services write.

use std::process::Stdio;
use std::time::Duration;

use eventmart_runtime::testing::{TestBroker, TestRegistry, unique_prefix};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const TOPICS: [&str; 5] = ["users", "catalog", "inventory", "orders", "payments"];

async fn eventmart(
    broker: &str,
    registry: &str,
    prefix: &str,
    args: &[&str],
) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eventmart"))
        .args(args)
        .env("EVENTMART_BOOTSTRAP_SERVERS", broker)
        .env("EVENTMART_REGISTRY_URL", registry)
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

/// Produces `lines` (one record each) with the project's kcat wrapper.
async fn kcat_produce(broker: &str, topic: &str, extra: &[&str], lines: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/kcat");
    let mut child = Command::new("bash")
        .arg(script)
        .args(["-b", broker, "-P", "-t", topic])
        .args(extra)
        .stdin(Stdio::piped())
        .spawn()
        .expect("scripts/kcat runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(lines.as_bytes()).await.expect("write");
    drop(stdin);
    let status = child.wait().await.expect("kcat exits");
    assert!(status.success(), "kcat -P failed");
}

#[tokio::test]
async fn topics_are_created_once_each_with_its_dead_letter_topic_and_explicit_retention() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_prefix();

    let (ok, first, err) = eventmart(
        &broker.bootstrap,
        "http://127.0.0.1:1",
        &prefix,
        &["topics", "create"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        first.lines().filter(|l| l.starts_with("created ")).count(),
        10,
        "{first}"
    );

    let (ok, second, err) = eventmart(
        &broker.bootstrap,
        "http://127.0.0.1:1",
        &prefix,
        &["topics", "create"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(
        second.lines().filter(|l| l.starts_with("exists ")).count(),
        10,
        "{second}"
    );

    let (ok, listed, err) = eventmart(
        &broker.bootstrap,
        "http://127.0.0.1:1",
        &prefix,
        &["topics", "list"],
    )
    .await;
    assert!(ok, "{err}");
    for topic in TOPICS {
        for name in [format!("{prefix}{topic}"), format!("{prefix}{topic}.dlq")] {
            assert!(
                listed.contains(&format!("{name}\t3 partitions")),
                "{name} in {listed}"
            );
        }
    }

    // Retention is set explicitly, never left to the broker's default.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("admin");
    let topic = format!("{prefix}orders");
    let configs = admin
        .describe_configs([&ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .expect("describe");
    let config = configs[0].as_ref().expect("orders config");
    let retention = config.get("retention.ms").and_then(|e| e.value.clone());
    assert_eq!(retention.as_deref(), Some("3153600000000"));
}

#[tokio::test]
async fn a_bad_flag_gets_a_usage_message() {
    let (ok, _, err) = eventmart(
        "127.0.0.1:1",
        "http://127.0.0.1:1",
        "",
        &["topics", "create", "--partitions", "0"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("--partitions") && err.contains("--help"),
        "{err}"
    );
}

#[tokio::test]
async fn records_and_headers_survive_a_broker_crash_and_restart() {
    let broker = TestBroker::start().await.expect("broker");
    let prefix = unique_prefix();
    let (ok, _, err) = eventmart(
        &broker.bootstrap,
        "http://127.0.0.1:1",
        &prefix,
        &["topics", "create"],
    )
    .await;
    assert!(ok, "{err}");
    let topic = format!("{prefix}orders");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..50 {
        let payload = format!("record-{i}");
        let key = format!("key-{}", i % 7);
        let headers = OwnedHeaders::new().insert(Header {
            key: "n",
            value: Some(&i.to_string()),
        });
        producer
            .send(
                FutureRecord::to(&topic)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("acknowledged");
    }
    drop(producer);

    broker.restart().await.expect("broker restarts");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "durability-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..3 {
        assignment
            .add_partition_offset(&topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 50 {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("all records come back after the restart")
            .expect("record");
        let payload = std::str::from_utf8(message.payload().expect("payload")).expect("utf8");
        let n: u32 = payload
            .trim_start_matches("record-")
            .parse()
            .expect("number");
        let header = message.headers().expect("headers").get(0);
        assert_eq!(header.value, Some(n.to_string().as_bytes()));
        seen.insert(n);
    }
    assert_eq!(seen.len(), 50);
}

fn decoded_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("decode prints JSON lines"))
        .collect()
}

#[tokio::test]
async fn events_from_kcat_and_from_the_codec_decode_and_bad_records_say_what_is_wrong() {
    let broker = TestBroker::start().await.expect("broker");
    let registry = TestRegistry::start().await.expect("registry");
    let prefix = unique_prefix();
    let run =
        |args: &'static [&'static str]| eventmart(&broker.bootstrap, &registry.url, &prefix, args);
    let (ok, _, err) = run(&["topics", "create"]).await;
    assert!(ok, "{err}");
    let (ok, registered, err) = run(&["schemas", "register"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        registered.lines().count(),
        eventmart_events::catalog().len(),
        "{registered}"
    );

    // What a person types: a JSON user.registered, a copy missing its email, and garbage.
    let user = "5b0e6a8e-3c1f-4d2a-9e7b-1a2b3c4d5e6f";
    let lines = format!(
        "{{\"event_type\":\"user.registered\",\"user_id\":\"{user}\",\"email\":\"ada@example.com\",\"name\":\"Ada\",\"registered_at\":\"2026-11-26T10:00:00Z\"}}\n\
         {{\"event_type\":\"user.registered\",\"user_id\":\"{user}\",\"name\":\"Ada\",\"registered_at\":1795000000000}}\n\
         this is not an event\n"
    );
    let topic = format!("{prefix}users");
    kcat_produce(&broker.bootstrap, &topic, &["-k", user], &lines).await;

    // What a service writes: Avro in the Confluent wire format with envelope headers.
    let event = eventmart_events::Event::UserRegistered(eventmart_events::users::UserRegistered {
        user_id: user.parse().expect("uuid"),
        email: "grace@example.com".into(),
        name: "Grace".into(),
        registered_at: eventmart_events::timestamp::now(),
    });
    let envelope = eventmart_events::Envelope::new(&event);
    let value = eventmart_events::Codec::new(&registry.url)
        .encode(&topic, &event)
        .await
        .expect("encodes through the registry");
    let mut headers = OwnedHeaders::new();
    for (name, bytes) in envelope.to_headers() {
        headers = headers.insert(Header {
            key: name,
            value: Some(&bytes),
        });
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .create()
        .expect("producer");
    producer
        .send(
            FutureRecord::to(&topic)
                .key(user)
                .payload(&value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");

    let (ok, out, err) = run(&["decode", "--topic", "users", "--compact"]).await;
    assert!(ok, "{err}");
    let records = decoded_lines(&out);
    assert_eq!(records.len(), 4, "{out}");

    assert_eq!(records[0]["format"], "json");
    assert_eq!(records[0]["event"]["event_type"], "user.registered");
    assert_eq!(records[0]["event"]["email"], "ada@example.com");
    assert_eq!(
        records[0]["event"]["registered_at"],
        "2026-11-26T10:00:00.000Z"
    );

    assert_eq!(
        records[1]["error"]["kind"], "schema_invalid",
        "{}",
        records[1]
    );
    assert!(
        records[1]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("email")
    );

    assert_eq!(records[2]["error"]["kind"], "undecodable", "{}", records[2]);

    assert!(
        records[3]["format"]
            .as_str()
            .expect("format")
            .starts_with("avro")
    );
    assert_eq!(records[3]["event"]["email"], "grace@example.com");
    assert_eq!(
        records[3]["event"]["event_id"],
        envelope.event_id.to_string()
    );
}
