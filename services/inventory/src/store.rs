//! Reading the rows a decision needs and writing back those it changed, each at the version
//! it was read at, inside the caller's transaction.
//!
//! Rows are kept with `eventmart_runtime::state`: kind [`STOCK`] by product id, kind
//! [`RESERVATION`] by order id. Two decisions that change one product's stock concurrently
//! cannot both save it: the second meets a version conflict and is decided again on fresh
//! stock. Rows are written in id order (stock first), so concurrent writers on PostgreSQL
//! wait for each other rather than deadlock.

use std::collections::BTreeMap;

use eventmart_runtime::state::{self, StateError};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Inventory, Reservation, Stock};

/// The state kind of a product's stock.
pub(crate) const STOCK: &str = "stock";
/// The state kind of an order's reservation.
pub(crate) const RESERVATION: &str = "reservation";

/// Rows read for one decision, with the versions they were read at.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// What was read (absent rows are left out).
    pub(crate) state: Inventory,
    stock_versions: BTreeMap<Uuid, u64>,
    reservation_versions: BTreeMap<Uuid, u64>,
}

impl Loaded {
    /// Reads the stock of `products` (each once).
    pub(crate) async fn read_stock(
        &mut self,
        conn: &mut AnyConnection,
        products: &[Uuid],
    ) -> Result<(), StateError> {
        for &product_id in products {
            if self.stock_versions.contains_key(&product_id) {
                continue;
            }
            let row = state::load::<Option<Stock>>(conn, STOCK, &product_id.to_string()).await?;
            self.stock_versions.insert(product_id, row.version);
            if let Some(stock) = row.state {
                self.state.stock.insert(product_id, stock);
            }
        }
        Ok(())
    }

    /// Reads the reservation of `order_id`.
    pub(crate) async fn read_reservation(
        &mut self,
        conn: &mut AnyConnection,
        order_id: Uuid,
    ) -> Result<(), StateError> {
        let row =
            state::load::<Option<Reservation>>(conn, RESERVATION, &order_id.to_string()).await?;
        self.reservation_versions.insert(order_id, row.version);
        if let Some(reservation) = row.state {
            self.state.reservations.insert(order_id, reservation);
        }
        Ok(())
    }

    /// Writes every row of `after` that differs from what was read, at the version read; a
    /// row that was not read is written only if it does not exist yet.
    pub(crate) async fn save(
        &self,
        conn: &mut AnyConnection,
        after: &Inventory,
    ) -> Result<(), StateError> {
        for (product_id, stock) in &after.stock {
            if self.state.stock.get(product_id) != Some(stock) {
                let version = self.stock_versions.get(product_id).copied().unwrap_or(0);
                state::save(conn, STOCK, &product_id.to_string(), version, stock).await?;
            }
        }
        for (order_id, reservation) in &after.reservations {
            if self.state.reservations.get(order_id) != Some(reservation) {
                let version = self
                    .reservation_versions
                    .get(order_id)
                    .copied()
                    .unwrap_or(0);
                state::save(
                    conn,
                    RESERVATION,
                    &order_id.to_string(),
                    version,
                    reservation,
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The stock of `product_id`, if the product is known.
pub(crate) async fn stock(
    conn: &mut AnyConnection,
    product_id: Uuid,
) -> Result<Option<Stock>, StateError> {
    Ok(state::load(conn, STOCK, &product_id.to_string())
        .await?
        .state)
}

/// Up to `limit` stock rows after `after`, in product id order, and whether more follow.
pub(crate) async fn stock_page(
    conn: &mut AnyConnection,
    after: Option<Uuid>,
    limit: u32,
) -> Result<(Vec<Stock>, bool), StateError> {
    let after = after.map(|id| id.to_string());
    let mut rows = state::list::<Stock>(conn, STOCK, after.as_deref(), limit + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows.into_iter().map(|(_, row)| row.state).collect(), more))
}

/// The reservation of `order_id`, if the inventory has one.
pub(crate) async fn reservation(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<Option<Reservation>, StateError> {
    Ok(state::load(conn, RESERVATION, &order_id.to_string())
        .await?
        .state)
}
