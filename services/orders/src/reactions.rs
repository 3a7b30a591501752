//! How orders reacts to events, each applied once inside the consumer's transaction:
//!
//! - `users` and `catalog`: the user and product replicas follow them (nothing is emitted);
//! - `inventory.updated` REJECTED → the pending order is cancelled (`out_of_stock`);
//! - `payment.completed` → the pending order is confirmed; `payment.failed` → it is
//!   cancelled (`payment_declined`);
//! - `orders` (its own topic): events this service appended are skipped; events produced
//!   elsewhere (kcat) are recorded as they are.
//!
//! An inventory or payment event about an order not known yet waits for it
//! ([`HandlerError::Waiting`]): its `order.created` may still be on its way on the other
//! topic. The consumer parks it for its key, so that only that order's events wait, and
//! dead-letters it if the order never comes.

use std::time::Duration;

use eventmart_events::inventory::InventoryChange;
use eventmart_events::{Cause, Envelope, Event, timestamp};
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::state::{self, Versioned};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Command, OrderDecider, Product, ReplicaError, User};
use crate::record::{self, RecordError};

/// The consumer's handler; see the [module docs](self).
#[derive(Debug)]
pub(crate) struct Reactions {
    /// The service's journal.
    pub(crate) journal: Journal,
    /// How long an order may stay pending.
    pub(crate) deadline: Duration,
}

impl Handler for Reactions {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let now = timestamp::now();
        match event.event() {
            Event::UserRegistered(e) => {
                replicate(tx, record::USER, e.user_id, event, User::fold).await
            }
            Event::UserUpdated(e) => {
                replicate(tx, record::USER, e.user_id, event, User::fold).await
            }
            Event::ProductCreated(e) => {
                replicate(tx, record::PRODUCT, e.product_id, event, Product::fold).await
            }
            Event::ProductPriceChanged(e) => {
                replicate(tx, record::PRODUCT, e.product_id, event, Product::fold).await
            }
            Event::OrderCreated(_) | Event::OrderConfirmed(_) | Event::OrderCancelled(_) => {
                self.own(tx, event).await
            }
            Event::InventoryUpdated(update) if update.change == InventoryChange::Rejected => {
                let order_id = update.order_id.ok_or_else(|| {
                    HandlerError::permanent("inventory.updated REJECTED names no order_id")
                })?;
                let command = Command::RejectReservation {
                    reason: update.reason.clone(),
                    at: now,
                };
                self.react(tx, event, order_id, &command, "cancel").await
            }
            Event::PaymentCompleted(payment) => {
                let command = Command::ConfirmPayment {
                    payment_id: payment.payment_id,
                    at: now,
                };
                self.react(tx, event, payment.order_id, &command, "confirm")
                    .await
            }
            Event::PaymentFailed(payment) => {
                let command = Command::FailPayment {
                    reason: payment.reason.clone(),
                    at: now,
                };
                self.react(tx, event, payment.order_id, &command, "cancel")
                    .await
            }
            _ => Ok(()),
        }
    }

    fn committed(&self) {
        self.journal.committed();
    }
}

impl Reactions {
    /// Decides `command` on order `order_id` in reaction to `incoming`, whose effect is
    /// step `step` of the order's flow.
    async fn react(
        &self,
        tx: &mut AnyConnection,
        incoming: &Incoming<'_>,
        order_id: Uuid,
        command: &Command,
        step: &str,
    ) -> Result<(), HandlerError> {
        let cause = Cause::from(incoming.envelope());
        let trace = incoming.child_traceparent();
        let envelope = |event: &Event, _order: &Cause| {
            let envelope = Envelope::reacting_to(event, &cause, step);
            match &trace {
                Some(trace) => envelope.with_traceparent(trace.clone()),
                None => envelope,
            }
        };
        match record::transition(&self.journal, tx, order_id, command, envelope).await {
            Ok(_) => Ok(()),
            Err(RecordError::UnknownOrder(_)) => Err(unknown_order(incoming, order_id)),
            Err(error) => Err(error.into()),
        }
    }

    /// Applies an event of the service's own topic.
    async fn own(
        &self,
        tx: &mut AnyConnection,
        incoming: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let envelope = incoming.envelope();
        let appended_here = self
            .journal
            .contains(tx, envelope.event_id)
            .await
            .map_err(|e| HandlerError::from(RecordError::from(e)))?;
        if appended_here {
            return Ok(());
        }
        let event = incoming.event();
        let order_id = order_of(event);
        let Versioned { state, version } = record::load_order(tx, order_id).await?;
        match (state, event) {
            (Some(_), Event::OrderCreated(_)) => Ok(()),
            (None, Event::OrderCreated(_)) => {
                let order = OrderDecider
                    .evolve(None, event)
                    .ok_or_else(|| HandlerError::permanent("order.created made no order"))?;
                let cause = Cause::from(envelope);
                record::create_order(tx, order, cause, self.deadline, timestamp::now()).await?;
                Ok(())
            }
            (Some(stored), _) => {
                let loaded = Versioned {
                    state: stored,
                    version,
                };
                record::fold_order(tx, loaded, event).await?;
                Ok(())
            }
            (None, _) => Err(HandlerError::permanent(format!(
                "{} for order {order_id}, which was never created (its order.created would \
                 have come first on the same partition)",
                event.event_type()
            ))),
        }
    }
}

/// The order an `order.*` event is about.
fn order_of(event: &Event) -> Uuid {
    match event {
        Event::OrderCreated(e) => e.order_id,
        Event::OrderConfirmed(e) => e.order_id,
        Event::OrderCancelled(e) => e.order_id,
        _ => Uuid::nil(),
    }
}

/// An event about order `order_id`, not known yet, waits for its `order.created`.
fn unknown_order(incoming: &Incoming<'_>, order_id: Uuid) -> HandlerError {
    let event_type = incoming.event().event_type();
    HandlerError::waiting(format!(
        "{event_type} for order {order_id}, not known yet: waiting for its order.created"
    ))
}

/// Folds `incoming` into the replica `kind`/`id` with `fold` and saves it.
async fn replicate<R>(
    tx: &mut AnyConnection,
    kind: &str,
    id: Uuid,
    incoming: &Incoming<'_>,
    fold: fn(Option<R>, &Event) -> Result<Option<R>, ReplicaError>,
) -> Result<(), HandlerError>
where
    R: Serialize + DeserializeOwned + Send,
{
    let id = id.to_string();
    let Versioned { state, version } = state::load::<Option<R>>(tx, kind, &id).await?;
    if let Some(replica) = fold(state, incoming.event()).map_err(HandlerError::permanent)? {
        state::save(tx, kind, &id, version, &replica).await?;
    }
    Ok(())
}
