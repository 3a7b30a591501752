//! What a consumer is configured with, and the backoff it derives from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How one consumer group reads, batches and retries.
///
/// Durations are written the human way in files and variables (`"250ms"`, `"6s"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// The group's name: the key of its offsets and processed events in the database, and its
    /// Kafka consumer group unless [`ConsumerConfig::kafka_group_id`] says otherwise.
    pub group_id: String,
    /// The Kafka consumer group, when it must differ from `group_id` (e.g. a fresh group to
    /// re-read a topic; where reading resumes is still decided by the database).
    #[serde(default)]
    pub kafka_group_id: Option<String>,
    /// Full names of the topics to read (prefix included).
    pub topics: Vec<String>,
    /// Most records of one partition applied in one database transaction.
    #[serde(default = "defaults::batch_max")]
    pub batch_max: usize,
    /// Most records read ahead and waiting to be applied, per partition. Beyond it, fetching
    /// the partition pauses until half of them are applied (a paused partition's prefetched
    /// records are fetched again, so a small value costs throughput).
    #[serde(default = "defaults::max_buffered")]
    pub max_buffered: usize,
    /// How long a batch waits for more records once the partition's queue is empty; zero
    /// takes what has arrived and goes.
    #[serde(default = "defaults::linger", with = "duration")]
    pub linger: Duration,
    /// Longest time the broker may hold a fetch that has no records yet (Kafka
    /// `fetch.wait.max.ms`). Each hop of a saga can wait this long when the broker does not
    /// answer a waiting fetch as soon as records arrive, so it bounds a reaction's latency;
    /// shorter means more idle fetches.
    #[serde(default = "defaults::fetch_wait", with = "duration")]
    pub fetch_wait: Duration,
    /// First pause after a failure; each further failure of the same batch doubles it.
    #[serde(default = "defaults::retry_backoff_base", with = "duration")]
    pub retry_backoff_base: Duration,
    /// Longest pause between two retries.
    #[serde(default = "defaults::retry_backoff_max", with = "duration")]
    pub retry_backoff_max: Duration,
    /// How many times a handler may fail with a permanent error on one event before the
    /// event goes to the dead-letter topic (1: at the first failure).
    #[serde(default = "defaults::max_handler_attempts")]
    pub max_handler_attempts: u32,
    /// How long an event may stay parked for its key, waiting for the fact it needs (see
    /// [`HandlerError::Waiting`](super::HandlerError::Waiting)), before it and the events
    /// queued behind it go to the dead-letter topic. Counted from when it was parked, in the
    /// database, so restarts and rebalances do not reset it.
    #[serde(default = "defaults::park_budget", with = "duration")]
    pub park_budget: Duration,
    /// Longest pause between two tries of a parked event (they start at
    /// `retry_backoff_base` and double).
    #[serde(default = "defaults::park_retry_max", with = "duration")]
    pub park_retry_max: Duration,
    /// How long the ids of applied events are kept to recognise duplicates: longer than any
    /// redelivery reaches (a rebalance or restart re-reads only past the stored position; a
    /// producer retries for seconds; a relay republishes within minutes). An event typed in
    /// or replayed from a dead-letter topic again after this long is applied again.
    #[serde(default = "defaults::dedup_retention", with = "duration")]
    pub dedup_retention: Duration,
    /// How often ids older than `dedup_retention` are deleted.
    #[serde(default = "defaults::prune_every", with = "duration")]
    pub prune_every: Duration,
    /// Kafka's `session.timeout.ms`: how long the group waits for a silent member before
    /// giving its partitions to others.
    #[serde(default = "defaults::session_timeout", with = "duration")]
    pub session_timeout: Duration,
    /// How often positions are committed to Kafka, for tools and lag (a consumer resumes
    /// from the database, not from these).
    #[serde(default = "defaults::kafka_commit_interval", with = "duration")]
    pub kafka_commit_interval: Duration,
    /// How often the lag of each partition (its end minus the group's position) is measured.
    #[serde(default = "defaults::lag_interval", with = "duration")]
    pub lag_interval: Duration,
}

