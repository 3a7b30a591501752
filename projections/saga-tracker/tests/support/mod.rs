//! How long the saga tracker's integration tests wait, and the events of an order's saga as
//! the services would emit them.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::OrderLine;
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use eventmart_events::{Currency, Envelope, Event, Money};
use eventmart_runtime::command::PositionToken;
use serde_json::Value;
use uuid::Uuid;

/// How long anything asynchronous may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// How long reads with a position wait in the tests that expect them to succeed: long
/// enough for the consumer group to form on a busy machine.
pub(crate) const LONG_WAIT: (&str, &str) = ("SAGA_TRACKER_WAIT_MAX", "60s");

/// The position token of `events`, as a command that appended them would answer.
pub(crate) fn position(events: &[&(Event, Envelope)]) -> String {
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
    PositionToken::encode(&ids)
}

/// `seconds` after `t0` (before it if negative).
pub(crate) fn later(t0: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t0 + TimeDelta::seconds(seconds)
}

/// An event starting a flow (an `order.created`), or one typed in without a correlation id.
pub(crate) fn first(event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// An event caused by `cause`, in its flow.
pub(crate) fn after(cause: &(Event, Envelope), event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event).caused_by(&cause.1);
    (event, envelope)
}

/// The saga an event belongs to, as the services name it.
pub(crate) fn saga_of(event: &(Event, Envelope)) -> Uuid {
    event.1.correlation_id
}

/// The events of one order's saga.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Order {
    pub(crate) order_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) product_id: Uuid,
}

impl Order {
    pub(crate) fn random() -> Self {
        Self {
            order_id: Uuid::now_v7(),
            user_id: Uuid::now_v7(),
            product_id: Uuid::now_v7(),
        }
    }

    fn amount() -> Money {
        Money::new(5997, Currency::EUR)
    }

    pub(crate) fn created(&self, at: DateTime<Utc>) -> Event {
        OrderCreated {
            order_id: self.order_id,
            user_id: self.user_id,
            lines: vec![OrderLine {
                product_id: self.product_id,
                quantity: 3,
                unit_price: Money::new(1999, Currency::EUR),
            }],
            total: Self::amount(),
            payment_token: Some("tok_visa".into()),
            created_at: at,
        }
        .into()
    }

    pub(crate) fn stock(&self, change: InventoryChange, at: DateTime<Utc>) -> Event {
        InventoryUpdated {
            change,
            order_id: Some(self.order_id),
            lines: vec![StockLine {
                product_id: self.product_id,
                quantity: 3,
            }],
            reason: None,
            updated_at: at,
        }
        .into()
    }

    pub(crate) fn paid(&self, at: DateTime<Utc>) -> Event {
        PaymentCompleted {
            payment_id: self.payment_id(),
            order_id: self.order_id,
            user_id: self.user_id,
            amount: Self::amount(),
            completed_at: at,
        }
        .into()
    }

    pub(crate) fn declined(&self, at: DateTime<Utc>) -> Event {
        PaymentFailed {
            payment_id: self.payment_id(),
            order_id: self.order_id,
            user_id: self.user_id,
            amount: Self::amount(),
            reason: "card_declined".into(),
            failed_at: at,
        }
        .into()
    }

    pub(crate) fn refunded(&self, at: DateTime<Utc>) -> Event {
        PaymentRefunded {
            payment_id: self.payment_id(),
            order_id: self.order_id,
            amount: Self::amount(),
            reason: "order_cancelled".into(),
            refunded_at: at,
        }
        .into()
    }

    pub(crate) fn confirmed(&self, at: DateTime<Utc>) -> Event {
        OrderConfirmed {
            order_id: self.order_id,
            payment_id: self.payment_id(),
            confirmed_at: at,
        }
        .into()
    }

    pub(crate) fn cancelled(&self, reason: CancellationReason, at: DateTime<Utc>) -> Event {
        OrderCancelled {
            order_id: self.order_id,
            reason,
            detail: None,
            cancelled_at: at,
        }
        .into()
    }

    fn payment_id(&self) -> Uuid {
        Uuid::new_v5(&self.order_id, b"payment")
    }
}

/// The `(event_type, step, service, event_id, causation_id)` of each step of a saga.
pub(crate) fn steps(saga: &Value) -> Vec<(String, String, String, String, Value)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    saga["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        text(&s["event_type"]),
                        text(&s["step"]),
                        text(&s["service"]),
                        text(&s["event_id"]),
                        s["causation_id"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What [`steps`] should show for `event`, taken by `service` as `step`.
pub(crate) fn step(
    event: &(Event, Envelope),
    step: &str,
    service: &str,
) -> (String, String, String, String, Value) {
    (
        event.0.event_type().to_owned(),
        step.to_owned(),
        service.to_owned(),
        event.1.event_id.to_string(),
        serde_json::json!(event.1.causation_id),
    )
}

/// The `correlation_id`s of a page's items.
pub(crate) fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["correlation_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
