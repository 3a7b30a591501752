//! Dead-lettering a poison record: copy it to `<topic>.dlq` with the reason, wait for the
//! broker's acknowledgement, and only then record its offset (and event id, if known) as
//! processed, so that a record is never skipped without a trace.

use std::time::Duration;

use chrono::Utc;
use eventmart_events::topics;
use rdkafka::producer::FutureRecord;
use uuid::Uuid;

use super::handler::Handler;
use super::partition::Record;
use super::store::{self, Position};
use super::worker::{Abandoned, Committed, Item, Worker};
use crate::dlq;

/// How long the broker may take to acknowledge a dead letter before it is tried again.
const DLQ_TIMEOUT: Duration = Duration::from_secs(30);

impl<H: Handler> Worker<H> {
    /// Sends `item`'s record to the dead-letter topic (waiting for the broker's
    /// acknowledgement), then records its offset, and its event id if known, as processed.
    pub(super) async fn dead_letter(
        &mut self,
        item: &Item,
        kind: &str,
        reason: &str,
    ) -> Result<(), Abandoned> {
        let env = self.env.clone();
        let record = &item.record;
        let tp = self.tp.clone();
        let (topic, partition) = (tp.0.as_str(), tp.1);
        let event_id = match &item.decoded {
            Ok(decoded) => Some(decoded.envelope.event_id),
            Err(_) => record.stated_event_id(),
        };
        let mut failures = 0;
        // Another owner may have taken care of it already.
        loop {
            match store::stored_offset(&env.db.pool, &env.config.group_id, topic, partition).await {
                Ok(Some(next)) if next > record.offset => {
                    self.committed(&Committed {
                        applied: 0,
                        duplicates: 0,
                        next,
                    });
                    return Ok(());
                }
                Ok(_) => break,
                Err(error) => {
                    failures += 1;
                    tracing::warn!(topic, partition, %error, failures, "database unavailable; retrying");
                    self.pause(failures).await?;
                }
            }
        }
        self.send_to_dlq(record, kind, reason, &mut failures)
            .await?;
        loop {
            match self.settle_dead_letter(record.offset, event_id).await {
                Ok(committed) => {
                    self.committed(&committed);
                    env.metrics.dead_lettered(topic, kind);
                    tracing::warn!(topic, partition, offset = record.offset, event_id = ?event_id,
                        kind, reason, dlq_topic = %topics::dlq(topic), "record dead-lettered");
                    return Ok(());
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(topic, partition, %error, failures, "database unavailable; retrying");
                    self.pause(failures).await?;
                }
            }
        }
    }

    /// Settles `record` as dead-lettered without writing it to the dead-letter topic: it is
    /// there already, from the group this one rebuilds (see [`super::Consumer::pass_over`]).
    pub(super) async fn pass_over(&mut self, item: &Item) -> Result<(), Abandoned> {
        let record = &item.record;
        let event_id = match &item.decoded {
            Ok(decoded) => Some(decoded.envelope.event_id),
            Err(_) => record.stated_event_id(),
        };
        let mut failures = 0;
        loop {
            match self.settle_dead_letter(record.offset, event_id).await {
                Ok(committed) => {
                    self.committed(&committed);
                    return Ok(());
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(topic = %self.tp.0, partition = self.tp.1, %error, failures,
                        "database unavailable; retrying");
                    self.pause(failures).await?;
                }
            }
        }
    }

    /// Copies `record` of the worker's partition to its dead-letter topic with the reason,
    /// waiting for the broker's acknowledgement (retrying, counting in `failures`).
    pub(super) async fn send_to_dlq(
        &self,
        record: &Record,
        kind: &str,
        reason: &str,
        failures: &mut u32,
    ) -> Result<(), Abandoned> {
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let dlq_topic = topics::dlq(topic);
        let headers = dlq::dead_letter_headers(
            &record.headers,
            topic,
            partition,
            record.offset,
            &dlq::Reason {
                kind,
                message: reason,
                consumer_group: &self.env.config.group_id,
                failed_at: Utc::now(),
            },
        );
        loop {
            let mut out: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&dlq_topic).headers(dlq::owned_headers(&headers));
            if let Some(key) = record.key.as_deref() {
                out = out.key(key);
            }
            if let Some(value) = record.value.as_deref() {
                out = out.payload(value);
            }
            match self.env.producer.send(out, DLQ_TIMEOUT).await {
                Ok(_) => return Ok(()),
                Err((error, _)) => {
                    *failures += 1;
                    tracing::warn!(%dlq_topic, %error, failures = *failures, "dead letter not acknowledged; retrying");
                    self.pause(*failures).await?;
                }
            }
        }
    }

    async fn settle_dead_letter(
        &self,
        offset: i64,
        event_id: Option<Uuid>,
    ) -> Result<Committed, sqlx::Error> {
        let group = self.env.config.group_id.as_str();
        let (topic, partition) = (self.tp.0.as_str(), self.tp.1);
        let mut tx = self.env.db.pool.begin().await?;
        let stored = store::lock_offset(&mut tx, group, topic, partition).await?;
        if stored <= offset {
            if let Some(event_id) = event_id {
                let at = Position {
                    topic,
                    partition,
                    offset,
                };
                store::mark_dead_lettered(&mut tx, group, event_id, at).await?;
            }
            store::advance_offset(&mut tx, group, topic, partition, offset + 1).await?;
        }
        tx.commit().await?;
        Ok(Committed {
            applied: 0,
            duplicates: 0,
            next: stored.max(offset + 1),
        })
    }
}
