//! Rebuilding a read model while its live version keeps serving.
//!
//! [`rebuild`] builds a new version in a database of its own (see [`super::versions`]) with
//! the same projector, on the runtime's exactly-once consumer under the version's own group,
//! from the beginning of the topics or from a point in time. When the new version has
//! applied everything up to the topics' end it is promoted: the running query API switches
//! to it (see [`super::serve`]) and follows the topics with it from then on; the rebuild
//! keeps following until that switch is recorded, then stops. The old version is kept
//! until dropped.
//!
//! An interrupted rebuild (Ctrl-C, SIGKILL, a crash) leaves the live version untouched and
//! its own version `building`: run it again and it resumes from the offsets its database
//! committed, applying nothing twice.
//!
//! A rebuild passes over every record that a version of the same read model (or service)
//! dead-lettered, as read from the dead-letter topics when it starts: it applies nothing the
//! live version refused, and adds nothing to the dead-letter topics.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use eventmart_events::{Codec, Topic, Topics};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Projection;
use super::versions::{self, Version};
use crate::consumer::{self, Consumer, ConsumerConfig, Handler};
use crate::db::{self, Db, Migrations};
use crate::dlq;
use crate::kafka;
use crate::metrics::Metrics;
use crate::service::ServiceArgs;

/// How long a broker request may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How often progress is reported.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// Records a partition may have waiting before its fetching pauses, at least.
const REBUILD_READ_AHEAD: usize = 20_000;

/// How often the topics' end is read again.
const END_EVERY: Duration = Duration::from_secs(1);

/// Whether consumer group `group` is one of `name`'s: its own (`name`), or a version's
/// (`name.vN`).
fn version_of(group: &str, name: &str) -> bool {
    group.strip_prefix(name).is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix(".v")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The records of `topics` that a consumer group matching `group` dead-lettered, with when
/// (as written in the dead letter).
pub(crate) async fn dead_lettered(
    args: &ServiceArgs,
    group: impl Fn(&str) -> bool,
    topics: &[Topic],
) -> anyhow::Result<BTreeMap<(String, i32, i64), Option<String>>> {
    let connections = &args.connections;
    let names = connections.topics();
    let config = kafka::client_config(&connections.bootstrap_servers, &connections.kafka);
    let mut out = BTreeMap::new();
    for topic in topics {
        let letters = dlq::list(&config, &names.dlq(*topic), &dlq::Selection::default())
            .await
            .with_context(|| format!("reading {}", names.dlq(*topic)))?;
        for letter in letters {
            if !letter.consumer_group.as_deref().is_some_and(&group) {
                continue;
            }
            if let Some(original) = letter.original {
                out.insert(original, letter.failed_at);
            }
        }
    }
    Ok(out)
}

/// How a rebuild runs.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// Start reading at this time instead of the beginning (only for a new version; a resumed
    /// one keeps the time it started with).
    pub from: Option<DateTime<Utc>>,
    /// Promote the new version once it has caught up (else it stays `building`, following
    /// nothing, until a later rebuild resumes and promotes it).
    pub promote: bool,
    /// How long to keep following after promoting, for the running query API to switch.
    pub handover: Duration,
    /// Records per database transaction.
    pub batch_max: usize,
}

impl Default for RebuildOptions {
    fn default() -> Self {
        Self {
            from: None,
            promote: true,
            handover: Duration::from_secs(60),
            batch_max: 5000,
        }
    }
}

/// What a rebuild is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Applying the topics' records.
    Replaying,
    /// Promoted; following until the query API has switched.
    HandingOver,
}

/// How far a rebuild has got.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The version being built.
    pub version: i64,
    /// Records applied (or skipped as not this model's business) so far, counted from where
    /// the rebuild started reading.
    pub done: u64,
    /// Records from where it started to the topics' end as last read.
    pub total: u64,
    /// What it is doing.
    pub phase: Phase,
}

