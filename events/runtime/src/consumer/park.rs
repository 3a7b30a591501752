//! Parking per key: an event that cannot be applied yet is set aside for its record key, so
//! that one key's trouble holds up that key alone.
//!
//! - **Park.** A handler's [`HandlerError::Waiting`](super::HandlerError::Waiting) parks the event (table
//!   `consumer_parked`, see [`super::parked`]) in the transaction that moves the partition's
//!   position past it; the partition's other keys go on at once.
//! - **Queue.** A later event of a key with parked events is parked behind them, in offset
//!   order, without being handed to the handler: a key's events apply in their order.
//! - **Retry.** The head of each key is tried again on a schedule (the consumer's backoff,
//!   capped at [`ConsumerConfig::park_retry_max`](super::ConsumerConfig::park_retry_max)) and
//!   soon after this consumer applies anything (which may be the awaited fact). When it
//!   applies, the events behind it are tried next, in order.
//! - **Give up.** Once a head has waited [`ConsumerConfig::park_budget`] (counted from when it
//!   was parked, in the database, so restarts and rebalances never reset it), it and the
//!   events queued behind it go to the dead-letter topic in order, kind [`PARK_EXPIRED`].
//!
//! [`ConsumerConfig::park_budget`]: super::ConsumerConfig::park_budget

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use eventmart_events::Decoded;
use sqlx::AnyConnection;
use tracing::Instrument;

use super::handler::{Handler, Incoming};
use super::parked::{self, NewParked, Parked, queue_key};
use super::store::{self, Position, now_millis};
use super::worker::{Abandoned, Committed, Item, Rollback, Worker, transient};
use crate::dlq;

/// The failure kind of a parked event whose budget ran out, and of the events queued behind it.
pub const PARK_EXPIRED: &str = "park_expired";

/// The soonest a round of parked events follows the previous one when nudged.
const NUDGE_INTERVAL: Duration = Duration::from_millis(200);

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What trying a key's head came to.
enum Step {
    /// It is settled (applied, a duplicate, dead-lettered, or taken care of by another
    /// owner): try the key's next event.
    Next,
    /// It stays parked (or the key's queue is empty): go on with the next key.
    Done,
}

impl<H: Handler> Worker<H> {
    /// Inside a batch's transaction: parks behind their key's queue the events of `items`
    /// (at or after `stored`) whose key has parked events. Returns their offsets, and whether
    /// the partition has parked events this worker has not scheduled (parked by another owner
    /// of the partition during a rebalance): it reads their schedule once the batch commits.
    pub(super) async fn queue_behind_parked(
        &self,
        tx: &mut AnyConnection,
        items: &[Item],
        stored: i64,
    ) -> Result<(HashSet<i64>, bool), Rollback> {
        let mut queued = HashSet::new();
        // Looked up in every batch: another owner of the partition (during a rebalance) may
        // have parked a key this worker has never seen parked.
        let group = self.env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let heads: HashMap<String, i64> = parked::keys(tx, group, topic, partition)
            .await
            .map_err(transient)?;
        if heads.is_empty() {
            return Ok((queued, false));
        }
        let now = now_millis();
        for item in items.iter().filter(|i| i.record.offset >= stored) {
            let Ok(decoded) = &item.decoded else { continue };
            let key = queue_key(item.record.key.as_deref());
            let Some(head) = heads.get(&key) else {
                continue;
            };
            let reason = format!("queued behind offset {head} of key {key:?}, which waits");
            let row = NewParked {
                record: &item.record,
                event_id: decoded.envelope.event_id,
                event_type: &decoded.envelope.event_type,
                reason: &reason,
                attempts: 0,
                now,
                give_up_at: now.saturating_add(millis(self.env.config.park_budget)),
                next_attempt_at: i64::MAX,
            };
            parked::insert(tx, group, topic, partition, &row)
                .await
                .map_err(transient)?;
            self.env.metrics.parked(topic);
            tracing::info!(topic, partition, offset = item.record.offset, key, head,
                event_id = %decoded.envelope.event_id, "event queued behind its key's parked one");
            queued.insert(item.record.offset);
        }
        Ok((queued, self.parked_due.is_none()))
    }

