//! The relay: publishes committed journal events to Kafka, in journal order, and marks them
//! published once the broker has acknowledged them.
//!
//! Each round reads up to [`RelayConfig::batch_size`] unpublished events by position,
//! encodes them (Avro through the schema registry), produces them all (key = aggregate id,
//! envelope as headers), awaits every acknowledgement and marks the acknowledged ones in one
//! `UPDATE`. A round starts as soon as [`Journal::committed`] is called, right after a full
//! batch, or after [`RelayConfig::poll_interval`] for events committed by another process.
//!
//! Ordering rests on three things: rows are read in position order, and an aggregate's
//! later event always gets a later position (its append waits for, or conflicts with, the
//! earlier one); the producer is idempotent with no local message timeout, so it neither
//! reorders nor drops a record while the broker is away; and any failure it reports does
//! not skip anything: the failed events stay unpublished and are produced again, in order,
//! by a fresh producer. Nothing is ever skipped: an event that cannot be encoded (registry
//! down, schema refused) holds the relay back, with backoff and a log line per attempt,
//! until it can be.
//!
//! Two relays on one database (say, two replicas of a service) are safe, only wasteful:
//! each publishes every event after the ones before it, so the first copy of each event
//! still comes in order, and consumers drop the second copies by `event_id`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use eventmart_events::{Codec, Envelope, Event, Topic};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureRecord, Producer};
use sqlx::Row;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::producer::{RelayProducer, headers, producer};
use super::read::{self, decode};
use super::{Journal, now_millis};
use crate::metrics::Metrics;

/// How the relay reaches Kafka and paces itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The Kafka cluster, `host:port[,host:port…]`.
    pub bootstrap_servers: String,
    /// Further librdkafka settings for the producer (e.g. `security.protocol`). The settings
    /// the relay's guarantees rest on (idempotence, `acks=all`, no message timeout) cannot be
    /// overridden.
    pub kafka: Vec<(String, String)>,
    /// Most events read, produced and marked published in one round.
    pub batch_size: usize,
    /// How often to look for events when not woken: events committed by another process
    /// sharing the database are found this late at worst.
    pub poll_interval: Duration,
    /// How long the producer waits to fill a request (librdkafka `linger.ms`).
    pub linger: Duration,
    /// The pause after a first failure; it doubles with each further one.
    pub backoff: Duration,
    /// The longest pause between two attempts.
    pub max_backoff: Duration,
    /// On shutdown, how long the round in flight may wait for acknowledgements before the
    /// relay exits anyway (what is not acknowledged stays unpublished, for the next run).
    pub shutdown_grace: Duration,
}

impl RelayConfig {
    /// Settings for the cluster at `bootstrap_servers`, every other one at its default.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            kafka: Vec::new(),
            batch_size: 500,
            poll_interval: Duration::from_secs(1),
            linger: Duration::from_millis(2),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Why the relay could not run.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The producer could not be created from the configuration; fix the Kafka settings.
    #[error("cannot create the relay's Kafka producer: {0}")]
    Producer(#[from] KafkaError),
}

/// Publishes a [`Journal`]'s committed events to Kafka. One per process that appends.
pub struct Relay {
    journal: Journal,
    codec: Codec,
    metrics: Metrics,
    config: RelayConfig,
    producer: RelayProducer,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("journal", &self.journal)
            .field("codec", &self.codec)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An event read from the journal, waiting to be published.
#[derive(Debug)]
struct Pending {
    position: i64,
    topic: String,
    aggregate_id: String,
    recorded_at: i64,
    json: String,
}

/// What a round did.
#[derive(Debug)]
enum Round {
    /// It published this many events; a full batch means more may be waiting.
    Published(usize),
    /// It published the events before one it could not publish, then stopped.
    Stuck(Stuck),
}

/// Why a round stopped early; each is retried with backoff, never skipped.
#[derive(Debug)]
enum Stuck {
    Database(sqlx::Error),
    Undecodable(read::ReadError),
    Encode {
        position: i64,
        error: eventmart_events::EncodeError,
    },
    Produce {
        position: i64,
        error: String,
    },
}

impl Stuck {
    /// Whether waiting alone will not help: the schema or the stored event must be fixed.
    fn needs_an_operator(&self) -> bool {
        match self {
            Stuck::Undecodable(_) => true,
            Stuck::Encode { error, .. } => !error.is_transient(),
            Stuck::Database(_) | Stuck::Produce { .. } => false,
        }
    }
}

impl fmt::Display for Stuck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stuck::Database(e) => write!(f, "journal database error: {e}"),
            Stuck::Undecodable(e) => e.fmt(f),
            Stuck::Encode { position, error } => {
                write!(f, "cannot encode the event at position {position}: {error}")
            }
            Stuck::Produce { position, error } => {
                write!(
                    f,
                    "the broker did not take the event at position {position}: {error}"
                )
            }
        }
    }
}

