//! Events of the `orders` topic, keyed by order id. Schemas: `schemas/orders/*.avsc`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// `order.created`: a customer placed an order; it is pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The new order's id; the aggregate id.
    pub order_id: Uuid,
    /// The customer.
    pub user_id: Uuid,
    /// What was ordered, one line per product.
    pub lines: Vec<OrderLine>,
    /// The sum of quantity × unit price over the lines.
    pub total: Money,
    /// How the customer pays: a payment provider's token; `None` for the default method.
    #[serde(default)]
    pub payment_token: Option<String>,
    /// When the order was placed.
    #[serde(with = "crate::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl OrderCreated {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

/// One product of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The product.
    pub product_id: Uuid,
    /// How many units (the domain requires more than zero).
    pub quantity: i32,
    /// The price of one unit when the order was placed.
    pub unit_price: Money,
}

/// `order.confirmed`: an order was paid for and is final.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    /// The order; the aggregate id.
    pub order_id: Uuid,
    /// The payment that settled it.
    pub payment_id: Uuid,
    /// When it was confirmed.
    #[serde(with = "crate::timestamp")]
    pub confirmed_at: DateTime<Utc>,
}

impl OrderConfirmed {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.confirmed_at
    }
}

/// `order.cancelled`: an order will not be fulfilled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The order; the aggregate id.
    pub order_id: Uuid,
    /// Why.
    pub reason: CancellationReason,
    /// Free text explaining the reason further.
    pub detail: Option<String>,
    /// When it was cancelled.
    #[serde(with = "crate::timestamp")]
    pub cancelled_at: DateTime<Utc>,
}

impl OrderCancelled {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.cancelled_at
    }
}

/// Why an order was cancelled. Symbols on the wire: `out_of_stock`, `payment_declined`,
/// `timeout`, `cancelled_by_customer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    /// Inventory rejected the reservation.
    OutOfStock,
    /// The charge failed.
    PaymentDeclined,
    /// The order stayed pending past its deadline.
    Timeout,
    /// The customer asked.
    CancelledByCustomer,
}

impl CancellationReason {
    /// The wire symbol, e.g. `"out_of_stock"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::OutOfStock => "out_of_stock",
            CancellationReason::PaymentDeclined => "payment_declined",
            CancellationReason::Timeout => "timeout",
            CancellationReason::CancelledByCustomer => "cancelled_by_customer",
        }
    }
}