/// How a rebuild ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The version built.
    pub version: i64,
    /// Whether it was resumed rather than started.
    pub resumed: bool,
    /// Records applied by this run.
    pub records: u64,
    /// How long this run took.
    pub elapsed: Duration,
    /// Whether it was promoted.
    pub promoted: bool,
    /// Whether a running query API switched to it before the rebuild stopped.
    pub served: bool,
}

/// Rebuilds read model `P` (main database and connections from `args`); see the
/// [module docs](self). Calls `progress` a few times a second.
pub async fn rebuild<P: Projection>(
    args: &ServiceArgs,
    options: &RebuildOptions,
    progress: impl FnMut(&Progress),
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let target = Target {
        name: P::NAME,
        topics: P::TOPICS,
        migrations: P::migrations,
    };
    rebuild_with(
        &target,
        |db: &Db, _: &Topics| P::handler(db.engine),
        args,
        options,
        progress,
        shutdown,
    )
    .await
}

/// What a rebuild builds: a read model, or a service's own state (see
/// [`crate::service::rebuild`]).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name: of its main database, its versions and its groups.
    pub name: &'static str,
    /// The topics it reads.
    pub topics: &'static [Topic],
    /// Its tables' migrations, beside the runtime's.
    pub migrations: fn() -> Migrations,
}

/// Rebuilds `target` with the handler `make` returns for the new version's database; see
/// [`rebuild`].
pub async fn rebuild_with<H: Handler>(
    target: &Target,
    make: impl FnOnce(&Db, &Topics) -> H,
    args: &ServiceArgs,
    options: &RebuildOptions,
    mut progress: impl FnMut(&Progress),
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let name = target.name;
    let started = Instant::now();
    let main_url = args.database_url(name);
    let control = db::connect_component(&main_url, (target.migrations)())
        .await
        .with_context(|| format!("opening the {name} database"))?;
    versions::ensure_first(&control.pool, name, &main_url).await?;
    let (version, resumed) = match versions::building(&control.pool, name).await? {
        Some(version) => {
            if options.from.is_some() && options.from != version.from {
                bail!(
                    "version {} of {} is being rebuilt from {}; resume it without --from, or \
                     drop it first",
                    version.number,
                    name,
                    version
                        .from
                        .map_or("the beginning".to_owned(), |t| t.to_rfc3339())
                );
            }
            (version, true)
        }
        None => (
            versions::begin(&control.pool, name, &main_url, options.from).await?,
            false,
        ),
    };
    let db = db::connect_component(&version.database_url, (target.migrations)())
        .await
        .with_context(|| format!("opening {}", version.database_url))?;
    let connections = &args.connections;
    connections.provision().await?;
    let topics: Vec<String> = target
        .topics
        .iter()
        .map(|t| connections.topics().name(*t))
        .collect();
    let ends = Ends::new(args, topics.clone())?;
    let start = ends.start(version.from).await?;
    if version.from.is_some() {
        consumer::start_at(&db.pool, &version.group(), &start).await?;
    }
    let before = applied(&db, &version, &start).await?;
    let mut passed_over = consumer::PassedOver::new();
    let ours = |group: &str| version_of(group, name);
    for (topic, partition, offset) in dead_lettered(args, ours, target.topics).await?.into_keys() {
        passed_over
            .entry(topic)
            .or_default()
            .insert((partition, offset));
    }

    let mut config = ConsumerConfig::new(version.group(), topics);
    config.session_timeout = args.session_timeout;
    config.fetch_wait = args.fetch_wait;
    config.batch_max = options.batch_max.max(1);
    // Above what one fetch brings per partition (about 8,700 records of these sizes): a
    // partition paused below that drops the rest of its fetch and fetches it again.
    config.max_buffered = REBUILD_READ_AHEAD.max(config.batch_max * 4);
    let consumer = Consumer::new(
        config,
        kafka::client_config(&connections.bootstrap_servers, &connections.kafka),
        db.clone(),
        Codec::new(&connections.registry_url),
        Metrics::new(),
    )
    .pass_over(passed_over);
    let stop = shutdown.child_token();
    let handler = make(&db, &connections.topics());
    let token = stop.clone();
    let mut task = tokio::spawn(async move { consumer.run(handler, token).await });

    let result = follow(
        name,
        &control,
        &db,
        &version,
        &ends,
        &start,
        options,
        &mut progress,
        &shutdown,
        &mut task,
    )
    .await;
    stop.cancel();
    let stopped = task.await;
    let (promoted, served) = result?;
    if let Ok(Err(error)) = stopped {
        return Err(error.into());
    }
    let after = applied(&db, &version, &start).await?;
    Ok(Outcome {
        version: version.number,
        resumed,
        records: after.saturating_sub(before),
        elapsed: started.elapsed(),
        promoted,
        served,
    })
}

