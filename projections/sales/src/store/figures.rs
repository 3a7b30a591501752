//! Reading the figures back: a period's days, one product's days, the currencies sold in,
//! and the products ranked by units or revenue.
//!
//! Sums are cast to BIGINT: PostgreSQL sums BIGINTs into NUMERIC, which the drivers shared
//! by both engines do not read.

use std::collections::BTreeMap;

use eventmart_events::Currency;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::StoreError;
use crate::sale::Day;

/// Days from `from` to `to`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Period {
    /// The first day.
    pub(crate) from: Day,
    /// The last day.
    pub(crate) to: Day,
}

/// What was sold over some days: of a product, or of everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    /// How many orders.
    pub(crate) orders: i64,
    /// How many units.
    pub(crate) units: i64,
    /// Revenue in minor units, by currency.
    pub(crate) revenue: BTreeMap<Currency, i64>,
}

impl Figures {
    /// Adds `other` in.
    pub(crate) fn add(&mut self, other: &Figures) {
        self.orders += other.orders;
        self.units += other.units;
        for (currency, cents) in &other.revenue {
            *self.revenue.entry(*currency).or_default() += cents;
        }
    }

    /// The sum of `days`' figures.
    pub(crate) fn total<'a>(days: impl IntoIterator<Item = &'a Figures>) -> Figures {
        let mut total = Figures::default();
        days.into_iter().for_each(|day| total.add(day));
        total
    }
}

/// What products are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rank {
    /// Units sold, in every currency unless one is given.
    Units(Option<Currency>),
    /// Revenue in one currency.
    Revenue(Currency),
}

/// Everything sold each day of `period` that sold anything, by day.
pub(crate) async fn days(
    conn: &mut AnyConnection,
    period: Period,
) -> Result<BTreeMap<Day, Figures>, StoreError> {
    let rows = sqlx::query(
        "SELECT day, currency, CAST(SUM(units) AS BIGINT) AS units, \
         CAST(SUM(revenue_cents) AS BIGINT) AS revenue_cents, CAST(0 AS BIGINT) AS orders \
         FROM sales_daily WHERE day >= $1 AND day <= $2 GROUP BY day, currency",
    )
    .bind(period.from.to_string())
    .bind(period.to.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut days = by_day(&rows, "sales_daily")?;
    let orders = sqlx::query("SELECT day, orders FROM sales_days WHERE day >= $1 AND day <= $2")
        .bind(period.from.to_string())
        .bind(period.to.to_string())
        .fetch_all(&mut *conn)
        .await?;
    for row in &orders {
        let day = decode_day(row, "sales_days")?;
        days.entry(day).or_default().orders += row.try_get::<i64, _>("orders")?;
    }
    Ok(days)
}

/// What product `product_id` sold each day of `period` that it sold anything, by day.
pub(crate) async fn product_days(
    conn: &mut AnyConnection,
    product_id: Uuid,
    period: Period,
) -> Result<BTreeMap<Day, Figures>, StoreError> {
    let rows = sqlx::query(
        "SELECT day, currency, units, revenue_cents, orders FROM sales_daily \
         WHERE product_id = $1 AND day >= $2 AND day <= $3",
    )
    .bind(product_id.to_string())
    .bind(period.from.to_string())
    .bind(period.to.to_string())
    .fetch_all(conn)
    .await?;
    by_day(&rows, "sales_daily")
}

/// Whether product `product_id` ever sold.
pub(crate) async fn ever_sold(
    conn: &mut AnyConnection,
    product_id: Uuid,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 FROM sales_daily WHERE product_id = $1 LIMIT 1")
        .bind(product_id.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// The currencies anything was sold in during `period`, in code order.
pub(crate) async fn currencies(
    conn: &mut AnyConnection,
    period: Period,
) -> Result<Vec<Currency>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT currency FROM sales_daily WHERE day >= $1 AND day <= $2 \
         ORDER BY currency",
    )
    .bind(period.from.to_string())
    .bind(period.to.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| decode_currency(row, "sales_daily"))
        .collect()
}

/// One product of a ranking, with what it sold over the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ranked {
    /// The product.
    pub(crate) product_id: Uuid,
    /// What it is ranked by: its units or its revenue in the ranking's currency.
    pub(crate) figure: i64,
    /// What it sold (in the ranking's currency, if it has one).
    pub(crate) figures: Figures,
}

