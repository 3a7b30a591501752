//! The view's two tables (migration `0001_order_view.sql`): `order_view`, one row per
//! order, and `order_timeline`, one row per event about an order. The projector writes them
//! inside the consumer's transaction; the API reads them. The same SQL runs on SQLite and
//! PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use eventmart_events::orders::OrderLine;
use eventmart_events::{Currency, Money};
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::db::{self, Engine};
use eventmart_runtime::query::QueryError;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::view::{OrderView, Placed, Status, TimelineEntry};

/// Why the tables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: a bug or a hand-edited database. Rebuild the view.
    #[error("order {order_id}: stored row does not decode: {reason}")]
    Corrupt {
        /// The order (as stored).
        order_id: String,
        /// What is wrong with the row.
        reason: String,
    },
}

impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => QueryError::from(error),
            StoreError::Corrupt { .. } => QueryError::Internal(error.to_string()),
        }
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => HandlerError::from(error),
            StoreError::Corrupt { .. } => HandlerError::permanent(error),
        }
    }
}

/// The columns of `order_view`, in the order [`decode_view`] reads them.
const VIEW_COLUMNS: &str = "order_id, user_id, status, reason, total_cents, currency, \
                            payment_id, lines, created_at, updated_at";

/// Adds each of `entries` to its order's timeline unless it is there already, up to 64 rows
/// a statement.
pub(crate) async fn add_all_to_timeline(
    tx: &mut AnyConnection,
    entries: &[&TimelineEntry],
) -> Result<(), StoreError> {
    for chunk in pieces(entries) {
        let sql = format!(
            "INSERT INTO order_timeline \
             (order_id, event_id, event_type, step, service, occurred_at) VALUES {} \
             ON CONFLICT (order_id, event_id) DO NOTHING",
            db::values_rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for entry in chunk {
            query = query
                .bind(entry.order_id.to_string())
                .bind(entry.event_id.to_string())
                .bind(entry.event_type.as_str())
                .bind(entry.step.as_str())
                .bind(entry.service.as_str())
                .bind(entry.occurred_at.timestamp_millis());
        }
        query.execute(&mut *tx).await?;
    }
    Ok(())
}

/// The views of `order_ids` that exist, in one statement whatever their number (the ids
/// travel as one value, so that the statement is prepared once and planned as an index
/// lookup per id). On PostgreSQL the rows stay locked until `tx` ends, so that a concurrent
/// change of the same orders waits for this one (on SQLite the transaction holds the only
/// connection, which serialises every writer anyway).
pub(crate) async fn load_all_for_update(
    tx: &mut AnyConnection,
    engine: Engine,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, OrderView>, StoreError> {
    let ids: Vec<String> = order_ids.iter().map(Uuid::to_string).collect();
    let (sql, ids) = match engine {
        Engine::Postgres => (
            format!(
                "SELECT {VIEW_COLUMNS} FROM order_view \
                 WHERE order_id = ANY(string_to_array($1, ',')) FOR UPDATE"
            ),
            ids.join(","),
        ),
        Engine::Sqlite => (
            format!(
                "SELECT {VIEW_COLUMNS} FROM order_view \
                 WHERE order_id IN (SELECT value FROM json_each($1))"
            ),
            serde_json::to_string(&ids).unwrap_or_default(),
        ),
    };
    let mut out = HashMap::with_capacity(order_ids.len());
    for row in sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?
    {
        let view = decode_view(&row)?;
        out.insert(view.order_id, view);
    }
    Ok(out)
}

/// Stores each of `views` as a new row, up to 64 a statement; returns how many were new
/// (fewer than `views` when another transaction inserted some since this one looked).
pub(crate) async fn insert_all(
    tx: &mut AnyConnection,
    views: &[&OrderView],
) -> Result<usize, StoreError> {
    let mut inserted = 0;
    for chunk in pieces(views) {
        let sql = format!(
            "INSERT INTO order_view ({VIEW_COLUMNS}) VALUES {} ON CONFLICT (order_id) DO NOTHING",
            db::values_rows(chunk.len(), 10)
        );
        inserted += bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)?
            .execute(&mut *tx)
            .await?
            .rows_affected() as usize;
    }
    Ok(inserted)
}

/// Overwrites the rows of `views` (which exist, locked by this transaction), up to 64 a
/// statement.
pub(crate) async fn update_all(
    tx: &mut AnyConnection,
    views: &[&OrderView],
) -> Result<(), StoreError> {
    for chunk in pieces(views) {
        let sql = format!(
            "INSERT INTO order_view ({VIEW_COLUMNS}) VALUES {} ON CONFLICT (order_id) DO UPDATE \
             SET user_id = excluded.user_id, status = excluded.status, \
             reason = excluded.reason, total_cents = excluded.total_cents, \
             currency = excluded.currency, payment_id = excluded.payment_id, \
             lines = excluded.lines, created_at = excluded.created_at, \
             updated_at = excluded.updated_at",
            db::values_rows(chunk.len(), 10)
        );
        bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)?
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// `items` in pieces of 64 rows, the rest in powers of two: a handful of statement texts,
/// each prepared once per connection, whatever the batch's size.
fn pieces<T>(items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = if rest.len() >= 64 {
            64
        } else {
            1 << rest.len().ilog2()
        };
        let (piece, tail) = rest.split_at(size);
        out.push(piece);
        rest = tail;
    }
    out
}

/// Binds every view's columns in [`VIEW_COLUMNS`] order.
fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    views: &[&OrderView],
) -> Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>, StoreError> {
    for view in views {
        query = Columns::of(view)?.bind(query);
    }
    Ok(query)
}