const SELECT_SQLITE: &str = "SELECT position, topic, aggregate_id, recorded_at, event_json \
     FROM event_journal WHERE published_at IS NULL ORDER BY position LIMIT $1";

const SELECT_POSTGRES: &str = "SELECT position, topic, aggregate_id, recorded_at, \
     event_json::text AS event_json \
     FROM event_journal WHERE published_at IS NULL ORDER BY position LIMIT $1";

impl Relay {
    /// A relay for `journal`'s events, encoding with `codec` and recording in `metrics`.
    pub fn new(
        journal: Journal,
        codec: Codec,
        metrics: Metrics,
        config: RelayConfig,
    ) -> Result<Self, RelayError> {
        let producer = producer(&config)?;
        Ok(Self {
            journal,
            codec,
            metrics,
            config,
            producer,
        })
    }

    /// Publishes until `shutdown` is cancelled, then lets the round in flight finish (for up
    /// to [`RelayConfig::shutdown_grace`]), flushes the producer and returns.
    ///
    /// Failures (database, registry, broker) are retried with backoff for as long as it
    /// takes; they are logged, never skipped. It returns an error only when a producer
    /// cannot be created at all.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), RelayError> {
        tracing::info!(
            bootstrap = %self.config.bootstrap_servers,
            batch_size = self.config.batch_size,
            "relay started"
        );
        self.warm_up().await;
        let mut failures: u32 = 0;
        while !shutdown.is_cancelled() {
            let round = self.round(&shutdown).await;
            self.record_backlog().await;
            match round {
                Round::Published(n) if n >= self.batch_size() => failures = 0,
                Round::Published(_) => {
                    failures = 0;
                    tokio::select! {
                        () = self.journal.wake.notified() => {}
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
                Round::Stuck(stuck) => {
                    failures = failures.saturating_add(1);
                    let pause = backoff(&self.config, failures);
                    if stuck.needs_an_operator() {
                        tracing::error!(error = %stuck, attempt = failures, retry_in = ?pause,
                            "relay blocked: this event must be published before any later one");
                    } else {
                        tracing::warn!(error = %stuck, attempt = failures, retry_in = ?pause,
                            "relay round failed; retrying");
                    }
                    if matches!(stuck, Stuck::Produce { .. }) {
                        // A fresh producer (new producer id) starts from what is still
                        // unpublished, in order, with nothing of the old one left queued.
                        self.replace_producer().await?;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => {}
                    }
                }
            }
        }
        let producer = self.producer.clone();
        let grace = self.config.shutdown_grace;
        let flushed = tokio::task::spawn_blocking(move || producer.flush(grace)).await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "relay producer did not flush before shutdown");
        }
        tracing::info!("relay stopped");
        Ok(())
    }

    /// The batch size in force: at least one event per round.
    fn batch_size(&self) -> usize {
        self.config.batch_size.max(1)
    }

    /// One round: read a batch, publish it, mark what the broker acknowledged.
    async fn round(&self, shutdown: &CancellationToken) -> Round {
        let pending = match self.unpublished().await {
            Ok(pending) => pending,
            Err(e) => return Round::Stuck(Stuck::Database(e)),
        };
        let Some((first, last)) = pending.first().zip(pending.last()) else {
            return Round::Published(0);
        };
        let span = tracing::info_span!(
            "relay_batch",
            events = pending.len(),
            first_position = first.position,
            last_position = last.position,
        );
        self.publish(&pending, shutdown).instrument(span).await
    }

    async fn unpublished(&self) -> Result<Vec<Pending>, sqlx::Error> {
        let db = self.journal.db();
        let sql = match db.engine {
            crate::db::Engine::Sqlite => SELECT_SQLITE,
            crate::db::Engine::Postgres => SELECT_POSTGRES,
        };
        let limit = i64::try_from(self.batch_size()).unwrap_or(i64::MAX);
        let rows = sqlx::query(sql).bind(limit).fetch_all(&db.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Pending {
                    position: row.try_get("position")?,
                    topic: row.try_get("topic")?,
                    aggregate_id: row.try_get("aggregate_id")?,
                    recorded_at: row.try_get("recorded_at")?,
                    json: row.try_get("event_json")?,
                })
            })
            .collect()
    }

    async fn publish(&self, pending: &[Pending], shutdown: &CancellationToken) -> Round {
        // Encode in order, up to the first event that cannot be: only a prefix of the batch
        // may be published, or a later event of some aggregate could overtake it.
        let mut records = Vec::with_capacity(pending.len());
        let mut stuck = None;
        for p in pending {
            match self.encode(p).await {
                Ok(record) => records.push(record),
                Err(e) => {
                    stuck = Some(e);
                    break;
                }
            }
        }

        let mut deliveries = FuturesUnordered::new();
        for (i, (p, (envelope, payload))) in pending.iter().zip(&records).enumerate() {
            let record = FutureRecord::to(&p.topic)
                .key(p.aggregate_id.as_bytes())
                .payload(payload.as_slice())
                .headers(headers(envelope));
            match self.producer.send_result(record) {
                Ok(delivery) => deliveries.push(async move { (i, delivery.await) }),
                Err((error, _)) => {
                    // Earlier than any encoding failure, and it calls for a fresh producer.
                    stuck = Some(Stuck::Produce {
                        position: p.position,
                        error: error.to_string(),
                    });
                    break;
                }
            }
        }

        // Await every acknowledgement; on shutdown, only for the grace period.
        let mut acked = vec![false; records.len()];
        let mut failed: Option<(usize, String)> = None;
        let mut grace_ends = None;
        loop {
            let next = tokio::select! {
                next = deliveries.next() => next,
                () = shutdown.cancelled(), if grace_ends.is_none() => {
                    grace_ends = Some(tokio::time::Instant::now() + self.config.shutdown_grace);
                    continue;
                }
                () = sleep_until(grace_ends) => {
                    tracing::warn!(
                        waiting = deliveries.len(),
                        "shutdown: events not acknowledged in time stay unpublished for the next run"
                    );
                    break;
                }
            };
            let Some((i, outcome)) = next else { break };
            match outcome {
                Ok(Ok(_)) => acked[i] = true,
                Ok(Err((error, _))) => keep_first(&mut failed, i, error.to_string()),
                Err(_canceled) => keep_first(&mut failed, i, "producer dropped".to_owned()),
            }
        }

        let published: Vec<&Pending> = pending
            .iter()
            .zip(&acked)
            .filter_map(|(p, ok)| ok.then_some(p))
            .collect();
        if let Err(e) = self.mark_published(&published).await {
            // Acknowledged but not marked: they go out again next round (consumers drop the
            // duplicates by event id).
            return Round::Stuck(Stuck::Database(e));
        }
        if let Some((i, error)) = failed {
            let position = pending[i].position;
            if let Some(fatal) = self.producer.client().fatal_error() {
                tracing::error!(code = ?fatal.0, reason = %fatal.1, "relay producer failed fatally");
            }
            return Round::Stuck(Stuck::Produce { position, error });
        }
        match stuck {
            Some(stuck) => Round::Stuck(stuck),
            None => Round::Published(published.len()),
        }
    }

    /// The event of `p` with its envelope, and its value in Avro.
    async fn encode(&self, p: &Pending) -> Result<(Envelope, Vec<u8>), Stuck> {
        let position = u64::try_from(p.position).unwrap_or_default();
        let (event, envelope): (Event, Envelope) =
            decode(&p.topic, position, &p.json).map_err(Stuck::Undecodable)?;
        let payload = self
            .codec
            .encode(&p.topic, &event)
            .await
            .map_err(|error| Stuck::Encode {
                position: p.position,
                error,
            })?;
        Ok((envelope, payload))
    }

    async fn mark_published(&self, published: &[&Pending]) -> Result<(), sqlx::Error> {
        if published.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        // Placeholders are numbered for PostgreSQL; SQLite reads `$n` the same way.
        let placeholders: Vec<String> = (2..published.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "UPDATE event_journal SET published_at = $1 WHERE position IN ({})",
            placeholders.join(", ")
        );
        let mut update = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for p in published {
            update = update.bind(p.position);
        }
        update.execute(&self.journal.db().pool).await?;

        let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
        for p in published {
            *per_topic.entry(p.topic.as_str()).or_default() += 1;
            let latency = (now - p.recorded_at).max(0) as f64 / 1000.0;
            self.metrics.relayed(&p.topic, latency);
        }
        for (topic, n) in per_topic {
            self.metrics.produced(topic, n);
        }
        tracing::debug!(
            events = published.len(),
            oldest_ms = published
                .iter()
                .map(|p| now - p.recorded_at)
                .max()
                .unwrap_or_default(),
            "published"
        );
        Ok(())
    }

    /// Learns the journal's topics' partitions before the first event needs them, so that
    /// the first publish does not wait for a metadata round trip. A broker that is down
    /// now is simply met later.
    async fn warm_up(&self) {
        let producer = self.producer.clone();
        let topics = self.journal.topics().clone();
        let warmed = tokio::task::spawn_blocking(move || {
            Topic::ALL.into_iter().try_for_each(|topic| {
                producer
                    .client()
                    .fetch_metadata(Some(&topics.name(topic)), Duration::from_secs(5))
                    .map(drop)
            })
        })
        .await;
        if let Ok(Err(e)) = warmed {
            tracing::debug!(error = %e, "relay could not fetch topic metadata yet");
        }
    }

    async fn record_backlog(&self) {
        match self.journal.unpublished().await {
            Ok(n) => self
                .metrics
                .set_outbox_backlog(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => tracing::debug!(error = %e, "outbox backlog not measured"),
        }
    }

    async fn replace_producer(&mut self) -> Result<(), RelayError> {
        let fresh = producer(&self.config)?;
        let old = std::mem::replace(&mut self.producer, fresh);
        // Dropping a producer purges its queue and waits briefly; keep that off the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        Ok(())
    }
}

fn keep_first(failed: &mut Option<(usize, String)>, i: usize, error: String) {
    if failed.as_ref().is_none_or(|(first, _)| i < *first) {
        *failed = Some((i, error));
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn backoff(config: &RelayConfig, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    config
        .backoff
        .saturating_mul(factor)
        .min(config.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = RelayConfig::new("unused:9092");
        assert_eq!(backoff(&config, 1), Duration::from_millis(100));
        assert_eq!(backoff(&config, 2), Duration::from_millis(200));
        assert_eq!(backoff(&config, 4), Duration::from_millis(800));
        assert_eq!(backoff(&config, 40), Duration::from_secs(10));
    }

    #[test]
    fn the_first_failure_of_a_batch_is_the_one_reported() {
        let mut failed = None;
        keep_first(&mut failed, 3, "c".to_owned());
        keep_first(&mut failed, 1, "a".to_owned());
        keep_first(&mut failed, 2, "b".to_owned());
        assert_eq!(failed, Some((1, "a".to_owned())));
    }
}
