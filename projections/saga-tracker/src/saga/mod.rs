//! The saga tracker's model and rules, pure: what each event is as a step of its saga
//! ([`step_of`]), and where a saga stands given the set of its steps ([`Saga::of`]).
//!
//! # Which saga an event belongs to
//!
//! A saga is the events that share the envelope's `correlation_id`: the services give every
//! event of an order the correlation id of its `order.created` (whose own id it is). The
//! codec gives a record that states no correlation id its own event id as one, which would
//! make a saga of that event alone; so an event other than `order.created` whose
//! correlation id is its own event id counts as stating none, and joins the saga whose
//! correlation id is its order's id. Events about no order (users, products, restocks and
//! adjustments) are not steps of any saga.
//!
//! # Where a saga stands
//!
//! The topics are not ordered among each other, so a saga is computed from the *set* of its
//! steps, never from the order they arrived in. The rules follow what the services do:
//!
//! - inventory answers `order.created` with RESERVED or REJECTED, releases a held
//!   reservation on `order.cancelled` and sells it on `order.confirmed`;
//! - payments charges once it knows both the order and its reservation (COMPLETED or
//!   FAILED), and refunds a completed charge when the order is cancelled (at once, or as
//!   soon as a charge in flight completes);
//! - orders confirms on COMPLETED and cancels on REJECTED, FAILED or its deadline.
//!
//! The order's decision is its earliest `order.confirmed` or `order.cancelled` (by
//! `occurred_at`, then event id); the orders service never emits both. Then:
//!
//! | decision | other steps | state | waiting for |
//! |---|---|---|---|
//! | none | COMPLETED, FAILED or REJECTED | running | orders (to decide) |
//! | none | RESERVED | running | payments (to charge) |
//! | none | CREATED | running | inventory (to reserve) |
//! | none | none of these (a step arrived before its cause) | running | orders |
//! | confirmed | no SOLD, and the reservation neither REJECTED nor RELEASED | confirmed | inventory (to sell) |
//! | confirmed | otherwise | confirmed | nobody |
//! | cancelled | RESERVED not RELEASED (nor SOLD), or CREATED not answered by inventory yet | compensating | inventory (to release) |
//! | cancelled | COMPLETED not REFUNDED | compensating | payments (to refund) |
//! | cancelled | otherwise | cancelled | nobody |
//!
//! A cancelled order whose `order.created` inventory has not answered yet is compensating:
//! inventory answers it before the cancellation (both are on the order's partition), and
//! what it reserves then, it releases. A charge still at the provider when the order was
//! cancelled cannot be seen until `payment.completed` shows; the saga then compensates
//! again until the refund. A refund of a confirmed order's charge (made by hand) changes
//! nothing in where the saga stands.
//!
//! A saga's `step` is its latest step (by `occurred_at`, then event id), `started_at` and
//! `last_event_at` the earliest and latest `occurred_at`: never the clock.
//!
//! Not here: SQL (`store`) and HTTP (`api`).

mod names;

use chrono::{DateTime, Utc};
use eventmart_events::inventory::InventoryChange;
use eventmart_events::{Envelope, Event};
use uuid::Uuid;

pub use self::names::{InvalidName, Service, State, Step};

/// One event of a saga.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SagaStep {
    /// The saga: the event's correlation id, or its order's id if it states none.
    pub correlation_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// Its dotted type, e.g. `payment.completed`.
    pub event_type: String,
    /// What happened.
    pub step: Step,
    /// The order the event is about.
    pub order_id: Uuid,
    /// The event that caused it, if the envelope names one.
    pub causation_id: Option<Uuid>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

impl SagaStep {
    /// The service that took the step.
    pub fn service(&self) -> Service {
        self.step.service()
    }

    /// Where the step sorts in its saga: by `occurred_at`, then event id.
    fn rank(&self) -> (DateTime<Utc>, Uuid) {
        (self.occurred_at, self.event_id)
    }
}

/// One saga as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saga {
    /// The saga's correlation id.
    pub correlation_id: Uuid,
    /// The order of its earliest step.
    pub order_id: Uuid,
    /// Where it stands.
    pub state: State,
    /// Its latest step.
    pub step: Step,
    /// The service that owes its next step; `None` when nothing more is expected.
    pub waiting_for: Option<Service>,
    /// When its earliest step happened.
    pub started_at: DateTime<Utc>,
    /// When its latest step happened.
    pub last_event_at: DateTime<Utc>,
    /// How many steps it has.
    pub step_count: i64,
}

