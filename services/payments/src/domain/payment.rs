//! One order's payment as this service knows it: the facts learnt from other services (the
//! order's terms, its reservation, its cancellation) and the payment's own outcome.

use eventmart_events::inventory::InventoryChange;
use eventmart_events::{Cause, Event, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where an order's payment stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Nothing charged: the order or its reservation is not known yet, or the order was
    /// cancelled before both were.
    #[default]
    None,
    /// The charge is at the provider (the `charge` timer is set).
    Charging,
    /// Charged (`payment.completed`).
    Completed,
    /// The provider declined (`payment.failed`).
    Failed,
    /// Charged, then paid back (`payment.refunded`).
    Refunded,
}

impl Status {
    /// The wire symbol, e.g. `"COMPLETED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::None => "NONE",
            Status::Charging => "CHARGING",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Refunded => "REFUNDED",
        }
    }
}

/// What `order.created` says about paying for the order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTerms {
    /// The customer to charge.
    pub user_id: Uuid,
    /// How much.
    pub total: Money,
    /// With what; `None` for the default method.
    pub payment_token: Option<String>,
}

/// The events of the order's flow that the payment's own events react to, kept so that a
/// deferred step (the charge, a refund) names its cause and continues its flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Causes {
    /// The `order.created`.
    pub order: Option<Cause>,
    /// The `inventory.updated` RESERVED: the cause of the charge.
    pub reserved: Option<Cause>,
    /// The first `order.cancelled`: the cause of a refund that follows it.
    pub cancelled: Option<Cause>,
}

/// The state of aggregate `payment`/`<order_id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The order paid for (`None` until an event about it was seen).
    pub order_id: Option<Uuid>,
    /// The order's terms, once `order.created` was seen.
    pub order: Option<OrderTerms>,
    /// Whether the order's stock is reserved (`inventory.updated` RESERVED was seen).
    pub reserved: bool,
    /// Where the payment stands.
    pub status: Status,
    /// Whether the order was cancelled.
    pub cancelled: bool,
    /// The payment's id, once charged or declined.
    pub payment_id: Option<Uuid>,
    /// The customer (from the order, or from the payment's own events).
    pub user_id: Option<Uuid>,
    /// The amount charged, or to be charged.
    pub amount: Option<Money>,
    /// Why the charge was declined, or why it was refunded.
    pub reason: Option<String>,
    /// How many `payment.completed` events were seen: 1 at most, unless someone charged
    /// twice.
    pub charges: u32,
    /// The causes of later steps.
    #[serde(default)]
    pub causes: Causes,
}

impl Payment {
    /// The state after `event`. Facts are recorded as they are; the one thing derived is
    /// that the charge is at the provider from the moment both the order and its
    /// reservation are known, unless the order was cancelled first or the payment already
    /// has an outcome.
    pub fn evolve(mut self, event: &Event) -> Self {
        match event {
            Event::OrderCreated(created) => {
                self.order_id.get_or_insert(created.order_id);
                if self.order.is_none() {
                    self.order = Some(OrderTerms {
                        user_id: created.user_id,
                        total: created.total,
                        payment_token: created.payment_token.clone(),
                    });
                    self.user_id.get_or_insert(created.user_id);
                    self.amount.get_or_insert(created.total);
                }
                self.start_charge_when_ready()
            }
            Event::InventoryUpdated(updated) if updated.change == InventoryChange::Reserved => {
                if let Some(order_id) = updated.order_id {
                    self.order_id.get_or_insert(order_id);
                }
                self.reserved = true;
                self.start_charge_when_ready()
            }
            Event::OrderCancelled(cancelled) => {
                self.order_id.get_or_insert(cancelled.order_id);
                self.cancelled = true;
                self
            }
            Event::PaymentCompleted(completed) => {
                self.order_id = Some(completed.order_id);
                self.status = Status::Completed;
                self.payment_id = Some(completed.payment_id);
                self.user_id = Some(completed.user_id);
                self.amount = Some(completed.amount);
                self.reason = None;
                self.charges += 1;
                self
            }
            Event::PaymentFailed(failed) => {
                self.order_id = Some(failed.order_id);
                self.status = Status::Failed;
                self.payment_id = Some(failed.payment_id);
                self.user_id = Some(failed.user_id);
                self.amount = Some(failed.amount);
                self.reason = Some(failed.reason.clone());
                self
            }
            Event::PaymentRefunded(refunded) => {
                self.order_id = Some(refunded.order_id);
                self.status = Status::Refunded;
                self.payment_id = Some(refunded.payment_id);
                self.amount = Some(refunded.amount);
                self.reason = Some(refunded.reason.clone());
                self
            }
            _ => self,
        }
    }

    fn start_charge_when_ready(mut self) -> Self {
        if self.status == Status::None && !self.cancelled && self.order.is_some() && self.reserved {
            self.status = Status::Charging;
        }
        self
    }
}

/// The id of the payment of `order_id`: the same for every attempt, so that an order is
/// paid at most once under one id.
pub fn payment_id(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&order_id, b"payment")
}
