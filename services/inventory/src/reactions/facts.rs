//! Facts from outside the saga: products the catalog announces, and stock changes on the
//! inventory's own topic that this service did not append (typed into kcat).

use eventmart_events::Event;
use eventmart_events::inventory::InventoryUpdated;
use eventmart_runtime::consumer::{HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::Journal;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::read_failed;
use crate::domain::{Inventory, InventoryDecider, accept_fact, reservation_cause};
use crate::store::Loaded;

/// `product.created`: the product gets an empty stock row, unless it has one.
pub(crate) async fn track_product(
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
    let (loaded, order_id) = load(tx, update).await?;
    let after = accept_fact(&loaded.state, update).map_err(HandlerError::permanent)?;
    save(tx, &loaded, after, order_id, incoming).await
}

/// `inventory.updated` replayed into a state rebuilt from the topic: folded as it is. It was
/// checked when first applied (what the service dead-lettered, a rebuild passes over); the
/// checks would fail here when a replay interleaves the topic's partitions otherwise than the
/// first time (a reservation read before the restock it drew on).
pub(crate) async fn fold(
    tx: &mut AnyConnection,
    incoming: &Incoming<'_>,
    update: &InventoryUpdated,
) -> Result<(), HandlerError> {
    let (loaded, order_id) = load(tx, update).await?;
    let after = InventoryDecider.evolve(loaded.state.clone(), incoming.event());
    save(tx, &loaded, after, order_id, incoming).await
}

/// The rows `update` changes, and the order it concerns.
async fn load(
    tx: &mut AnyConnection,
    update: &InventoryUpdated,
) -> Result<(Loaded, Option<Uuid>), HandlerError> {
    let mut loaded = Loaded::default();
    let order_id = update
        .order_id
        .filter(|_| update.change.concerns_an_order());
    if let Some(order_id) = order_id {
        loaded.read_reservation(tx, order_id).await?;
    }
    let products: Vec<Uuid> = update.lines.iter().map(|l| l.product_id).collect();
    loaded.read_stock(tx, &products).await?;
    Ok((loaded, order_id))
}

/// Saves `after`, its reservation (if any) opened by the flow `incoming` names.
async fn save(
    tx: &mut AnyConnection,
    loaded: &Loaded,
    after: Inventory,
    order_id: Option<Uuid>,
    incoming: &Incoming<'_>,
) -> Result<(), HandlerError> {
    let after = match order_id {
        Some(order_id) => after.opened_by(order_id, &reservation_cause(incoming.envelope())),
        None => after,
    };
    Ok(loaded.save(tx, &after).await?)
}
