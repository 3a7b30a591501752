//! Appending to the journal inside the caller's transaction, with an optimistic version
//! check.
//!
//! The version is read first and checked against the expectation; the insert then claims
//! the next sequences with `ON CONFLICT (aggregate_id, sequence) DO NOTHING`. A writer that
//! got there first (between the read and the insert) leaves the insert with nothing to
//! write: that is reported as the same typed [`AppendError::Conflict`], and the transaction
//! stays usable for reading the version that won. On PostgreSQL the insert waits for a
//! concurrent writer of the same sequence to commit or roll back, so exactly one of two
//! concurrent appenders wins.

use eventmart_events::codec::to_avro_value;
use eventmart_events::{Envelope, Event, Topics, to_json};
use sqlx::AnyConnection;
use sqlx::error::ErrorKind;

use super::{AppendError, Appended, ExpectedVersion, now_millis, read};

/// How often an append with [`ExpectedVersion::Any`] retries when a concurrent writer takes
/// the sequence it was about to use.
const ANY_VERSION_ATTEMPTS: usize = 8;

const INSERT_SQLITE: &str = "INSERT INTO event_journal \
     (event_id, aggregate_id, sequence, event_type, topic, event_json, occurred_at, recorded_at, \
      published_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (aggregate_id, sequence) DO NOTHING \
     RETURNING position";

const INSERT_POSTGRES: &str = "INSERT INTO event_journal \
     (event_id, aggregate_id, sequence, event_type, topic, event_json, occurred_at, recorded_at, \
      published_at) \
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) \
     ON CONFLICT (aggregate_id, sequence) DO NOTHING \
     RETURNING position";

/// One event, checked and rendered for its row.
#[derive(Debug)]
struct Row {
    event_id: uuid::Uuid,
    event_type: &'static str,
    topic: String,
    json: String,
    occurred_at: i64,
}

/// Whether appended events still have to be published (the normal case), or are already on
/// their topic: a rebuilt state takes its service's own events back from the topic, and the
/// relay must not publish them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Publish {
    /// The relay publishes them.
    Pending,
    /// They are on the topic already.
    Already,
}

pub(super) async fn append(
    tx: &mut AnyConnection,
    topics: &Topics,
    aggregate_id: &str,
    expected: ExpectedVersion,
    events: Vec<(Event, Envelope)>,
    publish: Publish,
) -> Result<Appended, AppendError> {
    let rows = events
        .iter()
        .map(|(event, envelope)| row(topics, aggregate_id, event, envelope))
        .collect::<Result<Vec<_>, _>>()?;
    let insert = if tx.backend_name() == "PostgreSQL" {
        INSERT_POSTGRES
    } else {
        INSERT_SQLITE
    };
    let conflict = |actual| AppendError::Conflict {
        aggregate_id: aggregate_id.to_owned(),
        expected,
        actual,
    };

    let mut attempts = 0;
    loop {
        attempts += 1;
        let actual = read::version(tx, aggregate_id).await?;
        if !expected.admits(actual) {
            return Err(conflict(actual));
        }
        let recorded_at = now_millis();
        let published_at = (publish == Publish::Already).then_some(recorded_at);
        let mut positions = Vec::with_capacity(rows.len());
        for (sequence, row) in (actual + 1..).zip(&rows) {
            let position: Option<i64> = sqlx::query_scalar(insert)
                .bind(row.event_id.to_string())
                .bind(aggregate_id)
                .bind(to_i64(sequence))
                .bind(row.event_type)
                .bind(row.topic.as_str())
                .bind(row.json.as_str())
                .bind(row.occurred_at)
                .bind(recorded_at)
                .bind(published_at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
                        AppendError::DuplicateEvent {
                            event_id: row.event_id,
                        }
                    }
                    _ => AppendError::Database(e),
                })?;
            match position {
                Some(position) => positions.push(u64::try_from(position).unwrap_or_default()),
                // Another writer committed this sequence after our read. With `Any`, and
                // before anything of ours is written, try again after it; else it's a
                // conflict.
                None if expected == ExpectedVersion::Any
                    && positions.is_empty()
                    && attempts < ANY_VERSION_ATTEMPTS =>
                {
                    break;
                }
                None => return Err(conflict(read::version(tx, aggregate_id).await?)),
            }
        }
        if positions.len() == rows.len() {
            return Ok(Appended {
                aggregate_id: aggregate_id.to_owned(),
                version: actual + rows.len() as u64,
                event_ids: rows.iter().map(|r| r.event_id).collect(),
                positions,
            });
        }
    }
}

/// Checks that `event` and its `envelope` belong to `aggregate_id` and that the relay will
/// be able to encode it, and renders its row.
fn row(
    topics: &Topics,
    aggregate_id: &str,
    event: &Event,
    envelope: &Envelope,
) -> Result<Row, AppendError> {
    let invalid = |reason: String| AppendError::Invalid {
        aggregate_id: aggregate_id.to_owned(),
        reason,
    };
    let event_aggregate = event.aggregate_id();
    if event_aggregate != aggregate_id {
        return Err(invalid(format!(
            "event {} ({}) belongs to aggregate {event_aggregate}",
            envelope.event_id,
            event.event_type()
        )));
    }
    if envelope.aggregate_id != aggregate_id || envelope.event_type != event.event_type() {
        return Err(invalid(format!(
            "the envelope of event {} says {} of aggregate {}, but the event is {} of {}",
            envelope.event_id,
            envelope.event_type,
            envelope.aggregate_id,
            event.event_type(),
            event_aggregate
        )));
    }
    // The relay must never meet an event it cannot encode: check the schema now, while the
    // caller can still be told.
    to_avro_value(event).map_err(|e| {
        invalid(format!(
            "event {} does not fit its schema: {e}",
            envelope.event_id
        ))
    })?;
    Ok(Row {
        event_id: envelope.event_id,
        event_type: event.event_type(),
        topic: topics.name(event.topic()),
        json: to_json(event, envelope).to_string(),
        occurred_at: envelope.occurred_at.timestamp_millis(),
    })
}

/// Sequences and positions are stored as BIGINT; no stream gets near 2^63 events.
pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