/// Order `order_id`'s view, if it has one.
pub(crate) async fn load(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<Option<OrderView>, StoreError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM order_view WHERE order_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(order_id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(decode_view).transpose()
}

/// Order `order_id`'s timeline, by `occurred_at` then event id.
pub(crate) async fn timeline(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT order_id, event_id, event_type, step, service, occurred_at FROM order_timeline \
         WHERE order_id = $1 ORDER BY occurred_at, event_id",
    )
    .bind(order_id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_entry).collect()
}

/// Where a page of a customer's orders starts: after the order placed at `created_at` with
/// id `order_id`, in the listing's order (newest first, then by id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct After {
    /// The previous page's last order's creation time, epoch milliseconds.
    pub(crate) created_at: i64,
    /// The previous page's last order.
    pub(crate) order_id: Uuid,
}

/// Up to `limit` orders of customer `user_id`, newest first (ties by order id), only those
/// with `status` if given, starting after `after`.
pub(crate) async fn page(
    conn: &mut AnyConnection,
    user_id: Uuid,
    status: Option<Status>,
    after: Option<After>,
    limit: u32,
) -> Result<Vec<OrderView>, StoreError> {
    let mut sql = format!("SELECT {VIEW_COLUMNS} FROM order_view WHERE user_id = $1");
    let mut next = 2;
    if status.is_some() {
        sql.push_str(&format!(" AND status = ${next}"));
        next += 1;
    }
    if after.is_some() {
        let (at, id) = (next, next + 1);
        sql.push_str(&format!(
            " AND (created_at < ${at} OR (created_at = ${at} AND order_id > ${id}))"
        ));
        next += 2;
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, order_id LIMIT ${next}"
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user_id.to_string());
    if let Some(status) = status {
        query = query.bind(status.as_str());
    }
    if let Some(after) = after {
        query = query
            .bind(after.created_at)
            .bind(after.order_id.to_string());
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    rows.iter().map(decode_view).collect()
}

/// A view as the columns of its row.
struct Columns {
    order_id: String,
    user_id: Option<String>,
    status: &'static str,
    reason: Option<String>,
    total_cents: Option<i64>,
    currency: Option<String>,
    payment_id: Option<String>,
    lines: Option<String>,
    created_at: Option<i64>,
    updated_at: i64,
}

impl Columns {
    fn of(view: &OrderView) -> Result<Self, StoreError> {
        let placed = view.placed.as_ref();
        let lines = placed
            .map(|p| serde_json::to_string(&p.lines))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                order_id: view.order_id.to_string(),
                reason: format!("lines do not encode: {e}"),
            })?;
        Ok(Self {
            order_id: view.order_id.to_string(),
            user_id: placed.map(|p| p.user_id.to_string()),
            status: view.status.as_str(),
            reason: view.reason.clone(),
            total_cents: placed.map(|p| p.total.cents),
            currency: placed.map(|p| p.total.currency.as_str().to_owned()),
            payment_id: view.payment_id.map(|id| id.to_string()),
            lines,
            created_at: placed.map(|p| p.created_at.timestamp_millis()),
            updated_at: view.updated_at.timestamp_millis(),
        })
    }

    /// Binds `$1`…`$10` in [`VIEW_COLUMNS`] order.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(self.order_id)
            .bind(self.user_id)
            .bind(self.status)
            .bind(self.reason)
            .bind(self.total_cents)
            .bind(self.currency)
            .bind(self.payment_id)
            .bind(self.lines)
            .bind(self.created_at)
            .bind(self.updated_at)
    }
}

