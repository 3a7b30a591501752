//! A member rejoins a group whose other partitions have stopped making progress.
//!
//! Kafka guarantees that the partitions of a member that stops heartbeating are handed to the
//! others. Some brokers (the local one among them) evict such a member without recomputing
//! the assignment, so its partitions stay with nobody. The watchdog notices that state from
//! facts any member can see, and only that state: records wait past the group's positions (in
//! the database) in partitions this member does not own, and those positions have not moved
//! for a while. It then leaves and rejoins the group, which makes every broker assign the
//! partitions again. In a healthy group the owners of those partitions make progress, or
//! nothing is waiting, so the watchdog does nothing. An owner that cannot make progress (it
//! waits out a failure) writes a heartbeat for its partition (table `consumer_heartbeats`):
//! a partition whose heartbeat is fresh has a live owner and never counts as orphaned, so a
//! registry or database outage does not set off a storm of rebalances.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer as _, StreamConsumer};
use sqlx::AnyPool;

use super::context::Context;
use super::store::{alive_since, stored_offsets};

/// A topic and partition.
type Tp = (String, i32);

/// The watchdog's memory between two looks.
#[derive(Debug, Default)]
pub(super) struct Watchdog {
    /// This member's partitions and the others' positions at the last look.
    last: Option<(BTreeSet<Tp>, BTreeMap<Tp, i64>)>,
    /// Since when nothing has changed.
    still_since: Option<Instant>,
}

impl Watchdog {
    /// Looks at the group once; true when this member should leave and rejoin.
    pub(super) async fn stuck(
        &mut self,
        consumer: &Arc<StreamConsumer<Context>>,
        pool: &AnyPool,
        group: &str,
        topics: &[String],
        patience: Duration,
    ) -> bool {
        let mine: BTreeSet<Tp> = consumer
            .assignment()
            .map(|a| {
                a.elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect()
            })
            .unwrap_or_default();
        let since = chrono::Utc::now().timestamp_millis()
            - i64::try_from(patience.as_millis()).unwrap_or(i64::MAX);
        let (Ok(positions), Ok(alive)) = (
            stored_offsets(pool, group).await,
            alive_since(pool, group, since).await,
        ) else {
            // The database is away: that is the workers' problem, not the group's.
            return false;
        };
        let others: BTreeMap<Tp, i64> = positions
            .into_iter()
            .filter(|(tp, _)| !mine.contains(tp) && !alive.contains(tp))
            .collect();
        let now = (mine, others);
        if self.last.as_ref() != Some(&now) {
            self.last = Some(now);
            self.still_since = Some(Instant::now());
            return false;
        }
        let still_since = *self.still_since.get_or_insert_with(Instant::now);
        if still_since.elapsed() < patience {
            return false;
        }
        let (mine, others) = now;
        let owned: BTreeSet<Tp> = mine.union(&alive).cloned().collect();
        let waiting = waiting_records(consumer, topics, &owned, others).await;
        if waiting {
            tracing::warn!(
                group,
                still = ?still_since.elapsed(),
                "records wait in partitions no member makes progress on; rejoining the group"
            );
            *self = Self::default();
        }
        waiting
    }
}

/// Whether any partition of `topics` not in `mine` has records beyond the group's stored
/// position.
async fn waiting_records(
    consumer: &Arc<StreamConsumer<Context>>,
    topics: &[String],
    mine: &BTreeSet<Tp>,
    positions: BTreeMap<Tp, i64>,
) -> bool {
    let consumer = Arc::clone(consumer);
    let topics = topics.to_vec();
    let mine = mine.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        topics.iter().any(|topic| {
            let Ok(metadata) = consumer.fetch_metadata(Some(topic), timeout) else {
                return false;
            };
            metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .filter(|&partition| !mine.contains(&(topic.clone(), partition)))
                .any(|partition| {
                    let position = positions
                        .get(&(topic.clone(), partition))
                        .copied()
                        .unwrap_or(0);
                    consumer
                        .fetch_watermarks(topic, partition, timeout)
                        .is_ok_and(|(_, high)| high > position)
                })
        })
    })
    .await
    .unwrap_or(false)
}
