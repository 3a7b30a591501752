//! What the service does with the events it consumes: `order.created` and `inventory.updated`
//! RESERVED are the two facts a charge waits for, `order.cancelled` refunds a completed
//! charge, and payment events typed into its own topic are taken as facts.
//!
//! Each event is applied in the consumer's transaction; events of other kinds are ignored.

use eventmart_events::inventory::InventoryChange;
use eventmart_events::{Cause, Envelope, Event};
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Command, Payments, Status};
use crate::store::{Change, Store, load_payment, read_failed};

/// The two facts a charge waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fact {
    /// `order.created`: who pays, how much, with what.
    Order,
    /// `inventory.updated` RESERVED: the goods are set aside.
    Reservation,
}

/// The service's consumer handler.
#[derive(Debug)]
pub(crate) struct Reactions {
    /// Where changes are written.
    pub(crate) store: Store,
    /// The decider.
    pub(crate) payments: Payments,
}

impl Handler for Reactions {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        match event.event() {
            Event::OrderCancelled(cancelled) => self.cancel(tx, event, cancelled.order_id).await,
            _ => self.fold(tx, event).await,
        }
    }

    fn committed(&self) {
        self.store.journal.committed();
    }
}

impl Reactions {
    /// Applies `event` as a fact, deciding nothing: what the service does with every event
    /// but `order.cancelled` (whose refund is a decision), and what a state rebuilt from the
    /// topics does with each event it reads (see `replay`).
    pub(crate) async fn fold(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        match event.event() {
            Event::OrderCreated(created) => {
                self.learn(tx, event, created.order_id, Fact::Order).await
            }
            Event::InventoryUpdated(updated) if updated.change == InventoryChange::Reserved => {
                let Some(order_id) = updated.order_id else {
                    return Err(HandlerError::permanent(
                        "inventory.updated RESERVED without an order_id: a reservation is \
                         always for an order",
                    ));
                };
                self.learn(tx, event, order_id, Fact::Reservation).await
            }
            // Reached only when replaying (a running service decides on a cancellation).
            // Where a charge stood when the cancellation arrived depends on which topic was
            // read first, so a replay does not take a charge to be in flight: if one was
            // made, its outcome (and refund) follows on the payments topic.
            Event::OrderCancelled(cancelled) => {
                let mut change = Change::new(
                    cancelled.order_id,
                    load_payment(tx, cancelled.order_id).await?,
                );
                cancelled_by(&mut change, event);
                if change.after.status == Status::Charging {
                    change.after.status = Status::None;
                }
                self.store.write(tx, change).await?;
                Ok(())
            }
            Event::PaymentCompleted(_) | Event::PaymentFailed(_) | Event::PaymentRefunded(_) => {
                self.observe(tx, event).await
            }
            _ => Ok(()),
        }
    }

    /// Records `fact` about `order_id` with its cause; the first of each kind counts. When it
    /// completes the pair, the charge starts (the store sets its timer).
    async fn learn(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
        order_id: Uuid,
        fact: Fact,
    ) -> Result<(), HandlerError> {
        let mut change = Change::new(order_id, load_payment(tx, order_id).await?);
        let known = match fact {
            Fact::Order => change.before().state.order.is_some(),
            Fact::Reservation => change.before().state.reserved,
        };
        if known {
            tracing::debug!(%order_id, ?fact, "already known; the first one counts");
            return Ok(());
        }
        change.learn(event.event());
        let cause = Some(Cause::from(event.envelope()));
        match fact {
            Fact::Order => change.after.causes.order = cause,
            Fact::Reservation => change.after.causes.reserved = cause,
        }
        self.store.write(tx, change).await?;
        Ok(())
    }

    /// Records the cancellation, refunding a completed charge (a charge in flight is
    /// refunded when it completes; one not started never will be).
    async fn cancel(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
        order_id: Uuid,
    ) -> Result<(), HandlerError> {
        let mut change = Change::new(order_id, load_payment(tx, order_id).await?);
        let at = eventmart_events::timestamp::now();
        let refunds = self
            .payments
            .decide(&change.after, &Command::Cancel { at })
            .map_err(HandlerError::permanent)?;
        let cause = Cause::from(event.envelope());
        cancelled_by(&mut change, event);
        let traceparent = event.child_traceparent();
        let refunds = refunds
            .into_iter()
            .map(|refund| {
                let mut envelope = Envelope::reacting_to(&refund, &cause, "refund");
                if let Some(traceparent) = &traceparent {
                    envelope = envelope.with_traceparent(traceparent.clone());
                }
                (refund, envelope)
            })
            .collect();
        change.decide(refunds);
        self.store.write(tx, change).await?;
        Ok(())
    }

    /// Takes a payment event from the service's own topic as a fact, unless this service
    /// appended it (then its effect is already in the state).
    async fn observe(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let journal = &self.store.journal;
        if journal
            .contains(tx, event.envelope().event_id)
            .await
            .map_err(read_failed)?
        {
            return Ok(());
        }
        let order_id = match event.event() {
            Event::PaymentCompleted(e) => e.order_id,
            Event::PaymentFailed(e) => e.order_id,
            Event::PaymentRefunded(e) => e.order_id,
            _ => return Ok(()),
        };
        let mut change = Change::new(order_id, load_payment(tx, order_id).await?);
        change.observe(event.event());
        self.store.write(tx, change).await?;
        Ok(())
    }
}

/// Records the cancellation `event` in `change`; the first one names the cause of a refund.
fn cancelled_by(change: &mut Change, event: &Incoming<'_>) {
    change.learn(event.event());
    change
        .after
        .causes
        .cancelled
        .get_or_insert_with(|| Cause::from(event.envelope()));
}
