//! The projector: applies each event of `catalog` and `inventory` to the view, exactly once,
//! inside the consumer's transaction (so the view and the consumer's offsets commit
//! together). Events about no product are skipped; an `inventory.updated` the inventory
//! refuses moves nothing ([`stock`](crate::view::stock)); nothing is ever emitted.

use chrono::{DateTime, Utc};
use eventmart_events::Event;
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Engine;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::store::stock::Move;
use crate::store::{products, stock};
use crate::view::{self, Availability, Change};

/// The consumer's handler; see the [module docs](self).
#[derive(Debug)]
pub struct Projector {
    /// The database engine, for the one statement whose syntax differs.
    pub(crate) engine: Engine,
}

impl Handler for Projector {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let envelope = event.envelope();
        if let Some((product_id, change)) = view::catalog_change(event.event(), envelope) {
            return self
                .change(tx, product_id, &change, envelope.occurred_at)
                .await;
        }
        let Event::InventoryUpdated(update) = event.event() else {
            return Ok(());
        };
        let order_id = update
            .order_id
            .filter(|_| update.change.concerns_an_order());
        let held = match order_id {
            Some(order_id) => stock::reservation_for_update(tx, self.engine, order_id).await?,
            None => None,
        };
        let change = match view::stock::apply(update, held.as_ref()) {
            Ok(change) => change,
            Err(refused) => {
                // The inventory dead-letters it, so it changed no stock there either.
                tracing::info!(event_id = %envelope.event_id, "{refused}");
                return Ok(());
            }
        };
        if let Some((order_id, reservation)) = &change.reservation
            && !stock::save_reservation(tx, *order_id, reservation, held.is_some()).await?
        {
            // Another partition's event about the same order got there first: apply this
            // one again on top of it.
            return Err(HandlerError::transient(format!(
                "order {order_id}'s reservation was added concurrently"
            )));
        }
        // By product id, so that two events locking the same products lock them in the
        // same order.
        for (&product_id, &delta) in &change.moves {
            let recorded = stock::record_move(
                tx,
                &Move {
                    product_id,
                    event_id: envelope.event_id,
                    change: update.change,
                    delta,
                    occurred_at: envelope.occurred_at,
                },
            )
            .await?;
            if recorded {
                self.change(tx, product_id, &Change::Moved(delta), envelope.occurred_at)
                    .await?;
            }
        }
        Ok(())
    }
}

impl Projector {
    /// Applies `change`, from an event that occurred at `at`, to product `product_id`'s row.
    async fn change(
        &self,
        tx: &mut AnyConnection,
        product_id: Uuid,
        change: &Change,
        at: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let current = products::load_for_update(tx, self.engine, product_id).await?;
        let next = Availability::fold(current.clone(), product_id, change, at);
        match current {
            None => {
                if !products::insert(tx, &next).await? {
                    // Another partition's event about the same product got there first:
                    // apply this one again on top of it.
                    return Err(HandlerError::transient(format!(
                        "product {product_id} was added to the view concurrently"
                    )));
                }
            }
            Some(current) if current != next => products::update(tx, &next).await?,
            Some(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
