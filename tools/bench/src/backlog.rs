//! A fresh local broker and schema registry holding a backlog of finished order sagas
//! (`samples::sagas`, five events each, as JSON the way kcat writes them): what `rebuild`
//! replays and `query` serves. Also the raw reads of that backlog that the figures are
//! divided by.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{TimeZone, Utc};
use eventmart_events::{Event, Topic, Topics, samples};
use eventmart_runtime::kafka::{TopicLayout, client_config, provision_topics};
use eventmart_runtime::process::Connections;
use eventmart_runtime::service::ServiceArgs;
use eventmart_runtime::testing::topics::produce_many_json;
use eventmart_runtime::testing::{TestBroker, TestRegistry, unique_prefix};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

/// How long a broker request may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a raw read may take before it is given up.
const READ_MAX: Duration = Duration::from_secs(600);

/// A partition: (full topic name, partition number).
pub(crate) type Partition = (String, i32);

/// Sagas on a broker of their own; both stop when this is dropped.
pub(crate) struct Backlog {
    pub(crate) broker: TestBroker,
    pub(crate) registry: TestRegistry,
    /// The prefix of this backlog's topics.
    pub(crate) prefix: String,
    pub(crate) topics: Topics,
    /// Every order placed, in saga order.
    pub(crate) orders: Vec<Uuid>,
    /// Events written.
    pub(crate) events: u64,
    /// How long writing them took.
    pub(crate) produced_in: Duration,
    /// The end (high watermark) of every partition of the event topics once written.
    pub(crate) ends: BTreeMap<Partition, i64>,
}

impl Backlog {
    /// Starts a broker and a registry, and writes `sagas` finished sagas onto fresh topics.
    pub(crate) async fn start(sagas: u32) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let prefix = unique_prefix();
        let topics = Topics::new(&prefix);
        provision_topics(
            &broker.bootstrap,
            &[],
            &topics.all(),
            &TopicLayout::default(),
        )
        .await?;
        let start = Utc
            .timestamp_opt(1_750_000_000, 0)
            .single()
            .context("a fixed start time")?;
        let events: Vec<_> = samples::sagas(sagas, 500, 200, start)
            .into_iter()
            .map(|(event, envelope)| (topics.name(event.topic()), event, envelope))
            .collect();
        let orders = events
            .iter()
            .filter_map(|(_, event, _)| match event {
                Event::OrderCreated(created) => Some(created.order_id),
                _ => None,
            })
            .collect();
        let started = Instant::now();
        produce_many_json(&broker.bootstrap, &events).await?;
        let produced_in = started.elapsed();
        let names = Topic::ALL.map(|t| topics.name(t));
        let ends = watermarks(&broker.bootstrap, &names)
            .await?
            .into_iter()
            .map(|(partition, (_, high))| (partition, high))
            .collect();
        Ok(Self {
            broker,
            registry,
            prefix,
            topics,
            orders,
            events: events.len() as u64,
            produced_in,
            ends,
        })
    }

    /// The connections of this backlog's broker, registry and topics, with extra Kafka
    /// client settings `kafka`.
    pub(crate) fn connections(&self, kafka: &[(String, String)]) -> Connections {
        Connections {
            bootstrap_servers: self.broker.bootstrap.clone(),
            registry_url: self.registry.url.clone(),
            topic_prefix: self.prefix.clone(),
            kafka: kafka.to_vec(),
        }
    }

    /// What a read model takes to run on this backlog with database `database_url`.
    pub(crate) fn service_args(
        &self,
        database_url: &str,
        fetch_wait: Duration,
        kafka: &[(String, String)],
    ) -> ServiceArgs {
        ServiceArgs {
            connections: self.connections(kafka),
            database_url: Some(database_url.to_owned()),
            listen: None,
            grace: Duration::from_secs(10),
            session_timeout: Duration::from_secs(6),
            fetch_wait,
            park_budget: Duration::from_secs(600),
            dedup_retention: Duration::from_secs(30 * 24 * 3600),
            idempotency_retention: Duration::from_secs(24 * 3600),
        }
    }

    /// The full names of `topics`.
    pub(crate) fn names(&self, topics: &[Topic]) -> Vec<String> {
        topics.iter().map(|t| self.topics.name(*t)).collect()
    }

    /// The ends of the partitions of `topics`.
    pub(crate) fn ends_of(&self, topics: &[String]) -> BTreeMap<Partition, i64> {
        self.ends
            .iter()
            .filter(|((topic, _), _)| topics.contains(topic))
            .map(|(p, end)| (p.clone(), *end))
            .collect()
    }

    /// Records in the partitions of `topics`.
    pub(crate) fn records_in(&self, topics: &[String]) -> u64 {
        self.ends_of(topics).values().map(|end| *end as u64).sum()
    }
}

