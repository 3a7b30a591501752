//! Reading the journal back: an aggregate's events and version, and the outbox backlog.
//!
//! Stored events are decoded from their JSON column with the codec's JSON path, the same one
//! that reads what kcat users write, so the column stays the single, readable form.

use chrono::{DateTime, Utc};
use eventmart_events::codec::{RawRecord, decode_json};
use eventmart_events::{Envelope, Event};
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::append::to_i64;

/// One event as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its place in the journal's global append order.
    pub position: u64,
    /// The aggregate's version after this event (1 for its first).
    pub sequence: u64,
    /// The full name of the topic it goes to.
    pub topic: String,
    /// The event.
    pub event: Event,
    /// Its envelope, exactly as appended.
    pub envelope: Envelope,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    /// When the broker acknowledged it; `None` while the relay has yet to publish it.
    pub published_at: Option<DateTime<Utc>>,
}

/// Why the journal could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed; transient: retry later.
    #[error("journal database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored event does not decode any more (its JSON was edited by hand, or its type's
    /// schema changed incompatibly): an operator must look at this row.
    #[error("journal row at position {position} does not decode: {reason}")]
    Undecodable {
        /// The row.
        position: u64,
        /// What the codec said.
        reason: String,
    },
}

const LOAD_SQLITE: &str = "SELECT position, sequence, topic, event_json, recorded_at, published_at \
     FROM event_journal WHERE aggregate_id = $1 ORDER BY sequence";

const LOAD_POSTGRES: &str = "SELECT position, sequence, topic, event_json::text AS event_json, \
     recorded_at, published_at \
     FROM event_journal WHERE aggregate_id = $1 ORDER BY sequence";

pub(super) async fn load(
    conn: &mut AnyConnection,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, ReadError> {
    let sql = if conn.backend_name() == "PostgreSQL" {
        LOAD_POSTGRES
    } else {
        LOAD_SQLITE
    };
    let rows = sqlx::query(sql)
        .bind(aggregate_id)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            let position = to_u64(row.try_get("position")?);
            let topic: String = row.try_get("topic")?;
            let json: String = row.try_get("event_json")?;
            let (event, envelope) = decode(&topic, position, &json)?;
            Ok(StoredEvent {
                position,
                sequence: to_u64(row.try_get("sequence")?),
                topic,
                event,
                envelope,
                recorded_at: from_millis(row.try_get("recorded_at")?),
                published_at: row
                    .try_get::<Option<i64>, _>("published_at")?
                    .map(from_millis),
            })
        })
        .collect()
}

pub(super) async fn version(
    conn: &mut AnyConnection,
    aggregate_id: &str,
) -> Result<u64, sqlx::Error> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT MAX(sequence) FROM event_journal WHERE aggregate_id = $1")
            .bind(aggregate_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(version.map_or(0, to_u64))
}

/// Whether the journal holds the event `event_id`.
pub(super) async fn contains(
    conn: &mut AnyConnection,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT position FROM event_journal WHERE event_id = $1")
            .bind(event_id.to_string())
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

pub(super) async fn unpublished(pool: &AnyPool) -> Result<u64, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM event_journal WHERE published_at IS NULL")
            .fetch_one(pool)
            .await?;
    Ok(to_u64(n))
}

/// The event and envelope in a journal row's JSON.
pub(super) fn decode(
    topic: &str,
    position: u64,
    json: &str,
) -> Result<(Event, Envelope), ReadError> {
    let record = RawRecord::new(topic, 0, to_i64(position), Some(json.as_bytes()));
    let decoded = decode_json(&record).map_err(|e| ReadError::Undecodable {
        position,
        reason: e.to_string(),
    })?;
    Ok((decoded.event, decoded.envelope))
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

pub(super) fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}
