//! Events of the `inventory` topic. Schema: `schemas/inventory/inventory.updated.avsc`.
//!
//! One event type with a `change` kind. The key (aggregate) is the order for reservations
//! (RESERVED, REJECTED, RELEASED, SOLD) and the single product for RESTOCKED and ADJUSTED.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `reason` of a REJECTED change.
pub const REASON_OUT_OF_STOCK: &str = "out_of_stock";

/// `inventory.updated`: stock changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryUpdated {
    /// What happened.
    pub change: InventoryChange,
    /// The order, for RESERVED, REJECTED, RELEASED and SOLD.
    pub order_id: Option<Uuid>,
    /// The products concerned: the order's lines, or exactly one line for RESTOCKED/ADJUSTED.
    pub lines: Vec<StockLine>,
    /// Why: `"out_of_stock"` for REJECTED, free text for ADJUSTED.
    pub reason: Option<String>,
    /// When the stock changed.
    #[serde(with = "crate::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl InventoryUpdated {
    /// The aggregate: the order for RESERVED, REJECTED, RELEASED and SOLD, the (first) product for
    /// RESTOCKED and ADJUSTED.
    ///
    /// An event that lacks the id its change calls for (schema-valid, domain-invalid) falls back
    /// to the first product, then to the nil UUID, so that this stays total.
    pub fn aggregate_id(&self) -> Uuid {
        let first_product = self.lines.first().map(|line| line.product_id);
        let id = if self.change.concerns_an_order() {
            self.order_id.or(first_product)
        } else {
            first_product
        };
        id.unwrap_or(Uuid::nil())
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}

/// The kind of stock change. Symbols on the wire: `RESERVED`, `REJECTED`, `RELEASED`,
/// `RESTOCKED`, `ADJUSTED`, `SOLD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InventoryChange {
    /// Every line of an order was reserved.
    Reserved,
    /// An order could not be reserved; nothing was.
    Rejected,
    /// An order's reservation was given back.
    Released,
    /// Goods were received.
    Restocked,
    /// A manual correction by a signed delta.
    Adjusted,
    /// A confirmed order's reservation left the stock as sold goods.
    Sold,
}

impl InventoryChange {
    /// The wire symbol, e.g. `"RESERVED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            InventoryChange::Reserved => "RESERVED",
            InventoryChange::Rejected => "REJECTED",
            InventoryChange::Released => "RELEASED",
            InventoryChange::Restocked => "RESTOCKED",
            InventoryChange::Adjusted => "ADJUSTED",
            InventoryChange::Sold => "SOLD",
        }
    }

    /// Whether this change is about an order's reservation (and so is keyed by the order).
    pub fn concerns_an_order(self) -> bool {
        matches!(
            self,
            InventoryChange::Reserved
                | InventoryChange::Rejected
                | InventoryChange::Released
                | InventoryChange::Sold
        )
    }
}

/// The change for one product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    /// The product.
    pub product_id: Uuid,
    /// A positive count, or for ADJUSTED a signed non-zero delta.
    pub quantity: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(change: InventoryChange, order_id: Option<Uuid>) -> InventoryUpdated {
        InventoryUpdated {
            change,
            order_id,
            lines: vec![StockLine {
                product_id: Uuid::from_u128(7),
                quantity: 1,
            }],
            reason: None,
            updated_at: crate::timestamp::now(),
        }
    }

    #[test]
    fn reservations_are_keyed_by_their_order() {
        let order = Uuid::from_u128(1);
        for change in [
            InventoryChange::Reserved,
            InventoryChange::Rejected,
            InventoryChange::Released,
            InventoryChange::Sold,
        ] {
            assert_eq!(event(change, Some(order)).aggregate_id(), order);
        }
    }

    #[test]
    fn restocks_and_adjustments_are_keyed_by_their_product() {
        for change in [InventoryChange::Restocked, InventoryChange::Adjusted] {
            assert_eq!(event(change, None).aggregate_id(), Uuid::from_u128(7));
        }
    }
}
