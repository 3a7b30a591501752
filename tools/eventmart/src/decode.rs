//! `eventmart decode`: reads a topic from its beginning and prints every record decoded, as
//! JSON in the same shape a person would produce with kcat. A record that does not decode is
//! printed with the reason instead, and reading goes on.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use eventmart_events::{Codec, RawRecord, to_json};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use eventmart_runtime::process::Connections;

/// What to read and how to print it.
#[derive(Debug, clap::Args)]
pub(crate) struct DecodeArgs {
    /// Topic to read, as named without the prefix (users, orders, orders.dlq, …).
    #[arg(long, short)]
    topic: String,
    /// Keep waiting for new records instead of stopping at the end of the topic.
    #[arg(long, short)]
    follow: bool,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Also print each record's headers.
    #[arg(long)]
    headers: bool,
    /// One JSON object a line instead of pretty-printed.
    #[arg(long)]
    compact: bool,
}

pub(crate) async fn run(conn: &Connections, args: DecodeArgs) -> anyhow::Result<()> {
    let topic = format!("{}{}", conn.topic_prefix, args.topic);
    let consumer: StreamConsumer =
        eventmart_runtime::kafka::client_config(&conn.bootstrap_servers, &conn.kafka)
            .set("group.id", "eventmart-decode")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .create()
            .context("creating the Kafka consumer")?;

    let metadata = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .with_context(|| {
            format!(
                "reading metadata of {topic} from {}",
                conn.bootstrap_servers
            )
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {topic} does not exist (run `eventmart topics create`)");
    }

    // Where each partition ends now; without --follow, reading stops there.
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, Duration::from_secs(10))
            .with_context(|| format!("reading the end of {topic}/{partition}"))?;
        if high > low {
            remaining.insert(partition, high);
        }
        assignment.add_partition_offset(&topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let codec = Codec::new(&conn.registry_url);
    let mut printed = 0u64;
    while args.follow || !remaining.is_empty() {
        if args.limit.is_some_and(|limit| printed >= limit) {
            break;
        }
        let message = consumer.recv().await?;
        let line = describe(&codec, &message, args.headers).await;
        if args.compact {
            println!("{line}");
        } else {
            println!("{}", serde_json::to_string_pretty(&line)?);
        }
        printed += 1;
        if remaining
            .get(&message.partition())
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            remaining.remove(&message.partition());
        }
    }
    Ok(())
}

async fn describe(codec: &Codec, message: &BorrowedMessage<'_>, with_headers: bool) -> Value {
    let headers: Vec<(String, Option<Vec<u8>>)> = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    let record = RawRecord {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().and_then(chrono_millis),
        key: message.key(),
        value: message.payload(),
        headers: &headers,
    };
    let mut out = json!({
        "position": format!("{}/{}@{}", message.topic(), message.partition(), message.offset()),
        "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
    });
    match codec.decode(&record).await {
        Ok(decoded) => {
            out["format"] = json!(decoded.format.to_string());
            out["event"] = to_json(&decoded.event, &decoded.envelope);
        }
        Err(error) => {
            out["error"] = json!({ "kind": error.kind(), "message": error.to_string() });
        }
    }
    if with_headers {
        out["headers"] = headers
            .iter()
            .map(|(k, v)| {
                let value = v
                    .as_deref()
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                (k.clone(), json!(value))
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    out
}

fn chrono_millis(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}