/// A row of `order_view` read back.
fn decode_view(row: &AnyRow) -> Result<OrderView, StoreError> {
    let order_id: String = row.try_get("order_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        order_id: order_id.clone(),
        reason,
    };
    let status: String = row.try_get("status")?;
    let user_id: Option<String> = row.try_get("user_id")?;
    let placed = match user_id {
        None => None,
        Some(user_id) => {
            let total_cents: Option<i64> = row.try_get("total_cents")?;
            let currency: Option<String> = row.try_get("currency")?;
            let lines: Option<String> = row.try_get("lines")?;
            let created_at: Option<i64> = row.try_get("created_at")?;
            let (Some(cents), Some(currency), Some(lines), Some(created_at)) =
                (total_cents, currency, lines, created_at)
            else {
                return Err(corrupt("creation fields are only partly set".into()));
            };
            let currency = Currency::parse(&currency).map_err(|e| corrupt(e.to_string()))?;
            let lines: Vec<OrderLine> =
                serde_json::from_str(&lines).map_err(|e| corrupt(format!("lines: {e}")))?;
            Some(Placed {
                user_id: parse_uuid(&user_id).map_err(corrupt)?,
                total: Money::new(cents, currency),
                lines,
                created_at: millis(created_at).map_err(corrupt)?,
            })
        }
    };
    let reason: Option<String> = row.try_get("reason")?;
    let payment_id: Option<String> = row.try_get("payment_id")?;
    let updated_at: i64 = row.try_get("updated_at")?;
    Ok(OrderView {
        order_id: parse_uuid(&order_id).map_err(corrupt)?,
        status: Status::parse(&status).map_err(|e| corrupt(e.to_string()))?,
        reason,
        payment_id: payment_id
            .as_deref()
            .map(parse_uuid)
            .transpose()
            .map_err(corrupt)?,
        placed,
        updated_at: millis(updated_at).map_err(corrupt)?,
    })
}

/// A row of `order_timeline` read back.
fn decode_entry(row: &AnyRow) -> Result<TimelineEntry, StoreError> {
    let order_id: String = row.try_get("order_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        order_id: order_id.clone(),
        reason,
    };
    let event_id: String = row.try_get("event_id")?;
    let occurred_at: i64 = row.try_get("occurred_at")?;
    Ok(TimelineEntry {
        order_id: parse_uuid(&order_id).map_err(corrupt)?,
        event_id: parse_uuid(&event_id).map_err(corrupt)?,
        event_type: row.try_get("event_type")?,
        step: row.try_get("step")?,
        service: row.try_get("service")?,
        occurred_at: millis(occurred_at).map_err(corrupt)?,
    })
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|e| format!("{text:?} is not a UUID: {e}"))
}

fn millis(value: i64) -> Result<DateTime<Utc>, String> {
    eventmart_events::timestamp::from_millis(value)
        .ok_or_else(|| format!("{value} is not a timestamp"))
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn a_batch_is_written_in_pieces_of_64_then_powers_of_two_each_row_once() {
        let rows: Vec<usize> = (0..203).collect();
        let sizes: Vec<usize> = pieces(&rows).iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [64, 64, 64, 8, 2, 1]);
        assert_eq!(pieces(&rows).concat(), rows);
        assert!(pieces::<usize>(&[]).is_empty());
    }
}
