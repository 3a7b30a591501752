//! The model's tables (migration `0001_sales.sql`): `sales_orders`, what is known of each
//! order; `sales_daily`, what confirmed orders sold per product, day and currency; and
//! `sales_days`, how many orders were confirmed each day. The projector writes them inside
//! the consumer's transaction; the API reads them ([`figures`]). The same SQL runs on SQLite
//! and PostgreSQL.

pub(crate) mod figures;

use chrono::{DateTime, Utc};
use eventmart_events::orders::OrderLine;
use eventmart_events::{Currency, Money};
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::db::Engine;
use eventmart_runtime::query::QueryError;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::sale::{Decision, OrderSale, Placed, Sale};

/// Why the tables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: a bug or a hand-edited database. Rebuild the model.
    #[error("{row}: stored row does not decode: {reason}")]
    Corrupt {
        /// Which row (its table and key, as stored).
        row: String,
        /// What is wrong with it.
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

/// The columns of `sales_orders`, in the order [`Columns::bind`] binds them.
const ORDER_COLUMNS: &str =
    "order_id, lines, total_cents, currency, created_at, decision, decided_at, counted";

/// What is known of order `order_id`, if anything. On PostgreSQL the row stays locked until
/// `tx` ends, so that a concurrent change of the same order waits for this one (on SQLite the
/// transaction holds the only connection, which serialises every writer anyway).
pub(crate) async fn load_for_update(
    tx: &mut AnyConnection,
    engine: Engine,
    order_id: Uuid,
) -> Result<Option<OrderSale>, StoreError> {
    let lock = engine.for_update();
    let sql = format!("SELECT {ORDER_COLUMNS} FROM sales_orders WHERE order_id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(order_id.to_string())
        .fetch_optional(tx)
        .await?;
    row.as_ref().map(decode_order).transpose()
}

/// Stores `order` as a new row; `false` if the order has a row already (another transaction
/// inserted it since this one looked).
pub(crate) async fn insert(tx: &mut AnyConnection, order: &OrderSale) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO sales_orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (order_id) DO NOTHING"
    );
    let done = Columns::of(order)?
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .execute(tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Overwrites the order's row with `order`.
pub(crate) async fn update(tx: &mut AnyConnection, order: &OrderSale) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE sales_orders SET lines = $2, total_cents = $3, currency = $4, created_at = $5, \
         decision = $6, decided_at = $7, counted = $8 WHERE order_id = $1",
    );
    Columns::of(order)?.bind(query).execute(tx).await?;
    Ok(())
}

/// Adds `sale` to the figures: each item to its product's day, and one order to the day.
/// Rows are written in key order, so that two transactions adding to the same rows on
/// PostgreSQL wait for each other rather than deadlock.
pub(crate) async fn count(tx: &mut AnyConnection, sale: &Sale) -> Result<(), StoreError> {
    let day = sale.day.to_string();
    for item in &sale.items {
        sqlx::query(
            "INSERT INTO sales_daily (product_id, day, currency, units, revenue_cents, orders) \
             VALUES ($1, $2, $3, $4, $5, 1) \
             ON CONFLICT (product_id, day, currency) DO UPDATE SET \
             units = sales_daily.units + excluded.units, \
             revenue_cents = sales_daily.revenue_cents + excluded.revenue_cents, \
             orders = sales_daily.orders + 1",
        )
        .bind(item.product_id.to_string())
        .bind(day.as_str())
        .bind(item.currency.as_str())
        .bind(item.units)
        .bind(item.revenue_cents)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO sales_days (day, orders) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET orders = sales_days.orders + 1",
    )
    .bind(day.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An order as the columns of its row.
struct Columns {
    order_id: String,
    lines: Option<String>,
    total_cents: Option<i64>,
    currency: Option<String>,
    created_at: Option<i64>,
    decision: Option<&'static str>,
    decided_at: Option<i64>,
    counted: i64,
}

impl Columns {
    fn of(order: &OrderSale) -> Result<Self, StoreError> {
        let placed = order.placed.as_ref();
        let lines = placed
            .map(|p| serde_json::to_string(&p.lines))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                row: format!("sales_orders {}", order.order_id),
                reason: format!("lines do not encode: {e}"),
            })?;
        Ok(Self {
            order_id: order.order_id.to_string(),
            lines,
            total_cents: placed.map(|p| p.total.cents),
            currency: placed.map(|p| p.total.currency.as_str().to_owned()),
            created_at: placed.map(|p| p.created_at.timestamp_millis()),
            decision: order.decision.map(Decision::name),
            decided_at: order.decision.map(|d| d.at().timestamp_millis()),
            counted: i64::from(order.is_counted()),
        })
    }

    /// Binds `$1`…`$8` in [`ORDER_COLUMNS`] order.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(self.order_id)
            .bind(self.lines)
            .bind(self.total_cents)
            .bind(self.currency)
            .bind(self.created_at)
            .bind(self.decision)
            .bind(self.decided_at)
            .bind(self.counted)
    }
}

/// A row of `sales_orders` read back.
fn decode_order(row: &AnyRow) -> Result<OrderSale, StoreError> {
    let order_id: String = row.try_get("order_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        row: format!("sales_orders {order_id}"),
        reason,
    };
    let lines: Option<String> = row.try_get("lines")?;
    let total_cents: Option<i64> = row.try_get("total_cents")?;
    let currency: Option<String> = row.try_get("currency")?;
    let created_at: Option<i64> = row.try_get("created_at")?;
    let placed = match (lines, total_cents, currency, created_at) {
        (None, None, None, None) => None,
        (Some(lines), Some(cents), Some(currency), Some(created_at)) => {
            let lines: Vec<OrderLine> =
                serde_json::from_str(&lines).map_err(|e| corrupt(format!("lines: {e}")))?;
            let currency = Currency::parse(&currency).map_err(|e| corrupt(e.to_string()))?;
            Some(Placed {
                lines,
                total: Money::new(cents, currency),
                created_at: millis(created_at).map_err(corrupt)?,
            })
        }
        _ => return Err(corrupt("creation fields are only partly set".into())),
    };
    let decision: Option<String> = row.try_get("decision")?;
    let decided_at: Option<i64> = row.try_get("decided_at")?;
    let decision = match (decision.as_deref(), decided_at) {
        (None, None) => None,
        (Some("CONFIRMED"), Some(at)) => Some(Decision::Confirmed {
            at: millis(at).map_err(corrupt)?,
        }),
        (Some("CANCELLED"), Some(at)) => Some(Decision::Cancelled {
            at: millis(at).map_err(corrupt)?,
        }),
        (decision, at) => return Err(corrupt(format!("decision {decision:?} at {at:?}"))),
    };
    Ok(OrderSale {
        order_id: Uuid::parse_str(&order_id).map_err(|e| corrupt(e.to_string()))?,
        placed,
        decision,
    })
}

fn millis(value: i64) -> Result<DateTime<Utc>, String> {
    eventmart_events::timestamp::from_millis(value)
        .ok_or_else(|| format!("{value} is not a timestamp"))
}

#[cfg(test)]
mod tests;
