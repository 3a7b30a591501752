//! A partition's queue: the records the polling task has read and its worker has not yet
//! taken, with the worker's lifecycle and the flow control that pauses fetching a partition
//! whose worker falls behind.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use eventmart_events::{Codec, RawRecord};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::config::ConsumerConfig;
use super::context::{Context, Shared, Tp, lock};
use super::handler::Handler;
use super::worker::Worker;
use crate::db::Db;
use crate::dlq::{self, RecordHeaders};
use crate::metrics::Metrics;

/// A record taken off the consumer, owned so that it can wait in a worker's queue.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) offset: i64,
    pub(super) timestamp: Option<DateTime<Utc>>,
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    pub(super) headers: RecordHeaders,
}

impl Record {
    pub(super) fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Self {
            offset: message.offset(),
            timestamp: message
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers: dlq::record_headers(message),
        }
    }

    pub(super) fn raw<'a>(&'a self, topic: &'a str, partition: i32) -> RawRecord<'a> {
        RawRecord {
            topic,
            partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
        }
    }

    /// The `event_id` header, when a record that does not decode still names its event.
    pub(super) fn stated_event_id(&self) -> Option<Uuid> {
        self.headers
            .iter()
            .find(|(k, _)| k == eventmart_events::envelope::headers::EVENT_ID)
            .and_then(|(_, v)| std::str::from_utf8(v.as_deref()?).ok())
            .and_then(|text| Uuid::parse_str(text.trim()).ok())
    }
}

/// Everything the workers of one consumer share.
pub(super) struct Env<H> {
    pub(super) handler: H,
    pub(super) config: ConsumerConfig,
    pub(super) db: Db,
    pub(super) codec: Codec,
    pub(super) metrics: Metrics,
    pub(super) producer: FutureProducer,
    pub(super) consumer: Arc<StreamConsumer<Context>>,
    pub(super) shared: Arc<Shared>,
    pub(super) passed_over: super::PassedOver,
}

impl<H> std::fmt::Debug for Env<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The polling task's handle on one partition's worker.
#[derive(Debug)]
pub(super) struct WorkerHandle {
    sender: mpsc::UnboundedSender<Record>,
    pub(super) stop: CancellationToken,
    pub(super) join: JoinHandle<()>,
    flow: Arc<Flow>,
}

/// How full a worker's queue is, and whether its partition is paused because of it.
#[derive(Debug, Default)]
pub(super) struct Flow {
    pub(super) queued: AtomicUsize,
    /// Pausing and resuming happen under this lock, so that they never cross.
    pub(super) paused: Mutex<bool>,
    /// The partition was assigned paused, and the worker places it before it fetches.
    pub(super) placing: bool,
}

impl WorkerHandle {
    /// Starts the worker of `tp`; it stops when `stop` is cancelled. A partition `assigned`
    /// just now is paused (see the rebalance callback): the worker places it at the group's
    /// stored position before it fetches.
    pub(super) fn spawn<H: Handler>(
        env: Arc<Env<H>>,
        tp: Tp,
        stop: CancellationToken,
        assigned: bool,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let flow = Arc::new(Flow {
            placing: assigned,
            ..Flow::default()
        });
        *lock(&flow.paused) = assigned;
        let worker = Worker::new(env, tp, receiver, stop.clone(), flow.clone());
        let join = tokio::spawn(worker.run());
        Self {
            sender,
            stop,
            join,
            flow,
        }
    }

    /// Lets a partition assigned again to this worker fetch (unless its queue is full: the
    /// worker resumes it once it has caught up).
    pub(super) fn resume(&self, consumer: &StreamConsumer<Context>, tp: &Tp) {
        let paused = lock(&self.flow.paused);
        if !*paused {
            let _ = consumer.resume(&single(tp, Offset::Invalid));
        }
    }

    /// Queues `record`; when the queue grows past `high`, pauses fetching the partition
    /// until the worker has caught up. Gives the record back if the worker is gone.
    pub(super) fn push(
        &self,
        record: Record,
        high: usize,
        consumer: &StreamConsumer<Context>,
        tp: &Tp,
    ) -> Result<(), Record> {
        self.flow.queued.fetch_add(1, Ordering::AcqRel);
        if let Err(mpsc::error::SendError(record)) = self.sender.send(record) {
            self.flow.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(record);
        }
        if self.flow.queued.load(Ordering::Acquire) > high {
            let mut paused = lock(&self.flow.paused);
            if !*paused && consumer.pause(&single(tp, Offset::Invalid)).is_ok() {
                *paused = true;
            }
        }
        Ok(())
    }
}

pub(super) fn single(tp: &Tp, offset: Offset) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    // Adding to a fresh list only fails for an invalid offset, which none of ours is.
    let _ = tpl.add_partition_offset(&tp.0, tp.1, offset);
    tpl
}
