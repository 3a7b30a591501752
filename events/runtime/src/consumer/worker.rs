//! One partition's worker: takes the partition's records in order, in batches, and applies
//! each batch in one database transaction together with the events' ids and the partition's
//! next offset. Transient failures are retried; a poison record is isolated and handed to
//! [dead-lettering](super::dead_letter) while the records around it apply as usual; an event
//! that cannot be applied yet is [parked](super::park) for its key while the partition's other
//! keys go on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use eventmart_events::{DecodeError, Decoded};
use rdkafka::Offset;
use rdkafka::consumer::Consumer as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::context::{Tp, lock};
use super::handler::{Handler, HandlerError, Incoming};
use super::partition::{Env, Flow, Record, single};
use super::store;
use crate::dlq;

/// The worker was told to stop while its batch was waiting out a failure: the batch is left
/// uncommitted, to be read again by the partition's next owner.
pub(super) struct Abandoned;

/// A record and what decoding it gave (a poison record's error; transient ones are retried
/// until they go away).
pub(super) struct Item {
    pub(super) record: Record,
    pub(super) decoded: Result<Decoded, DecodeError>,
    /// Settled as dead-lettered without being applied (see [`super::Consumer::pass_over`]).
    pub(super) passed_over: bool,
}

/// What one transaction did.
pub(super) struct Committed {
    pub(super) applied: u64,
    pub(super) duplicates: u64,
    pub(super) next: i64,
}

/// Why a transaction was rolled back.
pub(super) enum Rollback {
    /// Try the same records again later.
    Transient(String),
    /// The handler gave up on the record at this index of the slice.
    Permanent { index: usize, reason: String },
    /// The record at this index of the slice waits for a fact that has not arrived.
    Waiting { index: usize, reason: String },
}

impl Rollback {
    /// The rollback a handler's `error` on the record at `index` calls for.
    pub(super) fn of(error: HandlerError, index: usize) -> Self {
        let reason = error.to_string();
        match error {
            HandlerError::Transient(_) => Rollback::Transient(reason),
            HandlerError::Permanent(_) => Rollback::Permanent { index, reason },
            HandlerError::Waiting(_) => Rollback::Waiting { index, reason },
        }
    }
}

pub(super) fn transient(error: sqlx::Error) -> Rollback {
    Rollback::Transient(format!("database: {error}"))
}

/// Applies one partition's records; lives until told to stop or its queue closes.
pub(super) struct Worker<H> {
    pub(super) env: Arc<Env<H>>,
    pub(super) tp: Tp,
    receiver: mpsc::UnboundedReceiver<Record>,
    pub(super) stop: CancellationToken,
    flow: Arc<Flow>,
    /// Records below this offset are known to be applied.
    pub(super) next: Option<i64>,
    /// How often the handler has been called per offset, for [`Incoming::attempt`].
    pub(super) attempts: HashMap<i64, u32>,
    /// The offset whose handler failed permanently, and how many times.
    permanent: Option<(i64, u32)>,
    /// When the partition's next parked event is due, if it has any.
    pub(super) parked_due: Option<tokio::time::Instant>,
    /// Whether the next round of parked events tries every head, due or not (the consumer
    /// applied something, which may be the fact they wait for).
    pub(super) nudged: bool,
    /// When the last round of parked events started.
    pub(super) last_round: Option<tokio::time::Instant>,
    /// A batch met parked events this worker had not scheduled (parked by another owner of
    /// the partition): their schedule is read once it commits.
    pub(super) parked_unscheduled: bool,
    /// When the worker last wrote its heartbeat.
    last_beat: std::sync::Mutex<Option<Instant>>,
}

impl<H: Handler> Worker<H> {
    pub(super) fn new(
        env: Arc<Env<H>>,
        tp: Tp,
        receiver: mpsc::UnboundedReceiver<Record>,
        stop: CancellationToken,
        flow: Arc<Flow>,
    ) -> Self {
        let next = env.shared.position(&tp);
        Self {
            env,
            tp,
            receiver,
            stop,
            flow,
            next,
            attempts: HashMap::new(),
            permanent: None,
            parked_due: None,
            nudged: false,
            last_round: None,
            parked_unscheduled: false,
            last_beat: std::sync::Mutex::new(None),
        }
    }

