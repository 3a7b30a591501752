//! Consumers whose effects apply exactly once: at-least-once in, exactly-once effect.
//!
//! A [`Consumer`] reads a group's topics and hands each decoded event to a [`Handler`]
//! together with an open database transaction. In that same transaction it records the
//! event's id (table `consumer_processed`) and the partition's next offset
//! (`consumer_offsets`), so an effect and the record of it commit together or not at all:
//!
//! - **Duplicates** (redelivery, a producer's retry, the same event typed twice into kcat with
//!   the same `event_id`, a replay) are skipped: an event already applied by the group is not
//!   handed to the handler again, and a record below the stored offset is not even decoded.
//! - **Resume from the database.** Whenever partitions are assigned, each starts at the
//!   database's next offset (a partition the database has never seen starts at the
//!   beginning), whatever Kafka's committed offsets say. Offsets are committed to Kafka too,
//!   in the background after the database commits, but only for tools and lag.
//! - **Order and concurrency.** Each partition has its own worker: records of a partition are
//!   applied in order, partitions concurrently. Under load a worker takes up to
//!   [`ConsumerConfig::batch_max`] queued records and commits them in one transaction.
//! - **Rebalances.** Every assigned partition gets its worker at once. Revoked partitions'
//!   workers stop after their in-flight batch; a new owner that overlaps with the old one
//!   waits on the partition's offset row and then skips what the old one committed. A member
//!   that sees records wait in partitions no live member makes progress on (a broker that
//!   evicted a silent member without reassigning its partitions) leaves and rejoins the
//!   group, so that they are assigned again; an owner waiting out a failure writes a
//!   heartbeat, so that it is not taken for gone (see `watchdog`).
//! - **Failures.** Transient ones (database, schema registry, [`HandlerError::Transient`]) roll
//!   back and retry with capped exponential backoff; nothing is skipped. Poison records
//!   (undecodable, schema-invalid, unknown type, bad envelope, or a handler failing
//!   permanently [`ConsumerConfig::max_handler_attempts`] times) go to `<topic>.dlq` (see
//!   [`crate::dlq`]) before their offset moves; the records around them apply as usual.
//! - **Parking.** An event that cannot be applied yet ([`HandlerError::Waiting`]) is parked
//!   for its record key, and its key's later events queue behind it, while the partition's
//!   other keys go on (see `park`).
//! - **A wiped topic.** A stored position beyond its partition's end (the topic was deleted
//!   and created again) stops the consumer with [`ConsumerError::Stopped`], naming the
//!   partition, both offsets and the fix, rather than skipping what is written there.
//! - **Shutdown.** When the token handed to [`Consumer::run`] is cancelled, polling stops, the
//!   in-flight batches finish and commit (a batch waiting out a failure is abandoned, to be
//!   read again next time), offsets are committed to Kafka, and `run` returns.
//!
//! Not here: what a record means (the handler's business) and topic creation (`eventmart
//! topics create`; the dead-letter topics must exist).

mod config;
mod context;
mod dead_letter;
mod handler;
mod park;
mod parked;
mod partition;
mod store;
mod trace;
mod watchdog;
mod worker;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use eventmart_events::Codec;
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

pub use self::config::ConsumerConfig;
use self::context::{Context, Shared, Tp, lock};
pub use self::handler::{BoxError, Handler, HandlerError, Incoming, is_contention};
pub use self::park::PARK_EXPIRED;
pub use self::parked::{ParkedSummary, summary as parked};
use self::partition::{Env, Record, WorkerHandle};
pub use self::store::{processed, start_at, stored_offsets};
use crate::db::Db;
use crate::metrics::Metrics;

/// Why a consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The configuration cannot work; fix it.
    #[error("invalid consumer configuration: {0}")]
    Config(String),
    /// The Kafka client could not be created or subscribed; check the client settings.
    #[error("Kafka client: {0}")]
    Kafka(#[from] KafkaError),
    /// The stored offsets could not be read; retry once the database is reachable.
    #[error("reading the stored offsets: {0}")]
    Database(#[from] sqlx::Error),
    /// The consumer cannot go on without losing events silently; the message says what to do.
    #[error("{0}")]
    Stopped(String),
}

/// A consumer group member that applies events exactly once; see the [module docs](self).
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    kafka: ClientConfig,
    db: Db,
    codec: Codec,
    metrics: Metrics,
    passed_over: PassedOver,
}

/// Records a consumer settles as dead-lettered without applying them or writing them to the
/// dead-letter topic again: by topic, their (partition, offset).
pub type PassedOver = BTreeMap<String, BTreeSet<(i32, i64)>>;

impl Consumer {
    /// A consumer for `config`, reading through a Kafka client configured by `kafka` (from
    /// [`crate::kafka::client_config`]; the consumer adds its own group settings), writing to
    /// `db` (whose runtime migrations have run), decoding with `codec`.
    pub fn new(
        config: ConsumerConfig,
        kafka: ClientConfig,
        db: Db,
        codec: Codec,
        metrics: Metrics,
    ) -> Self {
        Self {
            config,
            kafka,
            db,
            codec,
            metrics,
            passed_over: PassedOver::new(),
        }
    }

