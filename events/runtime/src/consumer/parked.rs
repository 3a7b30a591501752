//! The parked events of a consumer group (migration `9006_parked.sql`): events set aside for
//! their key, read and written inside the caller's transaction. The same SQL runs on SQLite
//! and PostgreSQL.
//!
//! A key's queue is its rows in offset order; the first is its *head*, the only one the
//! handler is tried on. Rows are changed only by a transaction that holds the partition's
//! offset row (see [`super::store::lock_offset`]), so two owners of a partition during a
//! rebalance never both act on one queue.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::DateTime;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::partition::Record;
use crate::dlq::RecordHeaders;

/// The key a record queues under: its key as text, or `""` for a record without one.
pub(super) fn queue_key(key: Option<&[u8]>) -> String {
    key.map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default()
}

/// A parked event as stored.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) offset: i64,
    pub(super) key: String,
    pub(super) event_id: Uuid,
    pub(super) event_type: String,
    pub(super) record: Record,
    pub(super) attempts: u32,
    pub(super) give_up_at: i64,
}

/// What a new row says.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewParked<'a> {
    pub(super) record: &'a Record,
    pub(super) event_id: Uuid,
    pub(super) event_type: &'a str,
    pub(super) reason: &'a str,
    pub(super) attempts: u32,
    pub(super) now: i64,
    pub(super) give_up_at: i64,
    /// When the handler is tried on it next; `i64::MAX` for an event queued behind a head.
    pub(super) next_attempt_at: i64,
}

/// The keys of `topic`/`partition` that have a queue, with the offset of each one's head.
pub(super) async fn keys(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    sqlx::query_as(
        "SELECT parked_key, MIN(record_offset) FROM consumer_parked \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 GROUP BY parked_key",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .fetch_all(tx)
    .await
    .map(|rows| rows.into_iter().collect())
}

/// Adds `parked` at the end of its key's queue in `topic`/`partition` (a record parked twice,
/// by overlapping owners, stays once).
pub(super) async fn insert(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
    parked: &NewParked<'_>,
) -> Result<(), sqlx::Error> {
    let record = parked.record;
    let headers: Vec<(&str, Option<String>)> = record
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_deref().map(|v| BASE64.encode(v))))
        .collect();
    let headers = serde_json::to_string(&headers).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        "INSERT INTO consumer_parked (consumer_group, topic, partition_id, record_offset, \
         parked_key, event_id, event_type, record_key, record_value, record_headers, \
         record_timestamp, reason, attempts, parked_at, give_up_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (consumer_group, topic, partition_id, record_offset) DO NOTHING",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(record.offset)
    .bind(queue_key(record.key.as_deref()))
    .bind(parked.event_id.to_string())
    .bind(parked.event_type)
    .bind(record.key.as_deref().map(|k| BASE64.encode(k)))
    .bind(record.value.as_deref().map(|v| BASE64.encode(v)))
    .bind(headers)
    .bind(record.timestamp.map(|t| t.timestamp_millis()))
    .bind(parked.reason)
    .bind(i64::from(parked.attempts))
    .bind(parked.now)
    .bind(parked.give_up_at)
    .bind(parked.next_attempt_at)
    .execute(tx)
    .await?;
    Ok(())
}

const COLUMNS: &str = "record_offset, parked_key, event_id, event_type, record_key, \
    record_value, record_headers, record_timestamp, attempts, give_up_at";

/// The heads of `topic`/`partition` due at `now` (every head when `now` is `None`).
pub(super) async fn heads(
    pool: &AnyPool,
    group: &str,
    topic: &str,
    partition: i32,
    now: Option<i64>,
) -> Result<Vec<Parked>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM consumer_parked p \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 \
         AND next_attempt_at <= $4 \
         AND record_offset = (SELECT MIN(q.record_offset) FROM consumer_parked q \
             WHERE q.consumer_group = p.consumer_group AND q.topic = p.topic \
             AND q.partition_id = p.partition_id AND q.parked_key = p.parked_key) \
         ORDER BY record_offset"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(group)
        .bind(topic)
        .bind(i64::from(partition))
        .bind(now.unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(parked).collect()
}

/// The head of `key`'s queue in `topic`/`partition`, read inside `tx`.
pub(super) async fn head(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
    key: &str,
) -> Result<Option<Parked>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM consumer_parked \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 AND parked_key = $4 \
         ORDER BY record_offset LIMIT 1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(group)
        .bind(topic)
        .bind(i64::from(partition))
        .bind(key)
        .fetch_optional(tx)
        .await?;
    row.as_ref().map(parked).transpose()
}

/// When the next head of `topic`/`partition` is due (epoch milliseconds), if any is parked.
pub(super) async fn next_due(
    pool: &AnyPool,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM consumer_parked \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .fetch_one(pool)
    .await
}

