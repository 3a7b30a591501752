//! Facts from outside the saga: products the catalog announces, and stock changes on the
//! inventory's own topic that this service did not append (typed into kcat).

use eventmart_events::inventory::InventoryUpdated;
use eventmart_events::{Cause, Event};
use eventmart_runtime::consumer::{HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::Journal;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::read_failed;
use crate::domain::{InventoryDecider, accept_fact};
use crate::store::Loaded;

/// `product.created`: the product gets an empty stock row, unless it has one.
pub(super) async fn track_product(
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
) -> Result<(), HandlerError> {
    let Event::ProductCreated(product) = incoming.event() else {
        return Ok(());
    };
    let mut loaded = Loaded::default();
    loaded.read_stock(tx, &[product.product_id]).await?;
    let after = InventoryDecider.evolve(loaded.state.clone(), incoming.event());
    Ok(loaded.save(tx, &after).await?)
}

/// `inventory.updated` on the own topic: nothing if this service appended it (its effect is
/// in the state already); else folded in as a fact, or dead-lettered if it cannot be true.
pub(super) async fn accept(
    journal: &Journal,
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    update: &InventoryUpdated,
) -> Result<(), HandlerError> {
    let envelope = incoming.envelope();
    if journal
        .contains(tx, envelope.event_id)
        .await
        .map_err(read_failed)?
    {
        return Ok(());
    }
    let mut loaded = Loaded::default();
    let order_id = update
        .order_id
        .filter(|_| update.change.concerns_an_order());
    if let Some(order_id) = order_id {
        loaded.read_reservation(tx, order_id).await?;
    }
    let products: Vec<Uuid> = update.lines.iter().map(|l| l.product_id).collect();
    loaded.read_stock(tx, &products).await?;
    let mut after = accept_fact(&loaded.state, update).map_err(HandlerError::permanent)?;
    if let Some(order_id) = order_id {
        after = after.opened_by(order_id, &Cause::from(envelope));
    }
    Ok(loaded.save(tx, &after).await?)
}