impl ConsumerConfig {
    /// A configuration for `group_id` reading `topics`, every other setting at its default.
    pub fn new(
        group_id: impl Into<String>,
        topics: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            group_id: group_id.into(),
            kafka_group_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            batch_max: defaults::batch_max(),
            max_buffered: defaults::max_buffered(),
            linger: defaults::linger(),
            fetch_wait: defaults::fetch_wait(),
            retry_backoff_base: defaults::retry_backoff_base(),
            retry_backoff_max: defaults::retry_backoff_max(),
            max_handler_attempts: defaults::max_handler_attempts(),
            park_budget: defaults::park_budget(),
            park_retry_max: defaults::park_retry_max(),
            dedup_retention: defaults::dedup_retention(),
            prune_every: defaults::prune_every(),
            session_timeout: defaults::session_timeout(),
            kafka_commit_interval: defaults::kafka_commit_interval(),
            lag_interval: defaults::lag_interval(),
        }
    }

    /// The Kafka consumer group to join.
    pub fn kafka_group(&self) -> &str {
        self.kafka_group_id.as_deref().unwrap_or(&self.group_id)
    }

    /// When a partition's fetching pauses (more records waiting than the first) and resumes
    /// (no more than the second).
    pub(crate) fn read_ahead(&self) -> (usize, usize) {
        let high = self.max_buffered.max(self.batch_max).max(1);
        (high, high / 2)
    }

    /// The pause before retry number `failures` (1 for the first retry): the base doubled for
    /// each earlier failure, capped at the maximum.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.retry_backoff_base
            .saturating_mul(1 << doublings)
            .min(self.retry_backoff_max)
    }

    /// The pause before try number `attempts + 1` of a parked event.
    pub(crate) fn park_backoff(&self, attempts: u32) -> Duration {
        self.backoff(attempts).min(self.park_retry_max)
    }
}

mod defaults {
    use std::time::Duration;

    pub(super) fn batch_max() -> usize {
        200
    }
    pub(super) fn max_buffered() -> usize {
        5000
    }
    pub(super) fn linger() -> Duration {
        Duration::ZERO
    }
    pub(super) fn fetch_wait() -> Duration {
        Duration::from_millis(20)
    }
    pub(super) fn retry_backoff_base() -> Duration {
        Duration::from_millis(100)
    }
    pub(super) fn retry_backoff_max() -> Duration {
        Duration::from_secs(30)
    }
    pub(super) fn max_handler_attempts() -> u32 {
        3
    }
    pub(super) fn park_budget() -> Duration {
        Duration::from_secs(10 * 60)
    }
    pub(super) fn park_retry_max() -> Duration {
        Duration::from_secs(5)
    }
    pub(super) fn dedup_retention() -> Duration {
        Duration::from_secs(30 * 24 * 3600)
    }
    pub(super) fn prune_every() -> Duration {
        Duration::from_secs(10 * 60)
    }
    pub(super) fn session_timeout() -> Duration {
        Duration::from_secs(6)
    }
    pub(super) fn kafka_commit_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub(super) fn lag_interval() -> Duration {
        Duration::from_secs(5)
    }
}

/// `Duration` as a human-readable string (`"250ms"`, `"1m 30s"`).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let mut config = ConsumerConfig::new("g", ["t"]);
        config.retry_backoff_base = Duration::from_millis(100);
        config.retry_backoff_max = Duration::from_secs(1);
        let pauses: Vec<_> = (1..=6).map(|n| config.backoff(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(config.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn a_config_file_needs_only_the_group_and_topics() {
        let config: ConsumerConfig = serde_json::from_str(
            r#"{"group_id": "inventory", "topics": ["orders"], "linger": "5ms"}"#,
        )
        .expect("parses");
        assert_eq!(config.kafka_group(), "inventory");
        assert_eq!(config.linger, Duration::from_millis(5));
        assert_eq!(config.session_timeout, Duration::from_secs(6));
        assert_eq!(config.max_handler_attempts, 3);
    }

    #[test]
    fn unknown_settings_are_refused() {
        let parsed = serde_json::from_str::<ConsumerConfig>(
            r#"{"group_id": "g", "topics": [], "batch_size": 5}"#,
        );
        assert!(parsed.is_err());
    }
}
