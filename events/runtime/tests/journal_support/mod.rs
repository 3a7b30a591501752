//! What the journal, relay and command tests share: catalog events for test data, a fresh
//! journal on either engine, a relay task, and a reader of whole topics.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use eventmart_events::codec::RawRecord;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::{Codec, Envelope, Event, Topic, Topics, timestamp};
use eventmart_runtime::db::{Engine, Migrations, connect_component};
use eventmart_runtime::journal::{Journal, Relay, RelayConfig};
use eventmart_runtime::kafka::{TopicLayout, provision_topics};
use eventmart_runtime::metrics::Metrics;
use eventmart_runtime::testing::{TestDatabase, unique_prefix, wait_for};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `inventory.updated` RESTOCKED: `quantity` of `product`, whose id is the aggregate id.
pub fn restocked(product: Uuid, quantity: i32) -> (Event, Envelope) {
    let event = Event::InventoryUpdated(InventoryUpdated {
        change: InventoryChange::Restocked,
        order_id: None,
        lines: vec![StockLine {
            product_id: product,
            quantity,
        }],
        reason: None,
        updated_at: timestamp::now(),
    });
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// A fresh database on `engine` with the runtime's tables, and a journal over it whose
/// topics carry a prefix of their own.
pub async fn journal(engine: Engine) -> anyhow::Result<(TestDatabase, Journal)> {
    let database = TestDatabase::create(engine).await?;
    let db = connect_component(
        &database.url,
        Migrations {
            sqlite: Migrator::DEFAULT,
            postgres: Migrator::DEFAULT,
        },
    )
    .await?;
    Ok((database, Journal::new(db, Topics::new(unique_prefix()))))
}

/// Creates the journal's topics on the broker.
pub async fn provision(bootstrap: &str, journal: &Journal) -> anyhow::Result<()> {
    provision_topics(
        bootstrap,
        &[],
        &journal.topics().all(),
        &TopicLayout::default(),
    )
    .await?;
    Ok(())
}

/// A relay running as a task until the token is cancelled.
pub struct RunningRelay {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), eventmart_runtime::journal::RelayError>>,
    pub metrics: Metrics,
}

impl RunningRelay {
    pub fn start(journal: &Journal, bootstrap: &str, registry: &str) -> anyhow::Result<Self> {
        Self::start_with(journal, RelayConfig::new(bootstrap), registry)
    }

    pub fn start_with(
        journal: &Journal,
        config: RelayConfig,
        registry: &str,
    ) -> anyhow::Result<Self> {
        // The relay's log lines show in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info,rdkafka=warn".into()),
            )
            .with_test_writer()
            .try_init();
        let metrics = Metrics::new();
        let codec = Codec::with_timeout(registry, Duration::from_secs(2));
        let relay = Relay::new(journal.clone(), codec, metrics.clone(), config)?;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(relay.run(shutdown.clone()));
        Ok(Self {
            shutdown,
            task,
            metrics,
        })
    }

    /// Cancels the relay and waits for it to return, which it must do promptly.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task).await???;
        Ok(())
    }
}

/// Waits until the journal has nothing left to publish.
pub async fn wait_until_published(journal: &Journal, deadline: Duration) -> anyhow::Result<()> {
    wait_for("every event to be published", deadline, || async {
        matches!(journal.unpublished().await, Ok(0)).then_some(())
    })
    .await
}

/// One record as read back from a topic.
#[derive(Debug, Clone)]
pub struct Received {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub envelope: Envelope,
    pub event: Event,
}

/// Reads `topic` from the start (every partition) until `distinct` different events have
/// been read and nothing more arrives for a moment; returns the records in partition and
/// offset order.
pub async fn read_topic(
    bootstrap: &str,
    registry: &str,
    topic: &str,
    distinct: usize,
    deadline: Duration,
) -> anyhow::Result<Vec<Received>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..TopicLayout::default().partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let codec = Codec::new(registry);
    let mut received = Vec::new();
    let mut seen = HashSet::new();
    let until = tokio::time::Instant::now() + deadline;
    loop {
        // Once everything expected is in, linger briefly to catch stray extras.
        let wait = if seen.len() >= distinct {
            Duration::from_millis(500)
        } else {
            until.saturating_duration_since(tokio::time::Instant::now())
        };
        let message = match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(message) => message?,
            Err(_) if seen.len() >= distinct => break,
            Err(_) => anyhow::bail!(
                "read {} of {distinct} events from {topic} within {deadline:?}",
                seen.len()
            ),
        };
        let headers: Vec<(String, Vec<u8>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let raw_headers: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let record = RawRecord::new(
            topic,
            message.partition(),
            message.offset(),
            message.payload(),
        )
        .with_headers(&raw_headers);
        let decoded = codec.decode(&record).await?;
        assert!(
            matches!(decoded.format, eventmart_events::Format::Avro { .. }),
            "values are Avro"
        );
        seen.insert(decoded.envelope.event_id);
        received.push(Received {
            partition: message.partition(),
            offset: message.offset(),
            key: String::from_utf8(message.key().unwrap_or_default().to_vec())?,
            headers,
            envelope: decoded.envelope,
            event: decoded.event,
        });
    }
    received.sort_by_key(|r| (r.partition, r.offset));
    Ok(received)
}

/// Checks what a topic holds against what was committed, per aggregate: every committed
/// event is there, with its aggregate id as key and its envelope as headers (each once),
/// and the first copy of each event comes in commit order. Returns how many records were
/// duplicates.
pub fn check_against_committed(
    received: &[Received],
    committed: &BTreeMap<String, Vec<(Event, Envelope)>>,
) -> usize {
    let mut first_copies: BTreeMap<&str, Vec<Uuid>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for record in received {
        assert_eq!(
            record.key, record.envelope.aggregate_id,
            "records are keyed by aggregate id"
        );
        let expected_headers: Vec<(String, Vec<u8>)> = record
            .envelope
            .to_headers()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        assert_eq!(
            record.headers, expected_headers,
            "headers are the envelope, each once"
        );
        if seen.insert(record.envelope.event_id) {
            first_copies
                .entry(record.key.as_str())
                .or_default()
                .push(record.envelope.event_id);
        }
    }
    for (aggregate, events) in committed {
        let expected: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
        assert_eq!(
            first_copies
                .get(aggregate.as_str())
                .cloned()
                .unwrap_or_default(),
            expected,
            "events of {aggregate} arrive once each, in commit order"
        );
        for (event, envelope) in events {
            let record = received
                .iter()
                .find(|r| r.envelope.event_id == envelope.event_id)
                .expect("every committed event is on the topic");
            assert_eq!(&record.envelope, envelope, "the envelope survives the trip");
            assert_eq!(&record.event, event, "the event survives the trip");
        }
    }
    let total: usize = committed.values().map(Vec::len).sum();
    assert_eq!(
        seen.len(),
        total,
        "nothing but committed events is on the topic"
    );
    received.len() - total
}

/// The full name of the inventory topic of `journal`.
pub fn inventory_topic(journal: &Journal) -> String {
    journal.topics().name(Topic::Inventory)
}