    /// Makes the consumer pass over `records`: each is settled as dead-lettered (its event is
    /// applied if it comes back from the dead-letter topic) without being handed to the
    /// handler or written to the dead-letter topic. A rebuild passes over what the live
    /// version dead-lettered, so that rebuilding adds nothing to the dead-letter topics and
    /// applies nothing the live version refused.
    pub fn pass_over(mut self, records: PassedOver) -> Self {
        self.passed_over = records;
        self
    }

    /// Consumes until `shutdown` is cancelled, applying each event with `handler`.
    ///
    /// Returns once the in-flight batches are committed (or abandoned) and the Kafka offsets
    /// committed; the caller bounds how long it waits. Fails only at start (bad configuration,
    /// a Kafka client that cannot be created, a database that cannot be read): later failures
    /// are retried, never skipped.
    pub async fn run<H: Handler>(
        self,
        handler: H,
        shutdown: CancellationToken,
    ) -> Result<(), ConsumerError> {
        self.validate()?;
        let Consumer {
            config,
            kafka,
            db,
            codec,
            metrics,
            passed_over,
        } = self;
        let positions: HashMap<_, _> = stored_offsets(&db.pool, &config.group_id)
            .await?
            .into_iter()
            .filter(|((topic, _), _)| config.topics.contains(topic))
            .collect();
        metrics.consumer_started(&config.group_id, &config.topics);
        let shared = Arc::new(Shared::new(positions));
        let producer = crate::dlq::idempotent_producer(&kafka)?;
        let context = Context {
            shared: shared.clone(),
            metrics: metrics.clone(),
            group: config.group_id.clone(),
        };
        let consumer: Arc<StreamConsumer<Context>> =
            Arc::new(consumer_config(&kafka, &config).create_with_context(context)?);
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        tracing::info!(group = %config.group_id, kafka_group = config.kafka_group(), ?topics, "consumer started");

        let (high, _) = config.read_ahead();
        let env = Arc::new(Env {
            handler,
            config,
            db,
            codec,
            metrics,
            producer,
            consumer: consumer.clone(),
            shared: shared.clone(),
            passed_over,
        });
        let workers_stop = shutdown.child_token();
        let pruning = tokio::spawn(prune(env.clone(), workers_stop.clone()));
        poll(&env, &consumer, high, &shutdown, &workers_stop).await;

        // Shutdown: let every worker finish its in-flight batch, then tell Kafka where we are.
        workers_stop.cancel();
        let _ = pruning.await;
        let joins: Vec<_> = {
            let mut workers = lock(&shared.workers);
            let mut retired = lock(&shared.retired);
            workers
                .drain()
                .map(|(_, worker)| worker.join)
                .chain(retired.drain(..))
                .collect()
        };
        for join in joins {
            if let Err(error) = join.await {
                tracing::error!(%error, "a partition worker panicked");
            }
        }
        let group = env.config.group_id.clone();
        drop(env);
        let fault = lock(&shared.fault).take();
        tokio::task::spawn_blocking(move || close(&consumer, &shared))
            .await
            .unwrap_or_else(|error| tracing::error!(%error, "closing the consumer panicked"));
        if let Some(reason) = fault {
            tracing::error!(%group, %reason, "consumer stopped");
            return Err(ConsumerError::Stopped(reason));
        }
        tracing::info!(%group, "consumer stopped");
        Ok(())
    }

    fn validate(&self) -> Result<(), ConsumerError> {
        let config = &self.config;
        let problem = if config.group_id.is_empty() {
            Some("group_id is empty")
        } else if config.topics.is_empty() {
            Some("no topics to read")
        } else if config.batch_max == 0 {
            Some("batch_max must be at least 1")
        } else if config.max_handler_attempts == 0 {
            Some("max_handler_attempts must be at least 1")
        } else if config.prune_every.is_zero() {
            Some("prune_every must be more than zero")
        } else if config.session_timeout < Duration::from_secs(1) {
            Some("session_timeout must be at least 1s")
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(ConsumerError::Config(p.to_owned())))
    }
}

/// The Kafka settings of a consumer that stores its offsets in the database: Kafka commits
/// only what the database has (stored after each database commit), the eager assignors (so
/// that a rebalance revokes everything and the assignment callback places every partition),
/// and the group's session timeout.
fn consumer_config(kafka: &ClientConfig, config: &ConsumerConfig) -> ClientConfig {
    let millis = |d: Duration| d.as_millis().max(1).to_string();
    let mut out = kafka.clone();
    out.set("group.id", config.kafka_group())
        // Only offsets stored after a database commit are committed, in the background.
        .set("enable.auto.commit", "true")
        .set(
            "auto.commit.interval.ms",
            millis(config.kafka_commit_interval),
        )
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set("fetch.wait.max.ms", millis(config.fetch_wait))
        .set("session.timeout.ms", millis(config.session_timeout))
        .set("heartbeat.interval.ms", millis(config.session_timeout / 3))
        .set("statistics.interval.ms", millis(config.lag_interval));
    out
}

