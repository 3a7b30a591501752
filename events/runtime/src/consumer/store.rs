//! The consumer's two tables (migration `9002_consumer.sql`): the next offset of each
//! partition and the events already taken care of, read and written inside the caller's
//! transaction. The same SQL runs on SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

/// Now, in epoch milliseconds, as every consumer table records time.
pub(super) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Every partition position `group` has stored: the offset of the next record to apply, by
/// (topic, partition).
pub async fn stored_offsets(
    pool: &AnyPool,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT topic, partition_id, next_offset FROM consumer_offsets WHERE consumer_group = $1",
    )
    .bind(group)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let partition: i64 = row.try_get("partition_id")?;
            Ok((
                (row.try_get("topic")?, partition as i32),
                row.try_get("next_offset")?,
            ))
        })
        .collect()
}

/// Makes `group` start each partition of `offsets` at the given offset, unless it has a
/// position there already: how a rebuild from a point in time starts later than the
/// beginning. Returns how many partitions were set.
pub async fn start_at(
    pool: &AnyPool,
    group: &str,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<u64, sqlx::Error> {
    let mut set = 0;
    for ((topic, partition), offset) in offsets {
        set += sqlx::query(
            "INSERT INTO consumer_offsets \
             (consumer_group, topic, partition_id, next_offset, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (consumer_group, topic, partition_id) DO NOTHING",
        )
        .bind(group)
        .bind(topic)
        .bind(i64::from(*partition))
        .bind(*offset)
        .bind(now_millis())
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(set)
}

/// Whether `group` has processed every one of `event_ids`: applied it, or dead-lettered it
/// and moved on (its effect is then missing until it is replayed from the dead-letter topic).
/// A read model answers a read that carries a command's position token once this holds for
/// the token's events. Repeated ids count once; no ids at all are processed trivially.
pub async fn processed(
    conn: &mut AnyConnection,
    group: &str,
    event_ids: &[Uuid],
) -> Result<bool, sqlx::Error> {
    /// Ids per statement: well under both engines' limits on bound parameters.
    const IDS: usize = 100;
    let wanted: Vec<String> = event_ids
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(Uuid::to_string)
        .collect();
    for chunk in wanted.chunks(IDS) {
        let placeholders: Vec<String> = (2..chunk.len() + 2).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM consumer_processed \
             WHERE consumer_group = $1 AND event_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(group);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        let found = query.fetch_one(&mut *conn).await?;
        if usize::try_from(found).ok() != Some(chunk.len()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The stored next offset of one partition, if any, read outside a transaction.
pub(crate) async fn stored_offset(
    pool: &AnyPool,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_offsets \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .fetch_optional(pool)
    .await
}

/// Reads a partition's next offset inside `tx`, creating its row at 0 if missing, and holds
/// the row until `tx` ends (on PostgreSQL a row lock; on SQLite the write lock). A second
/// owner of the partition (during a rebalance) waits here and then sees what the first
/// committed, so overlapping owners never apply a record twice.
pub(crate) async fn lock_offset(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO consumer_offsets (consumer_group, topic, partition_id, next_offset, updated_at) \
         VALUES ($1, $2, $3, 0, $4) \
         ON CONFLICT (consumer_group, topic, partition_id) \
         DO UPDATE SET next_offset = consumer_offsets.next_offset \
         RETURNING next_offset",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(now_millis())
    .fetch_one(tx)
    .await
}

/// Moves a partition's next offset forward to `next` (never back).
pub(crate) async fn advance_offset(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE consumer_offsets SET next_offset = $4, updated_at = $5 \
         WHERE consumer_group = $1 AND topic = $2 AND partition_id = $3 AND next_offset < $4",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(next)
    .bind(now_millis())
    .execute(tx)
    .await?;
    Ok(())
}

/// Where a record was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

/// Records each of `events` (distinct ids, each with the offset of its record in
/// `topic`/`partition`) as applied unless it already is, in as few statements as possible.
/// Returns the ids written: the others were applied before (or by a concurrent owner, once
/// that one committed), so their records are duplicates.
pub(crate) async fn claim(
    tx: &mut AnyConnection,
    group: &str,
    topic: &str,
    partition: i32,
    events: &[(Uuid, i64)],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    /// Rows per statement: well under both engines' limits on bound parameters.
    const ROWS: usize = 100;
    let mut claimed = HashSet::with_capacity(events.len());
    let now = now_millis();
    for chunk in events.chunks(ROWS) {
        let mut sql = String::from(
            "INSERT INTO consumer_processed \
             (consumer_group, event_id, outcome, topic, partition_id, record_offset, processed_at) \
             VALUES ",
        );
        for row in 0..chunk.len() {
            let p = row * 3;
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, 'applied', $2, $3, ${}, ${})",
                p + 4,
                p + 5,
                p + 6
            ));
        }
        sql.push_str(
            " ON CONFLICT (consumer_group, event_id) DO UPDATE SET \
             outcome = excluded.outcome, topic = excluded.topic, \
             partition_id = excluded.partition_id, record_offset = excluded.record_offset, \
             processed_at = excluded.processed_at \
             WHERE consumer_processed.outcome <> 'applied' \
             RETURNING event_id",
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
            .bind(group)
            .bind(topic)
            .bind(i64::from(partition));
        for (event_id, offset) in chunk {
            query = query.bind(event_id.to_string()).bind(*offset).bind(now);
        }
        for id in query.fetch_all(&mut *tx).await? {
            if let Ok(id) = Uuid::parse_str(&id) {
                claimed.insert(id);
            }
        }
    }
    Ok(claimed)
}

/// Records `event_id` as dead-lettered, unless it is applied already (then it stays so), so
/// that it is applied when it comes back from the dead-letter topic.
pub(crate) async fn mark_dead_lettered(
    tx: &mut AnyConnection,
    group: &str,
    event_id: Uuid,
    at: Position<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumer_processed \
         (consumer_group, event_id, outcome, topic, partition_id, record_offset, processed_at) \
         VALUES ($1, $2, 'dead_lettered', $3, $4, $5, $6) \
         ON CONFLICT (consumer_group, event_id) DO UPDATE SET \
         outcome = excluded.outcome, topic = excluded.topic, \
         partition_id = excluded.partition_id, record_offset = excluded.record_offset, \
         processed_at = excluded.processed_at \
         WHERE consumer_processed.outcome <> 'applied'",
    )
    .bind(group)
    .bind(event_id.to_string())
    .bind(at.topic)
    .bind(i64::from(at.partition))
    .bind(at.offset)
    .bind(now_millis())
    .execute(tx)
    .await?;
    Ok(())
}

/// Says that the owner of `topic`/`partition` is alive though its position stands still.
pub(crate) async fn beat(
    pool: &AnyPool,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumer_heartbeats (consumer_group, topic, partition_id, beat_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (consumer_group, topic, partition_id) DO UPDATE SET beat_at = excluded.beat_at",
    )
    .bind(group)
    .bind(topic)
    .bind(i64::from(partition))
    .bind(now_millis())
    .execute(pool)
    .await?;
    Ok(())
}

/// The partitions of `group` whose owner has said it is alive since `since` (epoch
/// milliseconds).
pub(crate) async fn alive_since(
    pool: &AnyPool,
    group: &str,
    since: i64,
) -> Result<BTreeSet<(String, i32)>, sqlx::Error> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT topic, partition_id FROM consumer_heartbeats \
         WHERE consumer_group = $1 AND beat_at >= $2",
    )
    .bind(group)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(topic, partition)| (topic, partition as i32))
        .collect())
}

/// Deletes the ids `group` applied or dead-lettered before `before` (epoch milliseconds), a
/// thousand at a time so that no statement holds locks for long; returns how many.
pub(crate) async fn forget_processed(
    pool: &AnyPool,
    group: &str,
    before: i64,
) -> Result<u64, sqlx::Error> {
    const CHUNK: u64 = 1000;
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM consumer_processed WHERE consumer_group = $1 AND event_id IN \
             (SELECT event_id FROM consumer_processed \
              WHERE consumer_group = $1 AND processed_at < $2 LIMIT 1000)",
        )
        .bind(group)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < CHUNK {
            return Ok(total);
        }
    }
}