impl Saga {
    /// Saga `correlation_id` made of `steps` (each event once, in any order); `None` if it
    /// has none. See the [module docs](self) for the rules.
    pub fn of(correlation_id: Uuid, steps: &[SagaStep]) -> Option<Saga> {
        let first = steps.iter().min_by_key(|s| s.rank())?;
        let last = steps.iter().max_by_key(|s| s.rank())?;
        let (state, waiting_for) = standing(steps);
        Some(Saga {
            correlation_id,
            order_id: first.order_id,
            state,
            step: last.step,
            waiting_for,
            started_at: first.occurred_at,
            last_event_at: last.occurred_at,
            step_count: i64::try_from(steps.len()).unwrap_or(i64::MAX),
        })
    }
}

/// The state of a saga made of `steps`, and the service it waits for.
fn standing(steps: &[SagaStep]) -> (State, Option<Service>) {
    let has = |step: Step| steps.iter().any(|s| s.step == step);
    let decision = steps
        .iter()
        .filter(|s| matches!(s.step, Step::Confirmed | Step::Cancelled))
        .min_by_key(|s| s.rank())
        .map(|s| s.step);
    match decision {
        Some(Step::Confirmed) => {
            // Inventory sells only a reservation it holds.
            let nothing_to_sell = has(Step::Sold) || has(Step::Rejected) || has(Step::Released);
            (
                State::Confirmed,
                (!nothing_to_sell).then_some(Service::Inventory),
            )
        }
        Some(_) => {
            let held = has(Step::Reserved) && !has(Step::Released) && !has(Step::Sold);
            let unanswered = has(Step::Created) && !has(Step::Reserved) && !has(Step::Rejected);
            let charged = has(Step::Completed) && !has(Step::Refunded);
            if held || unanswered {
                (State::Compensating, Some(Service::Inventory))
            } else if charged {
                (State::Compensating, Some(Service::Payments))
            } else {
                (State::Cancelled, None)
            }
        }
        None => {
            let next = if has(Step::Completed) || has(Step::Failed) || has(Step::Rejected) {
                Service::Orders
            } else if has(Step::Reserved) {
                Service::Payments
            } else if has(Step::Created) {
                Service::Inventory
            } else {
                Service::Orders
            };
            (State::Running, Some(next))
        }
    }
}

/// What `event` (with `envelope`) is as a saga step; `None` for events about no order
/// (users, products, restocks and adjustments).
pub fn step_of(event: &Event, envelope: &Envelope) -> Option<SagaStep> {
    let (order_id, step) = match event {
        Event::OrderCreated(e) => (e.order_id, Step::Created),
        Event::OrderConfirmed(e) => (e.order_id, Step::Confirmed),
        Event::OrderCancelled(e) => (e.order_id, Step::Cancelled),
        Event::InventoryUpdated(e) => {
            let step = match e.change {
                InventoryChange::Reserved => Step::Reserved,
                InventoryChange::Rejected => Step::Rejected,
                InventoryChange::Released => Step::Released,
                InventoryChange::Sold => Step::Sold,
                InventoryChange::Restocked | InventoryChange::Adjusted => return None,
            };
            (e.order_id?, step)
        }
        Event::PaymentCompleted(e) => (e.order_id, Step::Completed),
        Event::PaymentFailed(e) => (e.order_id, Step::Failed),
        Event::PaymentRefunded(e) => (e.order_id, Step::Refunded),
        Event::UserRegistered(_)
        | Event::UserUpdated(_)
        | Event::ProductCreated(_)
        | Event::ProductPriceChanged(_) => return None,
    };
    let states_no_correlation =
        envelope.correlation_id == envelope.event_id && step != Step::Created;
    Some(SagaStep {
        correlation_id: if states_no_correlation {
            order_id
        } else {
            envelope.correlation_id
        },
        event_id: envelope.event_id,
        event_type: event.event_type().to_owned(),
        step,
        order_id,
        causation_id: envelope.causation_id,
        occurred_at: envelope.occurred_at,
    })
}

#[cfg(test)]
mod tests;