/// Every partition's (low, high) watermarks, for `topics` of the default layout.
async fn watermarks(
    bootstrap: &str,
    topics: &[String],
) -> anyhow::Result<BTreeMap<Partition, (i64, i64)>> {
    let consumer: BaseConsumer = client_config(bootstrap, &[])
        .set("group.id", format!("bench-probe-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .create()?;
    let topics = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut out = BTreeMap::new();
        for topic in &topics {
            for partition in 0..TopicLayout::default().partitions {
                let marks = consumer
                    .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
                    .with_context(|| format!("reading the end of {topic}/{partition}"))?;
                out.insert((topic.clone(), partition), marks);
            }
        }
        Ok(out)
    })
    .await?
}

/// A raw read: how many records, in how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    pub(crate) records: u64,
    pub(crate) elapsed: Duration,
}

impl Read {
    /// Records per second.
    pub(crate) fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The raw baseline: a plain rdkafka consumer, assigned every partition of `ends` from the
/// beginning (no group join), counting records until each partition's end. `fetch_wait` is
/// its `fetch.wait.max.ms`, the one setting given to it: reads from the local broker slow
/// down as it grows (500 ms reads at about half the rate of 100 ms), so it should be the
/// one of the consumer compared with it.
pub(crate) async fn raw_read(
    bootstrap: &str,
    ends: &BTreeMap<Partition, i64>,
    fetch_wait: Duration,
) -> anyhow::Result<Read> {
    let consumer: BaseConsumer = client_config(bootstrap, &[])
        .set("group.id", format!("bench-raw-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set(
            "fetch.wait.max.ms",
            fetch_wait.as_millis().max(1).to_string(),
        )
        .create()?;
    let ends = ends.clone();
    tokio::task::spawn_blocking(move || {
        let mut assignment = TopicPartitionList::new();
        let mut left: BTreeMap<Partition, i64> = BTreeMap::new();
        for (partition, end) in ends.into_iter().filter(|(_, end)| *end > 0) {
            assignment.add_partition_offset(&partition.0, partition.1, Offset::Beginning)?;
            left.insert(partition, end);
        }
        let started = Instant::now();
        consumer.assign(&assignment)?;
        let mut records = 0;
        while !left.is_empty() {
            if started.elapsed() > READ_MAX {
                bail!("the raw read got only {records} records in {READ_MAX:?}");
            }
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message?;
            records += 1;
            let partition = (message.topic().to_owned(), message.partition());
            if left
                .get(&partition)
                .is_some_and(|end| message.offset() + 1 >= *end)
            {
                left.remove(&partition);
            }
        }
        Ok(Read {
            records,
            elapsed: started.elapsed(),
        })
    })
    .await?
}

/// The same read with kcat (`kcat -C -e`, one process per topic, all at once), through the
/// wrapper at `kcat` that gives it a librdkafka the local broker understands.
pub(crate) async fn kcat_read(
    kcat: &Path,
    bootstrap: &str,
    topics: &[String],
    fetch_wait: Duration,
) -> anyhow::Result<Read> {
    let fetch_wait = format!("fetch.wait.max.ms={}", fetch_wait.as_millis().max(1));
    if !kcat.exists() {
        bail!("{} not found", kcat.display());
    }
    let started = Instant::now();
    let reads = topics.iter().map(|topic| {
        tokio::process::Command::new(kcat)
            .args([
                "-b",
                bootstrap,
                "-C",
                "-t",
                topic,
                "-o",
                "beginning",
                "-e",
                "-q",
            ])
            .args(["-X", &fetch_wait, "-f", "%o\\n"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
    });
    let mut records = 0;
    for output in futures::future::join_all(reads).await {
        let output = output.with_context(|| format!("running {}", kcat.display()))?;
        if !output.status.success() {
            bail!(
                "{} failed ({}): {}",
                kcat.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        records += output.stdout.iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok(Read {
        records,
        elapsed: started.elapsed(),
    })
}
