//! What a rebuilt state takes over from the live one at the swap, in one transaction of the
//! new database: what belongs to the service's running rather than to its facts.
//!
//! - Positions and processed events: the new version's own (group `<name>.vN`) for the
//!   topics it only folds facts from, renamed to the service's group; the live version's for
//!   the topics the service reacts to, so that it reacts to what it had not reacted to yet,
//!   and to nothing twice. (A fact the new version folded past the live position is seen
//!   again there: every fold a service shares with its reactions keeps the first of a fact.)
//! - Idempotency keys: a retried command still gets its first answer.
//! - Timers: the live version's due times win; the new version's stand where the live one
//!   has none.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::Db;

/// Rows per INSERT statement when copying between databases.
const CHUNK: usize = 500;

/// A column value copied between databases.
#[derive(Debug, Clone)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
}

/// Carries over into `next` what the service `name` needs from `live` (see the
/// [module docs](self)); `version_group` is the group that built `next`, `reacts_to` the full
/// names of the topics the service reacts to. Returns the rows carried, by table.
pub(super) async fn carry_over(
    live: &Db,
    next: &Db,
    name: &str,
    version_group: &str,
    reacts_to: &[String],
) -> anyhow::Result<BTreeMap<&'static str, u64>> {
    let mut carried = BTreeMap::new();
    let mut tx = next.pool.begin().await?;
    for table in ["consumer_offsets", "consumer_processed"] {
        // Whatever the service's group held here is stale.
        let sql = format!("DELETE FROM {table} WHERE consumer_group = $1");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Topics the service reacts to: the live positions, not the rebuild's.
        for topic in reacts_to {
            let sql = format!("DELETE FROM {table} WHERE consumer_group = $1 AND topic = $2");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(version_group)
                .bind(topic)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!("UPDATE {table} SET consumer_group = $1 WHERE consumer_group = $2");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(version_group)
            .execute(&mut *tx)
            .await?;
    }
    for topic in reacts_to {
        *carried.entry("consumer_offsets").or_default() += copy(
            live,
            &mut tx,
            "consumer_offsets",
            &[
                "consumer_group",
                "topic",
                "partition_id",
                "next_offset",
                "updated_at",
            ],
            &[name, topic],
            "WHERE consumer_group = $1 AND topic = $2",
            "ON CONFLICT (consumer_group, topic, partition_id) DO NOTHING",
        )
        .await?;
        *carried.entry("consumer_processed").or_default() += copy(
            live,
            &mut tx,
            "consumer_processed",
            &[
                "consumer_group",
                "event_id",
                "outcome",
                "topic",
                "partition_id",
                "record_offset",
                "processed_at",
            ],
            &[name, topic],
            "WHERE consumer_group = $1 AND topic = $2",
            "ON CONFLICT (consumer_group, event_id) DO NOTHING",
        )
        .await?;
    }
    carried.insert(
        "idempotency_keys",
        copy(
            live,
            &mut tx,
            "idempotency_keys",
            &[
                "idempotency_key",
                "request_hash",
                "status",
                "response",
                "created_at",
            ],
            &[],
            "",
            "ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .await?,
    );
    carried.insert(
        "timers",
        copy(
            live,
            &mut tx,
            "timers",
            &["kind", "id", "due_at"],
            &[],
            "",
            "ON CONFLICT (kind, id) DO UPDATE SET due_at = excluded.due_at",
        )
        .await?,
    );
    tx.commit().await?;
    Ok(carried)
}

/// Copies the rows of `table` in `from` selected by `filter` (with `binds`) into `to`,
/// `columns` only, each INSERT ending with `conflict`. Returns how many rows were read.
#[allow(clippy::too_many_arguments)]
async fn copy(
    from: &Db,
    to: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    binds: &[&str],
    filter: &str,
    conflict: &str,
) -> anyhow::Result<u64> {
    let list = columns.join(", ");
    let select = format!("SELECT {list} FROM {table} {filter}");
    let mut query = sqlx::query(sqlx::AssertSqlSafe(select));
    for bind in binds {
        query = query.bind(*bind);
    }
    let rows = query.fetch_all(&from.pool).await?;
    let values = rows
        .iter()
        .map(|row| (0..columns.len()).map(|i| value(row, i)).collect())
        .collect::<anyhow::Result<Vec<Vec<Value>>>>()?;
    for chunk in values.chunks(CHUNK) {
        let mut placeholders = Vec::with_capacity(chunk.len());
        let mut n = 0;
        for _ in chunk {
            let row: Vec<String> = columns
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            placeholders.push(format!("({})", row.join(", ")));
        }
        let insert = format!(
            "INSERT INTO {table} ({list}) VALUES {} {conflict}",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert));
        for value in chunk.iter().flatten() {
            query = match value {
                Value::Int(v) => query.bind(*v),
                Value::Text(v) => query.bind(v.clone()),
            };
        }
        query.execute(&mut *to).await?;
    }
    Ok(values.len() as u64)
}

/// Column `i` of `row`, whatever its type.
fn value(row: &AnyRow, i: usize) -> anyhow::Result<Value> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(Value::Int(v));
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
        return Ok(Value::Int(v.map(i64::from)));
    }
    Ok(Value::Text(row.try_get::<Option<String>, _>(i)?))
}