    pub(super) async fn run(mut self) {
        // Another member may have moved the partition on since this process last owned it:
        // what it applied is skipped without being decoded. (Correctness does not depend on
        // this: each transaction reads the stored offset again.)
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        if let Ok(Some(next)) = store::stored_offset(
            &self.env.db.pool,
            &self.env.config.group_id,
            topic,
            partition,
        )
        .await
        {
            self.next = Some(self.next.map_or(next, |n| n.max(next)));
            self.env.shared.advance(&self.tp, next);
        }
        if let Some(next) = self.next
            && let Some((_, end)) = self.watermarks().await
            && next > end
        {
            let group = &self.env.config.group_id;
            self.env.shared.fail(format!(
                "group {group} has stored position {next} in {topic} partition {partition}, \
                 beyond the partition's end ({end}): the topic was wiped or recreated, and going \
                 on would skip every event written there until it reaches {next}. Rebuild what \
                 this group feeds from the topic as it is now (`eventmart projection rebuild` or \
                 `eventmart service rebuild`), or, if the records are to be read again, delete \
                 the group's rows for that partition from its database's consumer_offsets table"
            ));
            return;
        }
        if self.flow.placing {
            self.place().await;
        }
        self.refresh_parked_due().await;
        let shared = self.env.shared.clone();
        loop {
            let due = self.parked_due;
            let first = tokio::select! {
                biased;
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    if self.retry_parked().await.is_err() {
                        break;
                    }
                    continue;
                }
                () = shared.progress.notified(), if due.is_some() => {
                    self.nudge();
                    continue;
                }
                record = self.receiver.recv() => match record {
                    Some(record) => record,
                    None => break,
                },
            };
            let batch = self.fill(first).await;
            if self.process(batch).await.is_err() {
                tracing::info!(topic = %self.tp.0, partition = self.tp.1, "in-flight batch abandoned");
                break;
            }
        }
    }

    /// Writes the partition's heartbeat, at most every third of the session timeout; a
    /// database that does not answer within a second is left alone (the watchdog cannot read
    /// it either).
    pub(super) async fn beat(&self) {
        let every = self.env.config.session_timeout / 3;
        {
            let mut last = lock(&self.last_beat);
            if last.is_some_and(|at| at.elapsed() < every) {
                return;
            }
            *last = Some(Instant::now());
        }
        let env = &self.env;
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let beat = store::beat(&env.db.pool, &env.config.group_id, topic, partition);
        if let Ok(Err(error)) = tokio::time::timeout(std::time::Duration::from_secs(1), beat).await
        {
            tracing::debug!(topic, partition, %error, "heartbeat not written");
        }
    }

    /// Seeks the partition, assigned paused, to the position the group has stored (read at
    /// start) and lets it fetch: what another member applied since this process last owned
    /// the partition is not read again.
    async fn place(&self) {
        // A partition the group has never written starts at its first record, named by its
        // offset: resuming at a logical position ("the beginning") would make the client look
        // it up, which it does only after a back-off.
        let start = match self.next {
            Some(next) => Some(next),
            None => self.watermarks().await.map(|(low, _)| low),
        };
        if let Some(next) = start {
            let consumer = self.env.consumer.clone();
            let (topic, partition) = self.tp.clone();
            let sought = tokio::task::spawn_blocking(move || {
                consumer.seek(
                    &topic,
                    partition,
                    Offset::Offset(next),
                    std::time::Duration::from_secs(10),
                )
            })
            .await;
            if let Ok(Err(error)) = sought {
                // Revoked meanwhile, or the client is closing: the next owner places it.
                tracing::debug!(topic = %self.tp.0, partition = self.tp.1, %error, "seeking to the stored position failed");
            }
        }
        let mut paused = lock(&self.flow.paused);
        if *paused {
            *paused = false;
            let _ = self.env.consumer.resume(&single(&self.tp, Offset::Invalid));
        }
    }

    /// The partition's start and end (low and high watermarks), if the broker says.
    async fn watermarks(&self) -> Option<(i64, i64)> {
        let consumer = self.env.consumer.clone();
        let (topic, partition) = self.tp.clone();
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_watermarks(&topic, partition, std::time::Duration::from_secs(10))
                .ok()
        })
        .await
        .ok()
        .flatten()
    }

    /// A batch starting with `first`: whatever else is queued, up to the maximum, waiting up
    /// to the linger time for more.
    async fn fill(&mut self, first: Record) -> Vec<Record> {
        let max = self.env.config.batch_max.max(1);
        let mut batch = vec![first];
        while batch.len() < max {
            match self.receiver.try_recv() {
                Ok(record) => batch.push(record),
                Err(_) => break,
            }
        }
        let linger = self.env.config.linger;
        if !linger.is_zero() {
            let until = tokio::time::Instant::now() + linger;
            while batch.len() < max {
                match tokio::time::timeout_at(until, self.receiver.recv()).await {
                    Ok(Some(record)) => batch.push(record),
                    _ => break,
                }
            }
        }
        let left = self.flow.queued.fetch_sub(batch.len(), Ordering::AcqRel) - batch.len();
        if left <= self.env.config.read_ahead().1 {
            let mut paused = lock(&self.flow.paused);
            if *paused {
                *paused = false;
                let _ = self.env.consumer.resume(&single(&self.tp, Offset::Invalid));
            }
        }
        batch
    }

    async fn process(&mut self, batch: Vec<Record>) -> Result<(), Abandoned> {
        let mut items = Vec::with_capacity(batch.len());
        let env = self.env.clone();
        let passed_over = env.passed_over.get(&self.tp.0);
        let mut reread = 0;
        for record in batch {
            if self.next.is_some_and(|next| record.offset < next) {
                reread += 1;
                continue;
            }
            let passed_over =
                passed_over.is_some_and(|at| at.contains(&(self.tp.1, record.offset)));
            let decoded = self.decode(&record).await?;
            items.push(Item {
                record,
                decoded,
                passed_over,
            });
        }
        if reread > 0 {
            env.metrics.reread(&self.tp.0, reread);
        }
        // In offset order: what comes before a record passed over or dead-lettered is
        // settled before it.
        let mut rest = &items[..];
        while let Some(first) = rest.first() {
            if first.passed_over {
                self.pass_over(first).await?;
                rest = &rest[1..];
            } else if let Err(error) = &first.decoded {
                let reason = error.to_string();
                self.dead_letter(first, error.kind(), &reason).await?;
                rest = &rest[1..];
            } else {
                let run = rest
                    .iter()
                    .take_while(|i| i.decoded.is_ok() && !i.passed_over)
                    .count();
                let done = self.apply(&rest[..run]).await?;
                rest = &rest[done..];
            }
        }
        Ok(())
    }

    /// Decodes `record`, waiting out a registry outage.
    pub(super) async fn decode(
        &self,
        record: &Record,
    ) -> Result<Result<Decoded, DecodeError>, Abandoned> {
        let mut failures = 0;
        loop {
            match self
                .env
                .codec
                .decode(&record.raw(&self.tp.0, self.tp.1))
                .await
            {
                Err(error) if error.is_transient() => {
                    failures += 1;
                    tracing::warn!(topic = %self.tp.0, partition = self.tp.1, offset = record.offset,
                        %error, failures, "cannot decode yet; retrying");
                    self.pause(failures).await?;
                }
                decoded => return Ok(decoded),
            }
        }
    }

    /// Applies a run of decoded records, as many as possible in one transaction. Returns how
    /// many of them are settled (applied, skipped or dead-lettered): all of them, or those
    /// before one whose handler failed permanently, which is retried alone next time and
    /// dead-lettered once it has failed `max_handler_attempts` times.
    async fn apply(&mut self, run: &[Item]) -> Result<usize, Abandoned> {
        let isolated = self
            .permanent
            .is_some_and(|(offset, _)| offset == run[0].record.offset);
        let mut limit = if isolated { 1 } else { run.len() };
        let mut transient_failures = 0;
        loop {
            match self.transaction(&run[..limit]).await {
                Ok(committed) => {
                    self.committed(&committed);
                    if std::mem::take(&mut self.parked_unscheduled) {
                        self.refresh_parked_due().await;
                    }
                    // A record that failed before and has now been applied is forgiven.
                    self.permanent
                        .take_if(|(offset, _)| *offset < committed.next);
                    return Ok(limit);
                }
                Err(Rollback::Transient(reason)) => {
                    transient_failures += 1;
                    tracing::warn!(topic = %self.tp.0, partition = self.tp.1, records = limit,
                        %reason, failures = transient_failures, "batch rolled back; retrying");
                    self.pause(transient_failures).await?;
                }
                Err(Rollback::Waiting { index, reason }) => {
                    if index > 0 {
                        // Commit the records before it; it is parked afterwards.
                        limit = index;
                        continue;
                    }
                    self.park(&run[0], &reason).await?;
                    return Ok(1);
                }
                Err(Rollback::Permanent { index, reason }) => {
                    let offset = run[index].record.offset;
                    let failures = match self.permanent {
                        Some((failed, n)) if failed == offset => n + 1,
                        _ => 1,
                    };
                    self.permanent = Some((offset, failures));
                    if index > 0 {
                        // Commit the records before it; it is retried alone afterwards.
                        limit = index;
                        continue;
                    }
                    if failures >= self.env.config.max_handler_attempts {
                        self.dead_letter(&run[0], dlq::HANDLER_FAILED, &reason)
                            .await?;
                        self.permanent = None;
                        return Ok(1);
                    }
                    tracing::warn!(topic = %self.tp.0, partition = self.tp.1, offset, %reason,
                        failures, "handler failed; retrying the event alone");
                    limit = 1;
                    self.pause(failures).await?;
                }
            }
        }
    }

    /// One transaction over `items`: lock the partition's offset row, apply each record not
    /// applied before, store the next offset, commit.
    async fn transaction(&mut self, items: &[Item]) -> Result<Committed, Rollback> {
        let env = self.env.clone();
        let group = env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let mut tx = env.db.pool.begin().await.map_err(transient)?;
        let stored = store::lock_offset(&mut tx, group, topic, partition)
            .await
            .map_err(transient)?;
        let mut committed = Committed {
            applied: 0,
            duplicates: 0,
            next: stored,
        };
        // Events of a key that has parked events queue behind them.
        let (queued, unscheduled) = self.queue_behind_parked(&mut tx, items, stored).await?;
        self.parked_unscheduled |= unscheduled;
        // Which events are new, in one statement for the batch; an event repeated within the
        // batch counts once, at its first record.
        let mut seen = HashSet::with_capacity(items.len());
        let candidates: Vec<(Uuid, i64)> = items
            .iter()
            .filter(|item| item.record.offset >= stored && !queued.contains(&item.record.offset))
            .filter_map(|item| {
                let event_id = item.decoded.as_ref().ok()?.envelope.event_id;
                seen.insert(event_id)
                    .then_some((event_id, item.record.offset))
            })
            .collect();
        let mut new_events = store::claim(&mut tx, group, topic, partition, &candidates)
            .await
            .map_err(transient)?;
        // The new events, each with its index in `items`.
        let mut batch: Vec<(usize, Incoming<'_>)> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let record = &item.record;
            committed.next = committed.next.max(record.offset + 1);
            let Ok(decoded) = &item.decoded else { continue };
            if record.offset < stored || queued.contains(&record.offset) {
                // Another owner of the partition got here first, or it is parked.
                continue;
            }
            let event_id = decoded.envelope.event_id;
            if !new_events.remove(&event_id) {
                tracing::debug!(%event_id, topic, partition, offset = record.offset, "duplicate skipped");
                committed.duplicates += 1;
                continue;
            }
            let attempt = self.attempts.entry(record.offset).or_insert(0);
            *attempt += 1;
            let incoming = Incoming {
                key: record.key.as_deref(),
                attempt: *attempt,
                ..Incoming::new(decoded, topic, partition, record.offset)
            };
            batch.push((index, incoming));
        }
        let events: Vec<Incoming<'_>> = batch.iter().map(|(_, incoming)| *incoming).collect();
        let span = match events.as_slice() {
            [one] => record_span(one),
            _ => tracing::info_span!("events", topic, partition, count = events.len()),
        };
        let started = Instant::now();
        let result = env
            .handler
            .handle_batch(&mut tx, &events)
            .instrument(span)
            .await;
        if !events.is_empty() {
            let each = started.elapsed().as_secs_f64() / events.len() as f64;
            for _ in &events {
                env.metrics.handled(topic, each);
            }
        }
        match result {
            Ok(()) => committed.applied += events.len() as u64,
            Err((failed, HandlerError::Transient(error))) => {
                let _ = tx.rollback().await;
                let event_id = events.get(failed).map(|e| e.envelope().event_id);
                return Err(Rollback::Transient(format!(
                    "handler, event {}: {error}",
                    event_id.map_or("?".to_owned(), |id| id.to_string())
                )));
            }
            Err((failed, error)) => {
                let _ = tx.rollback().await;
                let index = batch
                    .get(failed)
                    .or(batch.first())
                    .map_or(0, |(index, _)| *index);
                return Err(Rollback::of(error, index));
            }
        }
        store::advance_offset(&mut tx, group, topic, partition, committed.next)
            .await
            .map_err(transient)?;
        tx.commit().await.map_err(transient)?;
        Ok(committed)
    }

    /// After a commit: remember the position, count, and tell Kafka (for tools and lag; the
    /// database stays the truth).
    pub(super) fn committed(&mut self, committed: &Committed) {
        let env = &self.env;
        env.handler.committed();
        if committed.applied > 0 {
            // What was applied may be what a parked event waits for.
            env.shared.progress.notify_waiters();
        }
        let topic = self.tp.0.as_str();
        self.next = Some(self.next.map_or(committed.next, |n| n.max(committed.next)));
        self.attempts.retain(|&offset, _| offset >= committed.next);
        env.shared.advance(&self.tp, committed.next);
        env.metrics.consumed(topic, committed.applied);
        for _ in 0..committed.duplicates {
            env.metrics.duplicate(topic);
        }
        // The client commits stored offsets in the background every `kafka_commit_interval`
        // (and when it gives partitions up): a commit per transaction would flood the group
        // coordinator. Storing fails for a partition no longer assigned; that is harmless.
        let offsets = single(&self.tp, Offset::Offset(committed.next));
        if let Err(error) = env.consumer.store_offsets(&offsets) {
            tracing::debug!(topic, partition = self.tp.1, %error, "Kafka offset not stored");
        }
    }

    /// Waits before retry number `failures`, unless told to stop. A worker that waits says
    /// it is alive (see [`super::watchdog`]), so that the group's other members do not take
    /// its standstill for an orphaned partition.
    pub(super) async fn pause(&self, failures: u32) -> Result<(), Abandoned> {
        let until = tokio::time::Instant::now() + self.env.config.backoff(failures);
        // A backoff may outlast the watchdog's patience: the heartbeat goes on through it.
        let every = self.env.config.session_timeout / 3;
        loop {
            self.beat().await;
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep_until(until.min(now + every)) => {}
                () = self.stop.cancelled() => return Err(Abandoned),
            }
        }
    }
}

/// The span handling one record runs in: the event's ids, and the trace it continues.
fn record_span(incoming: &Incoming<'_>) -> tracing::Span {
    let envelope = incoming.envelope();
    let span = tracing::info_span!(
        "event",
        event_id = %envelope.event_id,
        event_type = %envelope.event_type,
        correlation_id = %envelope.correlation_id,
        causation_id = tracing::field::Empty,
        topic = incoming.topic,
        partition = incoming.partition,
        offset = incoming.offset,
        attempt = incoming.attempt,
        trace_id = tracing::field::Empty,
        parent_span_id = tracing::field::Empty,
    );
    if let Some(causation_id) = envelope.causation_id {
        span.record("causation_id", tracing::field::display(causation_id));
    }
    if let Some(trace) = incoming.trace {
        span.record("trace_id", trace.trace_id());
        span.record("parent_span_id", trace.span_id());
    }
    span
}
