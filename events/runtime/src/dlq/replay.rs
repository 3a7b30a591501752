//! Reading dead letters back, and replaying them onto their original topic.

use std::collections::BTreeMap;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use uuid::Uuid;

use super::{BROKER_TIMEOUT, DeadLetter, idempotent_producer, owned_headers};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only those of this failure kind.
    pub kind: Option<String>,
    /// Only those at or after this offset (in every partition of the dead-letter topic).
    pub from_offset: Option<i64>,
    /// Only this partition of the dead-letter topic.
    pub partition: Option<i32>,
}

impl Selection {
    fn matches(&self, letter: &DeadLetter) -> bool {
        self.kind
            .as_deref()
            .is_none_or(|kind| letter.error_kind == kind)
    }
}

/// Why dead letters could not be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The dead-letter topic does not exist; create the topics first.
    #[error("topic {0} does not exist (create the topics first)")]
    NoSuchTopic(String),
    /// The broker failed or did not answer; retry once it is reachable.
    #[error("{what}: {source}")]
    Kafka {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: KafkaError,
    },
    /// The broker did not deliver records it said it had; retry.
    #[error("no record arrived from {0} within {BROKER_TIMEOUT:?}")]
    Stalled(String),
}

fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> DlqError {
    let what = what.into();
    move |source| DlqError::Kafka { what, source }
}

/// Every selected dead letter of `dlq_topic` (a full name, e.g. `orders.dlq`), in partition
/// and offset order, up to where each partition ends now.
pub async fn list(
    kafka_config: &ClientConfig,
    dlq_topic: &str,
    selection: &Selection,
) -> Result<Vec<DeadLetter>, DlqError> {
    let mut letters = Vec::new();
    read(kafka_config, dlq_topic, selection, |letter| {
        letters.push(letter);
    })
    .await?;
    Ok(letters)
}

/// One dead letter put back on its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    /// The dead letter's partition and offset.
    pub from: (i32, i64),
    /// Its failure kind.
    pub kind: String,
    /// Where it was first read: topic, partition, offset.
    pub original: (String, i32, i64),
    /// Where it was written now: partition and offset in the original topic.
    pub to: (i32, i64),
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// The dead letters put back, in the order read.
    pub replayed: Vec<Replayed>,
    /// Dead letters left alone because they did not match the selection's kind.
    pub not_selected: usize,
    /// Dead letters that could not be replayed: they do not say where they came from.
    pub unreplayable: Vec<(i32, i64)>,
    /// Dead letters of a record already put back by this replay: each consumer group that
    /// failed on a record dead-letters it, and one copy back is enough for every group.
    pub copies: Vec<(i32, i64)>,
    /// Where each dead-letter partition ended when the replay started: it read up to there.
    pub ends: BTreeMap<i32, i64>,
}

/// Re-produces every selected dead letter of `dlq_topic` onto its original topic with its
/// original key, value and headers (without the `dlq.*` ones; see
/// [`DeadLetter::replay_headers`]), each acknowledged before the next is read. Reads up to
/// where each partition ended when the replay started.
pub async fn replay(
    kafka_config: &ClientConfig,
    dlq_topic: &str,
    selection: &Selection,
) -> Result<ReplayReport, DlqError> {
    let producer = idempotent_producer(kafka_config).map_err(kafka("creating a producer"))?;
    let mut letters = Vec::new();
    // Every kind is read, so that the report can say how many were left alone.
    let all_kinds = Selection {
        kind: None,
        ..selection.clone()
    };
    let ends = read(kafka_config, dlq_topic, &all_kinds, |letter| {
        letters.push(letter)
    })
    .await?;
    let mut report = ReplayReport {
        ends,
        ..ReplayReport::default()
    };
    let mut put_back = std::collections::HashSet::new();
    for letter in letters {
        if !selection.matches(&letter) {
            report.not_selected += 1;
            continue;
        }
        let Some(original) = letter.original.clone() else {
            report.unreplayable.push((letter.partition, letter.offset));
            continue;
        };
        if !put_back.insert(original.clone()) {
            report.copies.push((letter.partition, letter.offset));
            continue;
        }
        let headers = owned_headers(&letter.replay_headers());
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&original.0).headers(headers);
        if let Some(key) = letter.key.as_deref() {
            record = record.key(key);
        }
        if let Some(value) = letter.value.as_deref() {
            record = record.payload(value);
        }
        let delivered = producer
            .send(record, BROKER_TIMEOUT)
            .await
            .map_err(|(source, _)| DlqError::Kafka {
                what: format!("writing {} back to {}", letter.offset, original.0),
                source,
            })?;
        report.replayed.push(Replayed {
            from: (letter.partition, letter.offset),
            kind: letter.error_kind,
            original,
            to: (delivered.partition, delivered.offset),
        });
    }
    Ok(report)
}

/// Reads the selected partitions of `topic` from the selection's offset (or the beginning) up
/// to their end as of now, giving each matching dead letter to `each`. Returns the ends.
async fn read(
    kafka_config: &ClientConfig,
    topic: &str,
    selection: &Selection,
    mut each: impl FnMut(DeadLetter),
) -> Result<BTreeMap<i32, i64>, DlqError> {
    let consumer: StreamConsumer = kafka_config
        .clone()
        // Partitions are assigned, never subscribed: the group is neither joined nor committed.
        .set(
            "group.id",
            format!("eventmart-dlq-reader-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(kafka("creating a consumer"))?;
    let partitions = partitions_of(&consumer, topic)?;
    let mut ends = BTreeMap::new();
    let mut remaining = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        if selection.partition.is_some_and(|p| p != partition) {
            continue;
        }
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, BROKER_TIMEOUT)
            .map_err(kafka(format!("reading the end of {topic}/{partition}")))?;
        ends.insert(partition, high);
        let start = selection.from_offset.map_or(low, |from| from.max(low));
        if start < high {
            remaining.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(kafka("assigning partitions"))?;
        }
    }
    if remaining.is_empty() {
        return Ok(ends);
    }
    consumer
        .assign(&assignment)
        .map_err(kafka("assigning partitions"))?;
    while !remaining.is_empty() {
        let message = tokio::time::timeout(BROKER_TIMEOUT, consumer.recv())
            .await
            .map_err(|_| DlqError::Stalled(topic.to_owned()))?
            .map_err(kafka(format!("reading {topic}")))?;
        let partition = message.partition();
        let Some(&end) = remaining.get(&partition) else {
            continue;
        };
        if message.offset() >= end {
            remaining.remove(&partition);
            continue;
        }
        let letter = DeadLetter::from_message(&message);
        if selection.matches(&letter) {
            each(letter);
        }
        if message.offset() + 1 >= end {
            remaining.remove(&partition);
        }
    }
    Ok(ends)
}

fn partitions_of(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, DlqError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(kafka(format!("reading metadata of {topic}")))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(DlqError::NoSuchTopic(topic.to_owned()));
    }
    Ok(partitions)
}
