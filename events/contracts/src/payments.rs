//! Events of the `payments` topic. Schemas: `schemas/payments/*.avsc`.
//!
//! The aggregate (and key) is the **order id**, not the payment id: there is one payment per
//! order, and keying by order keeps an order's charge, failure and refund in order on one
//! partition, which the saga relies on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// `payment.completed`: an order's charge succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCompleted {
    /// The payment.
    pub payment_id: Uuid,
    /// The order paid for; the aggregate id.
    pub order_id: Uuid,
    /// The customer charged.
    pub user_id: Uuid,
    /// The amount charged.
    pub amount: Money,
    /// When the charge succeeded.
    #[serde(with = "crate::timestamp")]
    pub completed_at: DateTime<Utc>,
}

impl PaymentCompleted {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.completed_at
    }
}

/// `payment.failed`: an order's charge was declined; nothing was charged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    /// The payment attempt.
    pub payment_id: Uuid,
    /// The order; the aggregate id.
    pub order_id: Uuid,
    /// The customer who would have been charged.
    pub user_id: Uuid,
    /// The amount that was to be charged.
    pub amount: Money,
    /// Why the provider declined, e.g. `"insufficient_funds"`.
    pub reason: String,
    /// When the charge was declined.
    #[serde(with = "crate::timestamp")]
    pub failed_at: DateTime<Utc>,
}

impl PaymentFailed {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.failed_at
    }
}

/// `payment.refunded`: a completed charge was paid back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    /// The payment refunded.
    pub payment_id: Uuid,
    /// The order it paid for; the aggregate id.
    pub order_id: Uuid,
    /// The amount paid back.
    pub amount: Money,
    /// Why, e.g. `"order_cancelled"`.
    pub reason: String,
    /// When the refund was made.
    #[serde(with = "crate::timestamp")]
    pub refunded_at: DateTime<Utc>,
}

impl PaymentRefunded {
    /// The aggregate this event belongs to: the order.
    pub fn aggregate_id(&self) -> Uuid {
        self.order_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.refunded_at
    }
}
