//! What a rebuilt state takes over from the live one at the swap, in one transaction of the
//! new database: what belongs to the service's running rather than to its facts.
//!
//! - Positions and processed events: the new version's own (group `<name>.vN`) for the
//!   topics it only folds facts from, renamed to the service's group; the live version's for
//!   the topics the service reacts to, so that it reacts to what it had not reacted to yet,
//!   and to nothing twice. (A fact the new version folded past the live position is seen
//!   again there: every fold a service shares with its reactions keeps the first of a fact.)
//!   Parked events go with their positions: the live version's where the service reacts.
//! - Idempotency keys: a retried command still gets its first answer.
//! - Timers: the live version's due times win; the new version's stand where the live one
//!   has none.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::db::{self, Db};

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
    for table in ["consumer_offsets", "consumer_processed", "consumer_parked"] {
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
        // What the live service parked there waits on behind the live positions.
        *carried.entry("consumer_parked").or_default() += copy(
            live,
            &mut tx,
            "consumer_parked",
            &[
                "consumer_group",
                "topic",
                "partition_id",
                "record_offset",
                "parked_key",
                "event_id",
                "event_type",
                "record_key",
                "record_value",
                "record_headers",
                "record_timestamp",
                "reason",
                "attempts",
                "parked_at",
                "give_up_at",
                "next_attempt_at",
            ],
            &[name, topic],
            "WHERE consumer_group = $1 AND topic = $2",
            "ON CONFLICT (consumer_group, topic, partition_id, record_offset) DO NOTHING",
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
        let insert = format!(
            "INSERT INTO {table} ({list}) VALUES {} {conflict}",
            db::values_rows(chunk.len(), columns.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Engine, Migrations};
    use crate::on_both_engines;
    use crate::testing::TestDatabase;

    async fn exec(db: &Db, sql: &str) -> anyhow::Result<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    async fn rows(db: &Db, sql: &str) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&db.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let values = (0..row.len())
                    .map(|i| {
                        Ok(match value(row, i)? {
                            Value::Int(v) => v.map_or("null".to_owned(), |v| v.to_string()),
                            Value::Text(v) => v.unwrap_or_else(|| "null".to_owned()),
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Ok(values.join(" "))
            })
            .collect()
    }

    on_both_engines!(the_swap_takes_the_live_positions_on_reacted_topics_and_its_keys_and_timers);
    async fn the_swap_takes_the_live_positions_on_reacted_topics_and_its_keys_and_timers(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let (a, b) = (
            TestDatabase::create(engine).await?,
            TestDatabase::create(engine).await?,
        );
        let live = db::connect_component(&a.url, Migrations::none()).await?;
        let next = db::connect_component(&b.url, Migrations::none()).await?;
        // The live service read its facts topic to 7 and the topic it reacts to to 5.
        exec(
            &live,
            "INSERT INTO consumer_offsets VALUES ('shop', 'facts', 0, 7, 1), ('shop', 'asks', 0, 5, 1);
             INSERT INTO consumer_processed VALUES
               ('shop', 'e1', 'applied', 'facts', 0, 6, 1),
               ('shop', 'e2', 'applied', 'asks', 0, 4, 1);
             INSERT INTO idempotency_keys VALUES ('k1', 'h1', 201, '{}', 1);
             INSERT INTO timers VALUES ('deadline', 'o1', 1000), ('deadline', 'o2', 2000);
             INSERT INTO consumer_parked VALUES ('shop', 'asks', 0, 3, 'o9', 'e9', 'ask.made',
               NULL, NULL, '[]', NULL, 'order o9 not known yet', 1, 1, 600001, 2);",
        )
        .await?;
        // The rebuild read both to 9 under its own group, and set timers of its own.
        exec(
            &next,
            "INSERT INTO consumer_offsets VALUES ('shop.v2', 'facts', 0, 9, 1), ('shop.v2', 'asks', 0, 9, 1);
             INSERT INTO consumer_processed VALUES
               ('shop.v2', 'e1', 'applied', 'facts', 0, 6, 1),
               ('shop.v2', 'e3', 'applied', 'facts', 0, 8, 1),
               ('shop.v2', 'e4', 'applied', 'asks', 0, 8, 1);
             INSERT INTO timers VALUES ('deadline', 'o2', 5000), ('deadline', 'o3', 6000);",
        )
        .await?;

        let carried = carry_over(&live, &next, "shop", "shop.v2", &["asks".to_owned()]).await?;

        assert_eq!(
            rows(
                &next,
                "SELECT consumer_group, topic, next_offset FROM consumer_offsets ORDER BY topic"
            )
            .await?,
            ["shop asks 5", "shop facts 9"],
            "its own position on the facts, the live one where the service reacts"
        );
        assert_eq!(
            rows(
                &next,
                "SELECT consumer_group, event_id FROM consumer_processed ORDER BY event_id"
            )
            .await?,
            ["shop e1", "shop e2", "shop e3"],
            "e4 was folded as a fact but never reacted to: the service reacts to it next"
        );
        assert_eq!(
            rows(
                &next,
                "SELECT idempotency_key, status FROM idempotency_keys"
            )
            .await?,
            ["k1 201"]
        );
        assert_eq!(
            rows(&next, "SELECT id, due_at FROM timers ORDER BY id").await?,
            ["o1 1000", "o2 2000", "o3 6000"],
            "the live due times win"
        );
        assert_eq!(
            rows(
                &next,
                "SELECT consumer_group, topic, record_offset FROM consumer_parked"
            )
            .await?,
            ["shop asks 3"],
            "what the live service parked where it reacts still waits there"
        );
        assert_eq!(carried["consumer_parked"], 1);
        assert_eq!(carried["consumer_offsets"], 1);
        assert_eq!(carried["consumer_processed"], 1);
        assert_eq!(carried["timers"], 2);
        Ok(())
    }
}