/// Takes the event at `offset` out of `key`'s queue, and makes the next one of the key (now
/// its head) due at `now`, so that it is tried even if whoever removed this one stops first.
pub(super) async fn remove(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
    key: &str,
    offset: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM consumer_parked \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 AND record_offset = $4",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(offset)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE consumer_parked SET next_attempt_at = $5 \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 AND parked_key = $4 \
         AND next_attempt_at > $5 \
         AND record_offset = (SELECT MIN(q.record_offset) FROM consumer_parked q \
             WHERE q.consumer_group = $1 AND q.topic = $2 AND q.partition_id = $3 \
             AND q.parked_key = $4)",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(key)
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records a failed try of the head at `offset`: why, how many tries, and when the next is.
#[allow(clippy::too_many_arguments)]
pub(super) async fn tried(
    pool: &AnyPool,
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    reason: &str,
    attempts: u32,
    next_attempt_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE consumer_parked SET reason = $5, attempts = $6, next_attempt_at = $7 \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 AND record_offset = $4",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(offset)
    .bind(reason)
    .bind(i64::from(attempts))
    .bind(next_attempt_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What one group has parked in one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedSummary {
    /// The consumer group.
    pub group: String,
    /// The topic (full name).
    pub topic: String,
    /// Keys with parked events.
    pub keys: i64,
    /// Parked events, heads and those queued behind them.
    pub events: i64,
    /// When the longest-parked of them was parked (epoch milliseconds).
    pub oldest_parked_at: i64,
}

/// What every group in the database has parked, by group and topic.
pub async fn summary(pool: &AnyPool) -> Result<Vec<ParkedSummary>, sqlx::Error> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT consumer_group, topic, \
         COUNT(DISTINCT CAST(partition_id AS TEXT) || ':' || parked_key), COUNT(*), \
         MIN(parked_at) \
         FROM consumer_parked GROUP BY consumer_group, topic ORDER BY consumer_group, topic",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(group, topic, keys, events, oldest_parked_at)| ParkedSummary {
                group,
                topic,
                keys,
                events,
                oldest_parked_at,
            },
        )
        .collect())
}

fn decode_b64(text: Option<String>) -> Option<Vec<u8>> {
    text.and_then(|t| BASE64.decode(t).ok())
}

fn parked(row: &sqlx::any::AnyRow) -> Result<Parked, sqlx::Error> {
    let headers: String = row.try_get("record_headers")?;
    let headers: Vec<(String, Option<String>)> = serde_json::from_str(&headers).unwrap_or_default();
    let headers: RecordHeaders = headers
        .into_iter()
        .map(|(name, value)| (name, decode_b64(value)))
        .collect();
    let event_id: String = row.try_get("event_id")?;
    let attempts: i64 = row.try_get("attempts")?;
    let timestamp: Option<i64> = row.try_get("record_timestamp")?;
    let offset: i64 = row.try_get("record_offset")?;
    Ok(Parked {
        offset,
        key: row.try_get("parked_key")?,
        event_id: Uuid::parse_str(&event_id).unwrap_or_default(),
        event_type: row.try_get("event_type")?,
        record: Record {
            offset,
            timestamp: timestamp.and_then(DateTime::from_timestamp_millis),
            key: decode_b64(row.try_get("record_key")?),
            value: decode_b64(row.try_get("record_value")?),
            headers,
        },
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        give_up_at: row.try_get("give_up_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, Engine, Migrations};
    use crate::on_both_engines;
    use crate::testing::TestDatabase;

    fn record(offset: i64) -> Record {
        Record {
            offset,
            timestamp: None,
            key: Some(b"k1".to_vec()),
            value: Some(b"{}".to_vec()),
            headers: vec![("event_type".to_owned(), Some(b"x".to_vec()))],
        }
    }

    on_both_engines!(the_event_behind_a_removed_head_is_due_at_once);
    /// A queued event waits unscheduled behind its head; once the head goes, it is due, so
    /// that it is tried even if whoever removed the head stops before trying it.
    async fn the_event_behind_a_removed_head_is_due_at_once(engine: Engine) -> anyhow::Result<()> {
        let database = TestDatabase::create(engine).await?;
        let db = db::connect_component(&database.url, Migrations::none()).await?;
        let mut tx = db.pool.begin().await?;
        for (offset, due) in [(3, 5_000), (4, i64::MAX), (7, i64::MAX)] {
            let record = record(offset);
            let row = NewParked {
                record: &record,
                event_id: Uuid::now_v7(),
                event_type: "x",
                reason: "waits",
                attempts: 1,
                now: 1_000,
                give_up_at: 9_000,
                next_attempt_at: due,
            };
            insert(&mut tx, "g", "t", 0, &row).await?;
        }
        assert_eq!(keys(&mut tx, "g", "t", 0).await?.get("k1"), Some(&3));
        remove(&mut tx, "g", "t", 0, "k1", 3, 2_000).await?;
        tx.commit().await?;

        assert_eq!(next_due(&db.pool, "g", "t", 0).await?, Some(2_000));
        let heads = heads(&db.pool, "g", "t", 0, Some(2_000)).await?;
        assert_eq!(heads.iter().map(|h| h.offset).collect::<Vec<_>>(), [4]);
        let head = &heads[0];
        assert_eq!(head.record.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(head.record.value.as_deref(), Some(&b"{}"[..]));
        assert_eq!(head.record.headers, record(4).headers);
        Ok(())
    }
}