/// The top `limit` products that sold during `period`, ranked by `rank` (highest first, ties
/// by product id). Read in two statements (the ranking, then its revenue by currency): read
/// them in one snapshot, so that a product's revenue is that of the units it ranks with.
pub(crate) async fn top(
    conn: &mut AnyConnection,
    period: Period,
    rank: Rank,
    limit: u32,
) -> Result<Vec<Ranked>, StoreError> {
    let (figure, currency) = match rank {
        Rank::Units(currency) => ("SUM(units)", currency),
        Rank::Revenue(currency) => ("SUM(revenue_cents)", Some(currency)),
    };
    let mut sql = format!(
        "SELECT product_id, CAST({figure} AS BIGINT) AS figure, \
         CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(orders) AS BIGINT) AS orders \
         FROM sales_daily WHERE day >= $1 AND day <= $2"
    );
    let mut next = 3;
    if currency.is_some() {
        sql.push_str(&format!(" AND currency = ${next}"));
        next += 1;
    }
    sql.push_str(" GROUP BY product_id");
    sql.push_str(&format!(
        " ORDER BY {figure} DESC, product_id LIMIT ${next}"
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(period.from.to_string())
        .bind(period.to.to_string());
    if let Some(currency) = currency {
        query = query.bind(currency.as_str().to_owned());
    }
    let rows = query.bind(i64::from(limit)).fetch_all(&mut *conn).await?;
    let mut ranked = Vec::with_capacity(rows.len());
    for row in &rows {
        let product_id = decode_product(row)?;
        ranked.push(Ranked {
            product_id,
            figure: row.try_get("figure")?,
            figures: Figures {
                orders: row.try_get("orders")?,
                units: row.try_get("units")?,
                revenue: BTreeMap::new(),
            },
        });
    }
    add_revenue(conn, period, currency, &mut ranked).await?;
    Ok(ranked)
}

/// Fills in the revenue of each of `ranked` over `period`, in `currency` only if given.
async fn add_revenue(
    conn: &mut AnyConnection,
    period: Period,
    currency: Option<Currency>,
    ranked: &mut [Ranked],
) -> Result<(), StoreError> {
    if ranked.is_empty() {
        return Ok(());
    }
    let mut sql = "SELECT product_id, currency, CAST(SUM(revenue_cents) AS BIGINT) AS cents \
                   FROM sales_daily WHERE day >= $1 AND day <= $2"
        .to_owned();
    let mut next = 3;
    if currency.is_some() {
        sql.push_str(&format!(" AND currency = ${next}"));
        next += 1;
    }
    let products: Vec<String> = (next..next + ranked.len())
        .map(|n| format!("${n}"))
        .collect();
    sql.push_str(&format!(
        " AND product_id IN ({}) GROUP BY product_id, currency",
        products.join(", ")
    ));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(period.from.to_string())
        .bind(period.to.to_string());
    if let Some(currency) = currency {
        query = query.bind(currency.as_str().to_owned());
    }
    for product in ranked.iter() {
        query = query.bind(product.product_id.to_string());
    }
    let rows = query.fetch_all(conn).await?;
    for row in &rows {
        let product_id = decode_product(row)?;
        let currency = decode_currency(row, "sales_daily")?;
        let cents: i64 = row.try_get("cents")?;
        if let Some(product) = ranked.iter_mut().find(|p| p.product_id == product_id) {
            product.figures.revenue.insert(currency, cents);
        }
    }
    Ok(())
}

/// Rows of `(day, currency, units, revenue_cents, orders)` added up by day.
fn by_day(rows: &[AnyRow], table: &str) -> Result<BTreeMap<Day, Figures>, StoreError> {
    let mut days: BTreeMap<Day, Figures> = BTreeMap::new();
    for row in rows {
        let day = decode_day(row, table)?;
        let currency = decode_currency(row, table)?;
        let figures = days.entry(day).or_default();
        figures.units += row.try_get::<i64, _>("units")?;
        figures.orders += row.try_get::<i64, _>("orders")?;
        *figures.revenue.entry(currency).or_default() += row.try_get::<i64, _>("revenue_cents")?;
    }
    Ok(days)
}

fn decode_day(row: &AnyRow, table: &str) -> Result<Day, StoreError> {
    let day: String = row.try_get("day")?;
    Day::parse(&day).map_err(|e| StoreError::Corrupt {
        row: format!("{table} day {day}"),
        reason: e.to_string(),
    })
}

fn decode_currency(row: &AnyRow, table: &str) -> Result<Currency, StoreError> {
    let currency: String = row.try_get("currency")?;
    Currency::parse(&currency).map_err(|e| StoreError::Corrupt {
        row: format!("{table} currency {currency}"),
        reason: e.to_string(),
    })
}

fn decode_product(row: &AnyRow) -> Result<Uuid, StoreError> {
    let product_id: String = row.try_get("product_id")?;
    Uuid::parse_str(&product_id).map_err(|e| StoreError::Corrupt {
        row: format!("sales_daily product {product_id}"),
        reason: e.to_string(),
    })
}
