//! `eventmart status`: where every consumer group stands on the event topics, how far behind
//! it is (in events and in seconds), and how many dead letters each topic has.
//!
//! Positions are the offsets the groups have committed to Kafka. A consumer resumes from the
//! offsets kept in its own database and commits the same offsets to Kafka in the background
//! (every second by default), so the position shown can trail the group's real one by that
//! much.
//!
//! Groups come from the broker's group list (Kafka ListGroups), together with the services'
//! and read models' own groups and any named with `--group`; when the broker cannot list its
//! groups, the known and named ones are all there is. (The client follows ListGroups with
//! DescribeGroups, which the local Tansu broker fails once a group exists, so locally that
//! is the usual case.) A listed group that has committed nothing on the event topics is
//! someone else's and is left out.
//!
//! Below the dead letters, the events each group has parked for their key (see
//! [`parked`]), read from the components' databases.
//!
//! Not here: the offsets in the consumers' databases, or changing any position.

mod parked;
mod report;

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use eventmart_events::Topic;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use eventmart_runtime::kafka::client_config;
use eventmart_runtime::process::Connections;

use self::report::{At, DeadLetterCount, Status, group_statuses};

/// The consumer groups of the services and of the read models (a rebuilt read model's group
/// is `<read model>.v<N>`: the broker's list, or `--group`, names those).
const KNOWN_GROUPS: [&str; 9] = [
    "users",
    "catalog",
    "inventory",
    "orders",
    "payments",
    "order-view",
    "product-availability",
    "sales",
    "saga-tracker",
];

/// What to report and how.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Also report this consumer group (repeatable), e.g. a rebuilt read model's
    /// `order-view.v2` on a broker that cannot list its groups.
    #[arg(long = "group", short, value_name = "GROUP")]
    groups: Vec<String>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// How long each request to the broker may take, and how long reading the oldest
    /// unconsumed records may take in all.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Where a component's database is, for its parked events (repeatable), e.g.
    /// `orders=postgres://…/orders`; a component not named is looked for at
    /// `sqlite://var/<name>.db`.
    #[arg(long = "database-url", value_name = "NAME=URL", value_parser = name_and_url)]
    database_urls: Vec<(String, String)>,
}

fn name_and_url(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, url)) if KNOWN_GROUPS.contains(&name) && !url.is_empty() => {
            Ok((name.to_owned(), url.to_owned()))
        }
        Some((name, _)) if !KNOWN_GROUPS.contains(&name) => Err(format!(
            "{name:?} is not a component; expected one of {}",
            KNOWN_GROUPS.join(", ")
        )),
        _ => Err("expected NAME=URL, e.g. orders=postgres://localhost/orders".to_owned()),
    }
}

/// Prints every group's position and lag, then the dead-letter counts.
pub(crate) async fn run(conn: &Connections, args: StatusArgs) -> anyhow::Result<()> {
    let kafka = client_config(&conn.bootstrap_servers, &conn.kafka);
    let topics = conn.topics();
    let event_topics: Vec<String> = Topic::ALL.iter().map(|t| topics.name(*t)).collect();
    let dlq_topics: Vec<String> = Topic::ALL.iter().map(|t| topics.dlq(*t)).collect();
    let bootstrap = conn.bootstrap_servers.clone();
    let mut status = tokio::task::spawn_blocking(move || {
        gather(
            &kafka,
            &event_topics,
            &dlq_topics,
            &args.groups,
            args.timeout,
        )
        .with_context(|| format!("reading the status from the broker at {bootstrap}"))
    })
    .await??;
    let (parked, problems, read) = parked::read(&KNOWN_GROUPS, &args.database_urls).await;
    for problem in &problems {
        eprintln!("note: cannot read the parked events of {problem}");
    }
    if read > 0 {
        status.parked = Some(parked);
    }
    for topic in &status.missing_topics {
        eprintln!("note: topic {topic} does not exist (run `eventmart topics create`)");
    }
    if let Some(reason) = &status.list_error {
        eprintln!(
            "note: the broker did not list its consumer groups ({reason}); showing the known \
             groups and those named with --group"
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status.to_json())?);
    } else {
        print!("{}", status.tables());
    }
    Ok(())
}

