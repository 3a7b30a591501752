//! The Kafka client's callbacks: where assigned partitions start (from the database's offsets,
//! not Kafka's), what happens to revoked partitions' work, and lag from the client's
//! statistics.
//!
//! Callbacks run inside the consumer's poll, on the task that polls, and must not block: they
//! read and write only the in-memory state in [`Shared`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use super::partition::WorkerHandle;
use crate::metrics::Metrics;

/// A topic (full name) and partition.
pub(super) type Tp = (String, i32);

/// State shared by the polling task, the callbacks and the partition workers.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// The next offset of each partition as last committed to the database: a mirror of the
    /// offsets table, loaded at start and updated after each commit.
    pub(super) positions: Mutex<HashMap<Tp, i64>>,
    /// The worker of each partition this consumer owns.
    pub(super) workers: Mutex<HashMap<Tp, WorkerHandle>>,
    /// Workers of revoked partitions, told to stop, not yet joined.
    pub(super) retired: Mutex<Vec<JoinHandle<()>>>,
    /// Woken whenever a worker commits applied events: workers with parked events then try
    /// them again, as what they wait for may have arrived.
    pub(super) progress: tokio::sync::Notify,
    /// Why the consumer must stop, once a worker finds it cannot go on (its stored position
    /// lies beyond the partition's end); cancelling `failed` tells the polling task.
    pub(super) fault: Mutex<Option<String>>,
    pub(super) failed: tokio_util::sync::CancellationToken,
    /// Partitions assigned and not yet given a worker by the polling task, which is woken
    /// by `assignments`: each gets one at once, so that its parked events are tried (and its
    /// position checked) even while no record arrives.
    pub(super) assigned: Mutex<Vec<Tp>>,
    pub(super) assignments: tokio::sync::Notify,
}

/// Locks `mutex`, also after a panic elsewhere left it poisoned (the data stays consistent:
/// every critical section is a single insert or removal).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(positions: HashMap<Tp, i64>) -> Self {
        Self {
            positions: Mutex::new(positions),
            ..Self::default()
        }
    }

    /// The stored next offset of a partition, if the database has one.
    pub(super) fn position(&self, tp: &Tp) -> Option<i64> {
        lock(&self.positions).get(tp).copied()
    }

    /// Records a partition's new next offset after a commit (never moving it back).
    pub(super) fn advance(&self, tp: &Tp, next: i64) {
        let mut positions = lock(&self.positions);
        let entry = positions.entry(tp.clone()).or_insert(next);
        *entry = (*entry).max(next);
    }

    /// Tells the workers of `partitions` to finish their in-flight batch (or abandon it, if it
    /// is waiting out a failure) and take no more; their records will be read again by the
    /// partition's next owner, which starts where the database says.
    pub(super) fn retire(&self, partitions: impl IntoIterator<Item = Tp>) {
        let mut workers = lock(&self.workers);
        let mut retired = lock(&self.retired);
        retired.retain(|join| !join.is_finished());
        for tp in partitions {
            if let Some(worker) = workers.remove(&tp) {
                worker.stop.cancel();
                retired.push(worker.join);
            }
        }
    }

    /// Stops the consumer with `reason` (the first reason given wins).
    pub(super) fn fail(&self, reason: String) {
        lock(&self.fault).get_or_insert(reason);
        self.failed.cancel();
    }

    /// Every partition with a worker.
    pub(super) fn owned(&self) -> Vec<Tp> {
        lock(&self.workers).keys().cloned().collect()
    }
}

/// The consumer's context: rebalances and statistics.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) shared: Arc<Shared>,
    pub(super) metrics: Metrics,
    pub(super) group: String,
}

fn partitions(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for Context {
    /// Lag per owned partition: the partition's end (high watermark) minus the group's stored
    /// position.
    fn stats(&self, statistics: Statistics) {
        let positions = lock(&self.shared.positions);
        for (topic, stats) in &statistics.topics {
            for (&partition, p) in &stats.partitions {
                if partition < 0 || !p.desired || p.hi_offset < 0 {
                    continue;
                }
                let position = positions
                    .get(&(topic.clone(), partition))
                    .copied()
                    .unwrap_or(p.lo_offset.max(0));
                self.metrics
                    .set_lag(topic, partition, (p.hi_offset - position).max(0));
            }
        }
    }
}

impl ConsumerContext for Context {
    /// Assigned partitions are placed at the mirror's next offset (a partition the mirror has
    /// never seen at the beginning) and paused until their worker has read the stored position
    /// and sought there. Revoked partitions' workers are told to stop before the partitions are
    /// given up.
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let assigned = partitions(tpl);
                {
                    let positions = lock(&self.shared.positions);
                    for (topic, partition) in &assigned {
                        let start = positions
                            .get(&(topic.clone(), *partition))
                            .map_or(Offset::Beginning, |&next| Offset::Offset(next));
                        if let Err(error) = tpl.set_partition_offset(topic, *partition, start) {
                            tracing::error!(%topic, partition, %error, "cannot set start offset");
                        }
                    }
                }
                let result = if cooperative {
                    base.incremental_assign(tpl)
                } else {
                    base.assign(tpl)
                };
                if let Err(error) = result {
                    tracing::error!(group = %self.group, %error, "assigning partitions failed");
                }
                // Each partition waits, paused, for its worker: the mirror may be stale (another
                // member may have moved the partition on since this one last wrote it), so the
                // worker reads the group's stored position, seeks there and only then resumes.
                // Without this every rebalance would read history again from the mirror's
                // position, or from the beginning for a partition this process never wrote.
                let _ = base.pause(tpl);
                lock(&self.shared.assigned).extend(assigned.iter().cloned());
                self.shared.assignments.notify_one();
                tracing::info!(group = %self.group, partitions = ?assigned, "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = partitions(tpl);
                self.shared.retire(revoked.iter().cloned());
                let result = if cooperative {
                    base.incremental_unassign(tpl)
                } else {
                    base.unassign()
                };
                if let Err(error) = result {
                    tracing::error!(group = %self.group, %error, "revoking partitions failed");
                }
                tracing::info!(group = %self.group, partitions = ?revoked, "partitions revoked");
            }
            other => {
                tracing::error!(group = %self.group, error = ?other, "rebalance failed; giving up every partition");
                self.shared.retire(self.shared.owned());
                let _ = base.unassign();
            }
        }
    }
}