/// Reports progress until the version has caught up (or `shutdown`), promotes it, and hands
/// over to the query API. Returns (promoted, served).
#[allow(clippy::too_many_arguments)]
async fn follow(
    name: &str,
    control: &Db,
    db: &Db,
    version: &Version,
    ends: &Ends,
    start: &BTreeMap<(String, i32), i64>,
    options: &RebuildOptions,
    progress: &mut impl FnMut(&Progress),
    shutdown: &CancellationToken,
    task: &mut tokio::task::JoinHandle<Result<(), consumer::ConsumerError>>,
) -> anyhow::Result<(bool, bool)> {
    let total_of = |end: &BTreeMap<(String, i32), i64>| -> u64 {
        end.iter()
            .map(|(p, e)| (e - start.get(p).copied().unwrap_or(0)).max(0) as u64)
            .sum()
    };
    let mut end = ends.high().await?;
    let mut end_read = Instant::now();
    let mut report = tokio::time::interval(REPORT_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok((false, false)),
            done = &mut *task => {
                done.context("the projector panicked")??;
                bail!("the projector stopped before the rebuild caught up");
            }
            _ = report.tick() => {}
        }
        if end_read.elapsed() >= END_EVERY {
            end = ends.high().await?;
            end_read = Instant::now();
        }
        let done = applied(db, version, start).await?;
        progress(&Progress {
            version: version.number,
            done,
            total: total_of(&end).max(done),
            phase: Phase::Replaying,
        });
        // Caught up with the end as read at most a second ago: under load the end moves on,
        // so the promoted version may be a moment behind; the query API switches only once
        // it has passed the version it replaces (see `serve`).
        let reached = consumer::stored_offsets(&db.pool, &version.group()).await?;
        if !caught_up(&reached, start, &end) {
            continue;
        }
        if !options.promote {
            return Ok((false, false));
        }
        versions::promote(&control.pool, name, version.number).await?;
        tracing::info!(projection = name, version = version.number, "promoted");
        break;
    }
    let until = Instant::now() + options.handover;
    loop {
        if versions::served(&control.pool, name).await? == Some(version.number) {
            return Ok((true, true));
        }
        if Instant::now() >= until {
            return Ok((true, false));
        }
        let done = applied(db, version, start).await?;
        progress(&Progress {
            version: version.number,
            done,
            total: total_of(&ends.high().await?).max(done),
            phase: Phase::HandingOver,
        });
        tokio::select! {
            () = shutdown.cancelled() => return Ok((true, false)),
            () = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
}

/// Whether every partition of `end` has been applied up to its end (a partition without a
/// stored position is at its start).
fn caught_up(
    reached: &BTreeMap<(String, i32), i64>,
    start: &BTreeMap<(String, i32), i64>,
    end: &BTreeMap<(String, i32), i64>,
) -> bool {
    end.iter().all(|(partition, end)| {
        let at = reached
            .get(partition)
            .or_else(|| start.get(partition))
            .copied()
            .unwrap_or(0);
        at >= *end
    })
}

/// Records `version` has got through since `start`.
async fn applied(
    db: &Db,
    version: &Version,
    start: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<u64> {
    let reached = consumer::stored_offsets(&db.pool, &version.group()).await?;
    Ok(reached
        .iter()
        .map(|(p, at)| (at - start.get(p).copied().unwrap_or(0)).max(0) as u64)
        .sum())
}

/// The topics' ends and starts, read from the broker.
struct Ends {
    consumer: std::sync::Arc<BaseConsumer>,
    topics: Vec<String>,
}

impl Ends {
    fn new(args: &ServiceArgs, topics: Vec<String>) -> anyhow::Result<Self> {
        let consumer: BaseConsumer =
            kafka::client_config(&args.connections.bootstrap_servers, &args.connections.kafka)
                // Partitions are only looked at: the group is never joined.
                .set("group.id", "eventmart-rebuild-probe")
                .set("enable.auto.commit", "false")
                .create()
                .context("creating a Kafka client")?;
        Ok(Self {
            consumer: std::sync::Arc::new(consumer),
            topics,
        })
    }

    /// Every partition's high watermark (the offset the next record will get).
    async fn high(&self) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        Ok(self
            .watermarks()
            .await?
            .into_iter()
            .map(|(p, (_, high))| (p, high))
            .collect())
    }

    /// Where reading starts in each partition: the first record at or after `from`, or the
    /// partition's first record.
    async fn start(
        &self,
        from: Option<DateTime<Utc>>,
    ) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
        let marks = self.watermarks().await?;
        let Some(from) = from else {
            return Ok(marks.into_iter().map(|(p, (low, _))| (p, low)).collect());
        };
        let consumer = self.consumer.clone();
        let mut list = TopicPartitionList::new();
        for (topic, partition) in marks.keys() {
            list.add_partition_offset(topic, *partition, Offset::Offset(from.timestamp_millis()))?;
        }
        let found =
            tokio::task::spawn_blocking(move || consumer.offsets_for_times(list, BROKER_TIMEOUT))
                .await??;
        let mut out = BTreeMap::new();
        for element in found.elements() {
            let key = (element.topic().to_owned(), element.partition());
            let (low, high) = marks.get(&key).copied().unwrap_or((0, 0));
            let at = match element.offset() {
                Offset::Offset(offset) => offset.max(low),
                // No record at or after `from`: start at the end.
                _ => high,
            };
            out.insert(key, at);
        }
        Ok(out)
    }

    async fn watermarks(&self) -> anyhow::Result<BTreeMap<(String, i32), (i64, i64)>> {
        let consumer = self.consumer.clone();
        let topics = self.topics.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = BTreeMap::new();
            for topic in &topics {
                let metadata = consumer
                    .fetch_metadata(Some(topic), BROKER_TIMEOUT)
                    .with_context(|| format!("reading metadata of {topic}"))?;
                for t in metadata.topics().iter().filter(|t| t.name() == topic) {
                    for p in t.partitions() {
                        let marks = consumer
                            .fetch_watermarks(topic, p.id(), BROKER_TIMEOUT)
                            .with_context(|| format!("reading the end of {topic}/{}", p.id()))?;
                        out.insert((topic.clone(), p.id()), marks);
                    }
                }
            }
            Ok(out)
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(entries: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
        entries
            .iter()
            .map(|(t, p, o)| (((*t).to_owned(), *p), *o))
            .collect()
    }

    #[test]
    fn a_read_models_groups_are_its_own_and_its_versions() {
        for group in ["order-view", "order-view.v2", "order-view.v17"] {
            assert!(version_of(group, "order-view"), "{group}");
        }
        for group in [
            "order-view-x",
            "order-view.v",
            "order-view.vx",
            "orders",
            "order-view.v2a",
        ] {
            assert!(!version_of(group, "order-view"), "{group}");
        }
    }

    #[test]
    fn a_rebuild_has_caught_up_when_every_partition_reached_its_end() {
        let end = at(&[("orders", 0, 10), ("orders", 1, 4), ("orders", 2, 0)]);
        let start = at(&[("orders", 0, 0), ("orders", 1, 4), ("orders", 2, 0)]);
        // Partition 1 starts at its end (a rebuild from a time after its last record) and
        // partition 2 is empty: neither needs a stored position.
        assert!(caught_up(&at(&[("orders", 0, 10)]), &start, &end));
        assert!(!caught_up(&at(&[("orders", 0, 9)]), &start, &end));
        assert!(!caught_up(&at(&[]), &start, &end));
    }
}
