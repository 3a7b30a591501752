//! The inventory's steps of the order saga: reserve on `order.created`, release on
//! `order.cancelled`, sell on `order.confirmed`.
//!
//! Each step's event continues the order's flow: its id is derived from the incoming
//! event's id and the step, so a redelivered cause finds its effect in the journal and does
//! nothing more.

use eventmart_events::inventory::StockLine;
use eventmart_events::orders::OrderCreated;
use eventmart_events::{Cause, Envelope, derived_event_id, timestamp};
use eventmart_runtime::consumer::{HandlerError, Incoming};
use eventmart_runtime::journal::{ExpectedVersion, Journal};
use sqlx::AnyConnection;
use uuid::Uuid;

use super::{append_failed, read_failed};
use crate::domain::{Command, DomainError, decide_and_fold, reservation_cause};
use crate::store::Loaded;

/// `order.created`: reserve every line or none, once per order.
pub(super) async fn reserve(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    order: &OrderCreated,
) -> Result<(), HandlerError> {
    const STEP: &str = "reserve";
    if already_done(journal, tx, incoming, STEP).await? {
        return Ok(());
    }
    let mut loaded = Loaded::default();
    loaded.read_reservation(tx, order.order_id).await?;
    if loaded.state.reservations.contains_key(&order.order_id) {
        return Ok(());
    }
    let products: Vec<Uuid> = order.lines.iter().map(|l| l.product_id).collect();
    loaded.read_stock(tx, &products).await?;
    let lines = order
        .lines
        .iter()
        .map(|l| StockLine {
            product_id: l.product_id,
            quantity: l.quantity,
        })
        .collect();
    let command = Command::Reserve {
        order_id: order.order_id,
        lines,
        at: timestamp::now(),
    };
    carry_out(
        journal,
        tx,
        incoming,
        &loaded,
        &command,
        order.order_id,
        STEP,
    )
    .await
}

/// `order.cancelled`: give back what the order holds; an order with no reservation yet is
/// remembered as cancelled, so that its `order.created` reserves nothing.
pub(super) async fn release(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    order_id: Uuid,
) -> Result<(), HandlerError> {
    const STEP: &str = "release";
    if already_done(journal, tx, incoming, STEP).await? {
        return Ok(());
    }
    let mut loaded = Loaded::default();
    loaded.read_reservation(tx, order_id).await?;
    let Some(held) = loaded.state.reservations.get(&order_id) else {
        let cause = Cause::from(incoming.envelope());
        let after = loaded
            .state
            .clone()
            .cancelled_before_reserving(order_id, &cause);
        return Ok(loaded.save(tx, &after).await?);
    };
    let products: Vec<Uuid> = held.lines.iter().map(|l| l.product_id).collect();
    loaded.read_stock(tx, &products).await?;
    let command = Command::Release {
        order_id,
        at: timestamp::now(),
    };
    carry_out(journal, tx, incoming, &loaded, &command, order_id, STEP).await
}

/// `order.confirmed`: what the order holds is sold.
pub(super) async fn sell(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    order_id: Uuid,
) -> Result<(), HandlerError> {
    const STEP: &str = "sell";
    if already_done(journal, tx, incoming, STEP).await? {
        return Ok(());
    }
    let mut loaded = Loaded::default();
    loaded.read_reservation(tx, order_id).await?;
    let products: Vec<Uuid> = loaded
        .state
        .reservations
        .get(&order_id)
        .map(|held| held.lines.iter().map(|l| l.product_id).collect())
        .unwrap_or_default();
    loaded.read_stock(tx, &products).await?;
    let command = Command::Sell {
        order_id,
        at: timestamp::now(),
    };
    carry_out(journal, tx, incoming, &loaded, &command, order_id, STEP).await
}

/// Whether this step's event for `incoming` is already in the journal.
async fn already_done(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    step: &str,
) -> Result<bool, HandlerError> {
    let id = derived_event_id(incoming.envelope().event_id, step);
    journal.contains(tx, id).await.map_err(read_failed)
}

/// Decides `command` on what was loaded, saves the rows it changed and appends its event
/// (at most one) to the order's stream.
async fn carry_out(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    loaded: &Loaded,
    command: &Command,
    order_id: Uuid,
    step: &str,
) -> Result<(), HandlerError> {
    let (events, after) = match decide_and_fold(&loaded.state, command) {
        Ok(decided) => decided,
        Err(error @ DomainError::NothingReserved { .. }) => {
            tracing::warn!(%error, event_id = %incoming.envelope().event_id, "nothing to sell");
            return Ok(());
        }
        Err(error) => return Err(HandlerError::permanent(error)),
    };
    if events.len() > 1 {
        return Err(HandlerError::permanent(format!(
            "step {step} decided {} events; a step has one",
            events.len()
        )));
    }
    let cause = Cause::from(incoming.envelope());
    let events: Vec<_> = events
        .into_iter()
        .map(|event| {
            let mut envelope = Envelope::reacting_to(&event, &cause, step);
            if let Some(traceparent) = incoming.child_traceparent() {
                envelope = envelope.with_traceparent(traceparent);
            }
            (event, envelope)
        })
        .collect();
    // The reservation remembers the flow its event continues, as that event names it: what a
    // rebuild from the topic finds again.
    let after = match events.first() {
        Some((_, envelope)) => after.opened_by(order_id, &reservation_cause(envelope)),
        None => after,
    };
    loaded.save(tx, &after).await?;
    if events.is_empty() {
        return Ok(());
    }
    journal
        .append(tx, &order_id.to_string(), ExpectedVersion::Any, events)
        .await
        .map_err(append_failed)?;
    Ok(())
}