    /// Parks `item`, whose handler says it waits for `reason`, as the head of its key's queue,
    /// and moves the partition's position past it.
    pub(super) async fn park(&mut self, item: &Item, reason: &str) -> Result<(), Abandoned> {
        let Ok(decoded) = &item.decoded else {
            return Ok(());
        };
        let config = &self.env.config;
        let now = now_millis();
        let attempts = self.attempts.get(&item.record.offset).copied().unwrap_or(1);
        let row = NewParked {
            record: &item.record,
            event_id: decoded.envelope.event_id,
            event_type: &decoded.envelope.event_type,
            reason,
            attempts,
            now,
            give_up_at: now.saturating_add(millis(config.park_budget)),
            next_attempt_at: now.saturating_add(millis(config.park_backoff(attempts))),
        };
        let mut failures = 0;
        let committed = loop {
            match self.park_transaction(&row).await {
                Ok(committed) => break committed,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(topic = %self.tp.0, partition = self.tp.1, %error, failures,
                        "parking failed; retrying");
                    self.pause(failures).await?;
                }
            }
        };
        self.committed(&committed);
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        self.env.metrics.parked(topic);
        tracing::warn!(topic, partition, offset = item.record.offset,
            key = %queue_key(item.record.key.as_deref()), event_id = %row.event_id,
            event_type = row.event_type, reason, "event parked for its key; the partition goes on");
        self.schedule(row.next_attempt_at);
        Ok(())
    }

    async fn park_transaction(&self, row: &NewParked<'_>) -> Result<Committed, sqlx::Error> {
        let group = self.env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let offset = row.record.offset;
        let mut tx = self.env.db.pool.begin().await?;
        let stored = store::lock_offset(&mut tx, group, topic, partition).await?;
        if stored <= offset {
            parked::insert(&mut tx, group, topic, partition, row).await?;
            store::advance_offset(&mut tx, group, topic, partition, offset + 1).await?;
        }
        tx.commit().await?;
        Ok(Committed {
            applied: 0,
            duplicates: 0,
            next: stored.max(offset + 1),
        })
    }

    /// Reads when the partition's next parked event is due.
    pub(super) async fn refresh_parked_due(&mut self) {
        let group = self.env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        self.parked_due = None;
        match parked::next_due(&self.env.db.pool, group, topic, partition).await {
            Ok(Some(due)) => self.schedule(due),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(topic, partition, %error, "cannot read the parked events; looking again soon");
                self.schedule(now_millis() + millis(self.env.config.park_retry_max));
            }
        }
    }

    /// Makes the next round of parked events happen no later than `at` (epoch milliseconds).
    fn schedule(&mut self, at: i64) {
        let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
        let wait = wait.min(self.env.config.park_retry_max);
        let when = tokio::time::Instant::now() + wait;
        self.parked_due = Some(self.parked_due.map_or(when, |due| due.min(when)));
    }

    /// The consumer applied something: try every parked head soon.
    pub(super) fn nudge(&mut self) {
        self.nudged = true;
        let soonest = self
            .last_round
            .map_or_else(tokio::time::Instant::now, |last| last + NUDGE_INTERVAL);
        self.parked_due = Some(self.parked_due.map_or(soonest, |due| due.min(soonest)));
    }

    /// Tries the heads that are due (every head after a nudge), then reads when the next is.
    pub(super) async fn retry_parked(&mut self) -> Result<(), Abandoned> {
        let group = self.env.config.group_id.clone();
        let (topic, partition) = (self.tp.0.clone(), self.tp.1);
        self.last_round = Some(tokio::time::Instant::now());
        let due_by = (!std::mem::take(&mut self.nudged)).then(now_millis);
        let heads = parked::heads(&self.env.db.pool, &group, &topic, partition, due_by).await;
        match heads {
            Ok(heads) => {
                for head in heads {
                    self.resolve(&head.key).await?;
                }
            }
            Err(error) => {
                tracing::warn!(%topic, partition, %error, "cannot read the parked events; looking again soon");
            }
        }
        self.refresh_parked_due().await;
        // Never sooner than the first backoff step, even if a try could not be recorded.
        let soonest = tokio::time::Instant::now() + self.env.config.retry_backoff_base;
        self.parked_due = self.parked_due.map(|due| due.max(soonest));
        Ok(())
    }

    /// Tries `key`'s head, and the events behind it while they apply.
    async fn resolve(&mut self, key: &str) -> Result<(), Abandoned> {
        while let Step::Next = self.try_head(key).await? {}
        Ok(())
    }

    async fn try_head(&mut self, key: &str) -> Result<Step, Abandoned> {
        if self.stop.is_cancelled() {
            return Err(Abandoned);
        }
        // Working through a long queue moves no position: say the partition has an owner.
        self.beat().await;
        let group = self.env.config.group_id.clone();
        let (topic, partition) = (self.tp.0.clone(), self.tp.1);
        let head = match self.env.db.pool.acquire().await {
            Ok(mut conn) => parked::head(&mut conn, &group, &topic, partition, key).await,
            Err(error) => Err(error),
        };
        let head = match head {
            Ok(Some(head)) => head,
            Ok(None) => return Ok(Step::Done),
            Err(error) => {
                tracing::warn!(%topic, partition, %error, "cannot read a parked event; trying later");
                return Ok(Step::Done);
            }
        };
        let decoded = match self.decode(&head.record).await? {
            Ok(decoded) => decoded,
            Err(error) => {
                // It decoded when it was parked; the registry must have lost its schema.
                self.dead_letter_parked(&head, error.kind(), &error.to_string())
                    .await?;
                return Ok(Step::Next);
            }
        };
        let attempt = head.attempts.saturating_add(1);
        let now = now_millis();
        let max_attempts = self.env.config.max_handler_attempts;
        let (reason, next_attempt_at) = match self.unpark(&head, &decoded, attempt).await {
            Ok(Some(committed)) => {
                self.env.metrics.consumed(&topic, committed.applied);
                for _ in 0..committed.duplicates {
                    self.env.metrics.duplicate(&topic);
                }
                self.env.handler.committed();
                if committed.applied > 0 {
                    self.env.shared.progress.notify_waiters();
                }
                tracing::info!(%topic, partition, offset = head.offset, key,
                    event_id = %head.event_id, attempt, "parked event applied");
                return Ok(Step::Next);
            }
            // Another owner of the partition took care of it.
            Ok(None) => return Ok(Step::Next),
            Err(Rollback::Waiting { reason, .. }) if now >= head.give_up_at => {
                self.expire(key, &reason).await?;
                return Ok(Step::Done);
            }
            Err(Rollback::Permanent { reason, .. }) if attempt >= max_attempts => {
                self.dead_letter_parked(&head, dlq::HANDLER_FAILED, &reason)
                    .await?;
                return Ok(Step::Next);
            }
            Err(
                Rollback::Waiting { reason, .. }
                | Rollback::Permanent { reason, .. }
                | Rollback::Transient(reason),
            ) => (reason, now + millis(self.env.config.park_backoff(attempt))),
        };
        tracing::debug!(%topic, partition, offset = head.offset, key, attempt, %reason, "parked event still waits");
        let tried = parked::tried(
            &self.env.db.pool,
            &group,
            &topic,
            partition,
            head.offset,
            &reason,
            attempt,
            next_attempt_at,
        )
        .await;
        if let Err(error) = tried {
            tracing::warn!(%topic, partition, %error, "cannot record a parked event's try");
        }
        Ok(Step::Done)
    }

    /// One transaction applying the parked `head`: `None` when it is no longer the head of its
    /// key (another owner of the partition settled it).
    async fn unpark(
        &self,
        head: &Parked,
        decoded: &Decoded,
        attempt: u32,
    ) -> Result<Option<Committed>, Rollback> {
        let env = &self.env;
        let group = env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let mut tx = env.db.pool.begin().await.map_err(transient)?;
        let stored = store::lock_offset(&mut tx, group, topic, partition)
            .await
            .map_err(transient)?;
        let current = parked::head(&mut tx, group, topic, partition, &head.key)
            .await
            .map_err(transient)?;
        if current.is_none_or(|current| current.offset != head.offset) {
            return Ok(None);
        }
        let mut committed = Committed {
            applied: 0,
            duplicates: 0,
            next: stored,
        };
        let event_id = decoded.envelope.event_id;
        let claimed = store::claim(&mut tx, group, topic, partition, &[(event_id, head.offset)])
            .await
            .map_err(transient)?;
        if claimed.contains(&event_id) {
            let incoming = Incoming {
                key: head.record.key.as_deref(),
                attempt,
                ..Incoming::new(decoded, topic, partition, head.offset)
            };
            let span = tracing::info_span!("parked event", %event_id, topic, partition, offset = head.offset, attempt);
            match env
                .handler
                .handle(&mut tx, &incoming)
                .instrument(span)
                .await
            {
                Ok(()) => committed.applied = 1,
                Err(error) => {
                    let _ = tx.rollback().await;
                    return Err(Rollback::of(error, 0));
                }
            }
        } else {
            committed.duplicates = 1;
        }
        parked::remove(
            &mut tx,
            group,
            topic,
            partition,
            &head.key,
            head.offset,
            now_millis(),
        )
        .await
        .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        Ok(Some(committed))
    }

    /// `key`'s head has waited its budget out: it and every event queued behind it go to the
    /// dead-letter topic, in order.
    async fn expire(&mut self, key: &str, reason: &str) -> Result<(), Abandoned> {
        let group = self.env.config.group_id.clone();
        let (topic, partition) = (self.tp.0.clone(), self.tp.1);
        let mut first: Option<(i64, uuid::Uuid)> = None;
        loop {
            let head = match self.env.db.pool.acquire().await {
                Ok(mut conn) => parked::head(&mut conn, &group, &topic, partition, key).await,
                Err(error) => Err(error),
            };
            let head = match head {
                Ok(Some(head)) => head,
                Ok(None) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%topic, partition, %error, "cannot read a parked event; trying later");
                    return Ok(());
                }
            };
            let message = match first {
                None => format!(
                    "waited {} for what it needs: {reason}",
                    humantime::format_duration(self.env.config.park_budget)
                ),
                Some((offset, event_id)) => format!(
                    "queued behind event {event_id} (offset {offset}) of the same key, which \
                     waited too long: {reason}"
                ),
            };
            first.get_or_insert((head.offset, head.event_id));
            if !self
                .dead_letter_parked(&head, PARK_EXPIRED, &message)
                .await?
            {
                // Another owner took the key over: its queue is that owner's now.
                return Ok(());
            }
        }
    }

    /// Sends the parked `head` to the dead-letter topic, then takes it out of its queue;
    /// `false` if it was no longer parked (another owner of the partition settled it).
    async fn dead_letter_parked(
        &mut self,
        head: &Parked,
        kind: &str,
        reason: &str,
    ) -> Result<bool, Abandoned> {
        let mut failures = 0;
        let group = self.env.config.group_id.clone();
        let (topic, partition) = (self.tp.0.clone(), self.tp.1);
        // Another owner of the partition (during a rebalance) may have settled it meanwhile.
        let still_parked: Result<bool, sqlx::Error> = async {
            let mut tx = self.env.db.pool.begin().await?;
            store::lock_offset(&mut tx, &group, &topic, partition).await?;
            let current = parked::head(&mut tx, &group, &topic, partition, &head.key).await?;
            tx.commit().await?;
            Ok(current.is_some_and(|current| current.offset == head.offset))
        }
        .await;
        if let Ok(false) = still_parked {
            return Ok(false);
        }
        self.send_to_dlq(&head.record, kind, reason, &mut failures)
            .await?;
        loop {
            let settled: Result<(), sqlx::Error> = async {
                let mut tx = self.env.db.pool.begin().await?;
                store::lock_offset(&mut tx, &group, &topic, partition).await?;
                let at = Position {
                    topic: &topic,
                    partition,
                    offset: head.offset,
                };
                store::mark_dead_lettered(&mut tx, &group, head.event_id, at).await?;
                let now = now_millis();
                parked::remove(
                    &mut tx,
                    &group,
                    &topic,
                    partition,
                    &head.key,
                    head.offset,
                    now,
                )
                .await?;
                tx.commit().await
            }
            .await;
            match settled {
                Ok(()) => break,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%topic, partition, %error, failures, "database unavailable; retrying");
                    self.pause(failures).await?;
                }
            }
        }
        self.env.metrics.dead_lettered(&topic, kind);
        tracing::warn!(%topic, partition, offset = head.offset, event_id = %head.event_id,
            event_type = head.event_type, kind, reason, "parked event dead-lettered");
        Ok(true)
    }
}