/// Deletes the group's processed ids older than the retention, every `prune_every` (or a
/// quarter of the retention, if that is shorter: the table then never holds more than a
/// retention and a quarter of ids).
async fn prune<H: Handler>(env: Arc<Env<H>>, stop: CancellationToken) {
    let config = &env.config;
    let period = config
        .prune_every
        .min(config.dedup_retention / 4)
        .max(Duration::from_secs(1));
    // The first look one period after start: starting adds no work.
    let first = tokio::time::Instant::now() + period;
    let mut every = tokio::time::interval_at(first, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let age = i64::try_from(config.dedup_retention.as_millis()).unwrap_or(i64::MAX);
        let before = chrono::Utc::now().timestamp_millis().saturating_sub(age);
        match store::forget_processed(&env.db.pool, &config.group_id, before).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(group = %config.group_id, forgotten = n, "old processed event ids forgotten")
            }
            Err(error) => {
                tracing::warn!(group = %config.group_id, %error, "forgetting old processed event ids failed")
            }
        }
    }
}

/// Reads records and hands each to its partition's worker until `shutdown`.
async fn poll<H: Handler>(
    env: &Arc<Env<H>>,
    consumer: &StreamConsumer<Context>,
    high: usize,
    shutdown: &CancellationToken,
    workers_stop: &CancellationToken,
) {
    let mut errors = 0u32;
    let mut watchdog = watchdog::Watchdog::default();
    let mut look = tokio::time::interval(env.config.session_timeout);
    look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            () = env.shared.failed.cancelled() => return,
            () = env.shared.assignments.notified() => {
                let assigned = std::mem::take(&mut *lock(&env.shared.assigned));
                let owned: std::collections::HashSet<Tp> = consumer
                    .assignment()
                    .map(|a| a.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect())
                    .unwrap_or_default();
                let mut workers = lock(&env.shared.workers);
                for tp in assigned.into_iter().filter(|tp| owned.contains(tp)) {
                    match workers.get(&tp) {
                        // A worker still at work on the partition: it fetches on from where
                        // it is (unless its queue is full).
                        Some(worker) => worker.resume(consumer, &tp),
                        None => {
                            let worker = WorkerHandle::spawn(env.clone(), tp.clone(), workers_stop.child_token(), true);
                            workers.insert(tp, worker);
                        }
                    }
                }
                continue;
            }
            received = consumer.recv() => received,
            _ = look.tick() => {
                let patience = env.config.session_timeout * 2;
                if watchdog
                    .stuck(&env.consumer, &env.db.pool, &env.config.group_id, &env.config.topics, patience)
                    .await
                {
                    env.metrics.rejoined(&env.config.group_id);
                    consumer.unsubscribe();
                    let topics: Vec<&str> = env.config.topics.iter().map(String::as_str).collect();
                    if let Err(error) = consumer.subscribe(&topics) {
                        tracing::error!(%error, "rejoining the group failed");
                    }
                }
                continue;
            }
        };
        let message = match received {
            Ok(message) => {
                errors = 0;
                message
            }
            Err(error) => {
                errors += 1;
                tracing::warn!(%error, "consumer error");
                // Errors come in bursts while the broker is away; do not spin.
                let wait = env.config.backoff(errors).min(Duration::from_secs(1));
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let tp = (message.topic().to_owned(), message.partition());
        let mut record = Record::from_message(&message);
        drop(message);
        let mut workers = lock(&env.shared.workers);
        // A worker that is gone (it panicked) is replaced; at most once per record.
        for _ in 0..2 {
            let worker = workers.entry(tp.clone()).or_insert_with(|| {
                WorkerHandle::spawn(env.clone(), tp.clone(), workers_stop.child_token(), false)
            });
            match worker.push(record, high, consumer, &tp) {
                Ok(()) => break,
                Err(back) => {
                    record = back;
                    workers.remove(&tp);
                }
            }
        }
    }
}

/// Commits the database positions of the assigned partitions to Kafka and leaves the group.
fn close(consumer: &StreamConsumer<Context>, shared: &Shared) {
    let assigned = consumer.assignment().unwrap_or_default();
    let mut offsets = TopicPartitionList::new();
    for element in assigned.elements() {
        let tp = (element.topic().to_owned(), element.partition());
        if let Some(next) = shared.position(&tp) {
            let _ = offsets.add_partition_offset(&tp.0, tp.1, Offset::Offset(next));
        }
    }
    if offsets.count() > 0 {
        // Stored too, so that the commit the client makes when it leaves the group carries
        // the same offsets.
        let stored = consumer.store_offsets(&offsets);
        if let Err(error) = stored.and_then(|()| consumer.commit(&offsets, CommitMode::Sync)) {
            tracing::warn!(%error, "final Kafka offset commit failed (the database has them)");
        }
    }
    consumer.unsubscribe();
}