/// Reads groups, positions, watermarks and the oldest unconsumed records from the broker.
fn gather(
    kafka: &ClientConfig,
    event_topics: &[String],
    dlq_topics: &[String],
    named: &[String],
    timeout: Duration,
) -> anyhow::Result<Status> {
    let client: BaseConsumer = kafka.create().context("creating a Kafka client")?;
    let metadata = client
        .fetch_metadata(None, timeout)
        .context("reading the topics")?;
    let partitions_of = |topic: &str| -> Option<Vec<i32>> {
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
    };
    let event_partitions: Vec<(String, i32)> = event_topics
        .iter()
        .flat_map(|topic| {
            partitions_of(topic)
                .unwrap_or_default()
                .into_iter()
                .map(move |p| (topic.clone(), p))
        })
        .collect();

    // A client of its own: a broker that fails the request may drop the connection.
    let lister: BaseConsumer = kafka.create().context("creating a Kafka client")?;
    let listed = lister
        .fetch_group_list(None, timeout)
        .map(|list| {
            list.groups()
                .iter()
                .map(|g| g.name().to_owned())
                .collect::<Vec<_>>()
        })
        .map_err(|e| e.to_string());
    // Groups the operator asked about, or that every installation has, are shown even when
    // they have committed nothing yet.
    let always: BTreeSet<String> = KNOWN_GROUPS
        .iter()
        .map(|g| (*g).to_owned())
        .chain(named.iter().cloned())
        .collect();
    let mut candidates = always.clone();
    if let Ok(listed) = &listed {
        candidates.extend(listed.iter().cloned());
    }

    let mut committed: BTreeMap<String, Vec<At>> = BTreeMap::new();
    if !event_partitions.is_empty() {
        for group in &candidates {
            let positions = committed_offsets(kafka, group, &event_partitions, timeout)
                .with_context(|| format!("reading the committed offsets of group {group}"))?;
            committed.insert(group.clone(), positions);
        }
    }

    let mut high = BTreeMap::new();
    for (topic, partition) in &event_partitions {
        let (_, end) = client
            .fetch_watermarks(topic, *partition, timeout)
            .with_context(|| format!("reading the end of {topic}/{partition}"))?;
        high.insert((topic.clone(), *partition), end);
    }

    let lagging: BTreeSet<At> = committed
        .values()
        .flatten()
        .filter(|(topic, partition, offset)| {
            high.get(&(topic.clone(), *partition))
                .is_some_and(|end| end > offset)
        })
        .cloned()
        .collect();
    let timestamps = if lagging.is_empty() {
        BTreeMap::new()
    } else {
        first_timestamps(kafka, &lagging, timeout).context("reading unconsumed records")?
    };
    let now = chrono::Utc::now().timestamp_millis();

    let groups = group_statuses(&candidates, &always, &committed, &high, &timestamps, now);

    let mut dead_letters = Vec::new();
    for topic in dlq_topics {
        let count = match partitions_of(topic) {
            None => None,
            Some(partitions) => {
                let mut count = 0;
                for partition in partitions {
                    let (low, end) = client
                        .fetch_watermarks(topic, partition, timeout)
                        .with_context(|| format!("reading the ends of {topic}/{partition}"))?;
                    count += (end - low).max(0);
                }
                Some(count)
            }
        };
        dead_letters.push(DeadLetterCount {
            topic: topic.clone(),
            count,
        });
    }

    Ok(Status {
        groups,
        dead_letters,
        parked: None,
        list_error: listed.err(),
        missing_topics: event_topics
            .iter()
            .filter(|topic| partitions_of(topic).is_none())
            .cloned()
            .collect(),
    })
}

/// The offsets `group` has committed on `partitions`, as (topic, partition, offset); partitions
/// it has committed nothing on are left out. The group is not joined.
fn committed_offsets(
    kafka: &ClientConfig,
    group: &str,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> KafkaResult<Vec<At>> {
    let consumer: BaseConsumer = kafka
        .clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut wanted = TopicPartitionList::new();
    for (topic, partition) in partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, timeout)?;
    let mut out = Vec::new();
    for element in committed.elements() {
        element.error()?;
        if let Offset::Offset(offset) = element.offset() {
            out.push((element.topic().to_owned(), element.partition(), offset));
        }
    }
    Ok(out)
}

/// The timestamp (milliseconds since the epoch) of the record at each of `positions` (topic,
/// partition, offset), or of the first one after it. Reads with one consumer, one position
/// per partition at a time; positions not read within `timeout` in all are left out.
fn first_timestamps(
    kafka: &ClientConfig,
    positions: &BTreeSet<At>,
    timeout: Duration,
) -> KafkaResult<BTreeMap<At, i64>> {
    let consumer: BaseConsumer = kafka
        .clone()
        // Partitions are assigned, never subscribed: the group is neither joined nor committed.
        .set("group.id", "eventmart-status")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let deadline = Instant::now() + timeout;
    let mut found = BTreeMap::new();
    let mut pending: Vec<At> = positions.iter().cloned().collect();
    while !pending.is_empty() && Instant::now() < deadline {
        // Several groups can stand at different offsets of one partition: one each round.
        let mut round: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut later = Vec::new();
        for (topic, partition, offset) in pending {
            match round.entry((topic, partition)) {
                Entry::Occupied(taken) => later.push((taken.key().0.clone(), partition, offset)),
                Entry::Vacant(free) => {
                    free.insert(offset);
                }
            }
        }
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), offset) in &round {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        consumer.assign(&assignment)?;
        while !round.is_empty() && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    let key = (message.topic().to_owned(), message.partition());
                    let Some(&offset) = round.get(&key) else {
                        continue;
                    };
                    if message.offset() < offset {
                        continue;
                    }
                    round.remove(&key);
                    if let Some(written) = message.timestamp().to_millis() {
                        found.insert((key.0, key.1, offset), written);
                    }
                }
                Some(Err(error)) => tracing::warn!(%error, "reading an unconsumed record"),
                None => {}
            }
        }
        pending = later;
    }
    Ok(found)
}
