//! `product_availability`: one row per product, read and written.

use eventmart_events::{Currency, Money};
use eventmart_runtime::db::Engine;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};
use uuid::Uuid;

use super::{StoreError, millis, parse_uuid};
use crate::view::{Availability, Counts, Listing, Price, Stocked};

/// The columns of `product_availability`, in the order [`Columns::bind`] binds them.
const COLUMNS: &str = "product_id, sku, name, created_at, created_event_id, price_cents, \
                       currency, price_at, price_event_id, received, available, reserved, \
                       sold, updated_at";

/// Product `product_id`'s row, if it has one, locked until `tx` ends on PostgreSQL.
pub(crate) async fn load_for_update(
    tx: &mut AnyConnection,
    engine: Engine,
    product_id: Uuid,
) -> Result<Option<Availability>, StoreError> {
    let lock = engine.for_update();
    let sql = format!("SELECT {COLUMNS} FROM product_availability WHERE product_id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(product_id.to_string())
        .fetch_optional(tx)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Product `product_id`'s row, if it has one.
pub(crate) async fn load(
    conn: &mut AnyConnection,
    product_id: Uuid,
) -> Result<Option<Availability>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM product_availability WHERE product_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(product_id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Stores `product` as a new row; `false` if it has a row already (another transaction
/// inserted it since this one looked).
pub(crate) async fn insert(
    tx: &mut AnyConnection,
    product: &Availability,
) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO product_availability ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (product_id) DO NOTHING"
    );
    let done = Columns::of(product)
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .execute(tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Overwrites the product's row with `product`.
pub(crate) async fn update(
    tx: &mut AnyConnection,
    product: &Availability,
) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE product_availability SET sku = $2, name = $3, created_at = $4, \
         created_event_id = $5, price_cents = $6, currency = $7, price_at = $8, \
         price_event_id = $9, received = $10, available = $11, reserved = $12, sold = $13, \
         updated_at = $14 WHERE product_id = $1",
    );
    Columns::of(product).bind(query).execute(tx).await?;
    Ok(())
}

/// Up to `limit` listed products (their `product.created` has arrived) by product id,
/// only those that fit `stocked` if given, starting after product `after`.
pub(crate) async fn page(
    conn: &mut AnyConnection,
    stocked: Option<Stocked>,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Availability>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM product_availability WHERE sku IS NOT NULL");
    match stocked {
        Some(Stocked::InStock) => sql.push_str(" AND available > 0"),
        Some(Stocked::OutOfStock) => sql.push_str(" AND available <= 0"),
        None => {}
    }
    let mut next = 1;
    if after.is_some() {
        sql.push_str(&format!(" AND product_id > ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY product_id LIMIT ${next}"));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some(after) = after {
        query = query.bind(after.to_string());
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    rows.iter().map(decode).collect()
}

/// A product as the columns of its row.
struct Columns {
    product_id: String,
    sku: Option<String>,
    name: Option<String>,
    created_at: Option<i64>,
    created_event_id: Option<String>,
    price_cents: Option<i64>,
    currency: Option<String>,
    price_at: Option<i64>,
    price_event_id: Option<String>,
    counts: Counts,
    updated_at: i64,
}

impl Columns {
    fn of(product: &Availability) -> Self {
        let listing = product.listing.as_ref();
        let price = product.price.as_ref();
        Self {
            product_id: product.product_id.to_string(),
            sku: listing.map(|l| l.sku.clone()),
            name: listing.map(|l| l.name.clone()),
            created_at: listing.map(|l| l.at.timestamp_millis()),
            created_event_id: listing.map(|l| l.event_id.to_string()),
            price_cents: price.map(|p| p.money.cents),
            currency: price.map(|p| p.money.currency.as_str().to_owned()),
            price_at: price.map(|p| p.at.timestamp_millis()),
            price_event_id: price.map(|p| p.event_id.to_string()),
            counts: product.counts,
            updated_at: product.updated_at.timestamp_millis(),
        }
    }

    /// Binds `$1`…`$14` in [`COLUMNS`] order.
    fn bind(self, query: Query<'_, Any, AnyArguments>) -> Query<'_, Any, AnyArguments> {
        query
            .bind(self.product_id)
            .bind(self.sku)
            .bind(self.name)
            .bind(self.created_at)
            .bind(self.created_event_id)
            .bind(self.price_cents)
            .bind(self.currency)
            .bind(self.price_at)
            .bind(self.price_event_id)
            .bind(self.counts.received)
            .bind(self.counts.available)
            .bind(self.counts.reserved)
            .bind(self.counts.sold)
            .bind(self.updated_at)
    }
}

/// A row read back.
fn decode(row: &AnyRow) -> Result<Availability, StoreError> {
    let product_id: String = row.try_get("product_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "product_availability",
        key: product_id.clone(),
        reason,
    };
    let listing = match (
        row.try_get::<Option<String>, _>("sku")?,
        row.try_get::<Option<String>, _>("name")?,
        row.try_get::<Option<i64>, _>("created_at")?,
        row.try_get::<Option<String>, _>("created_event_id")?,
    ) {
        (None, None, None, None) => None,
        (Some(sku), Some(name), Some(at), Some(event_id)) => Some(Listing {
            sku,
            name,
            at: millis(at).map_err(corrupt)?,
            event_id: parse_uuid(&event_id).map_err(corrupt)?,
        }),
        _ => return Err(corrupt("product.created fields are only partly set".into())),
    };
    let price = match (
        row.try_get::<Option<i64>, _>("price_cents")?,
        row.try_get::<Option<String>, _>("currency")?,
        row.try_get::<Option<i64>, _>("price_at")?,
        row.try_get::<Option<String>, _>("price_event_id")?,
    ) {
        (None, None, None, None) => None,
        (Some(cents), Some(currency), Some(at), Some(event_id)) => Some(Price {
            money: Money::new(
                cents,
                Currency::parse(&currency).map_err(|e| corrupt(e.to_string()))?,
            ),
            at: millis(at).map_err(corrupt)?,
            event_id: parse_uuid(&event_id).map_err(corrupt)?,
        }),
        _ => return Err(corrupt("price fields are only partly set".into())),
    };
    let counts = Counts {
        received: row.try_get("received")?,
        available: row.try_get("available")?,
        reserved: row.try_get("reserved")?,
        sold: row.try_get("sold")?,
    };
    let updated_at: i64 = row.try_get("updated_at")?;
    Ok(Availability {
        product_id: parse_uuid(&product_id).map_err(corrupt)?,
        listing,
        price,
        counts,
        updated_at: millis(updated_at).map_err(corrupt)?,
    })
}
