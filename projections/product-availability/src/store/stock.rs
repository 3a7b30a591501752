//! `product_availability_reservation` (each order's reservation) and
//! `product_availability_move` (what each `inventory.updated` moved for each product).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eventmart_events::inventory::InventoryChange;
use eventmart_runtime::db::Engine;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::StoreError;
use crate::view::{Counts, Reservation, ReservationStatus};

/// Order `order_id`'s reservation, if this view has one, locked until `tx` ends on
/// PostgreSQL.
pub(crate) async fn reservation_for_update(
    tx: &mut AnyConnection,
    engine: Engine,
    order_id: Uuid,
) -> Result<Option<Reservation>, StoreError> {
    let lock = engine.for_update();
    let sql = format!(
        "SELECT status, units FROM product_availability_reservation WHERE order_id = $1{lock}"
    );
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(order_id.to_string())
        .fetch_optional(tx)
        .await?
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "product_availability_reservation",
        key: order_id.to_string(),
        reason,
    };
    let status: String = row.try_get("status")?;
    let units: String = row.try_get("units")?;
    Ok(Some(Reservation {
        status: ReservationStatus::parse(&status).map_err(|e| corrupt(e.to_string()))?,
        units: serde_json::from_str::<BTreeMap<Uuid, i64>>(&units)
            .map_err(|e| corrupt(format!("units: {e}")))?,
    }))
}

/// Stores order `order_id`'s `reservation`, over the one it had if `existed`; `false` if
/// it did not exist and another transaction inserted it since this one looked.
pub(crate) async fn save_reservation(
    tx: &mut AnyConnection,
    order_id: Uuid,
    reservation: &Reservation,
    existed: bool,
) -> Result<bool, StoreError> {
    let units = serde_json::to_string(&reservation.units).map_err(|e| StoreError::Corrupt {
        table: "product_availability_reservation",
        key: order_id.to_string(),
        reason: format!("units do not encode: {e}"),
    })?;
    let sql = if existed {
        "UPDATE product_availability_reservation SET status = $2, units = $3 \
         WHERE order_id = $1"
    } else {
        "INSERT INTO product_availability_reservation (order_id, status, units) \
         VALUES ($1, $2, $3) ON CONFLICT (order_id) DO NOTHING"
    };
    let done = sqlx::query(sql)
        .bind(order_id.to_string())
        .bind(reservation.status.as_str())
        .bind(units)
        .execute(tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One product's move by one event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Move {
    /// The product.
    pub(crate) product_id: Uuid,
    /// The event.
    pub(crate) event_id: Uuid,
    /// Its change.
    pub(crate) change: InventoryChange,
    /// What the product's figures move by.
    pub(crate) delta: Counts,
    /// When the event occurred.
    pub(crate) occurred_at: DateTime<Utc>,
}

/// Records `m`; `false` if it was recorded already (the event was applied before), so that
/// it must not move the figures again.
pub(crate) async fn record_move(tx: &mut AnyConnection, m: &Move) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO product_availability_move \
         (product_id, event_id, change, received, available, reserved, sold, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (product_id, event_id) DO NOTHING",
    )
    .bind(m.product_id.to_string())
    .bind(m.event_id.to_string())
    .bind(m.change.as_str())
    .bind(m.delta.received)
    .bind(m.delta.available)
    .bind(m.delta.reserved)
    .bind(m.delta.sold)
    .bind(m.occurred_at.timestamp_millis())
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
