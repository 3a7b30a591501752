//! What the inventory does on the events it consumes, each inside the consumer's
//! transaction:
//!
//! - `orders` topic ([`saga`]): `order.created` reserves, `order.cancelled` releases,
//!   `order.confirmed` sells.
//! - `catalog` topic and the service's own `inventory` topic ([`facts`]): a new product gets
//!   an empty stock row; a stock change this service did not append (typed into kcat) is
//!   folded in as a fact.
//!
//! Every other event is none of the inventory's business and is passed over.

pub(crate) mod facts;
mod saga;

use eventmart_events::Event;
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::journal::{AppendError, Journal, ReadError};
use sqlx::AnyConnection;

/// The inventory's consumer handler.
#[derive(Debug, Clone)]
pub(crate) struct Reactions {
    journal: Journal,
}

impl Reactions {
    /// Reactions that append to `journal`.
    pub(crate) fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

impl Handler for Reactions {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        match event.event() {
            Event::OrderCreated(order) => saga::reserve(&self.journal, tx, event, order).await,
            Event::OrderCancelled(order) => {
                saga::release(&self.journal, tx, event, order.order_id).await
            }
            Event::OrderConfirmed(order) => {
                saga::sell(&self.journal, tx, event, order.order_id).await
            }
            Event::ProductCreated(_) => facts::track_product(tx, event).await,
            Event::InventoryUpdated(update) => {
                facts::accept(&self.journal, tx, event, update).await
            }
            _ => Ok(()),
        }
    }

    fn committed(&self) {
        self.journal.committed();
    }
}

/// A journal read that failed: retried when the database may recover.
fn read_failed(error: ReadError) -> HandlerError {
    match error {
        ReadError::Database(e) => HandlerError::from(e),
        ReadError::Undecodable { .. } => HandlerError::permanent(error),
    }
}

/// An append that failed. A conflict or a duplicate means another transaction got there
/// first: retried, the event then finds its effect already applied.
fn append_failed(error: AppendError) -> HandlerError {
    match error {
        AppendError::Database(e) => HandlerError::from(e),
        AppendError::Conflict { .. } | AppendError::DuplicateEvent { .. } => {
            HandlerError::transient(error)
        }
        AppendError::Invalid { .. } => HandlerError::permanent(error),
    }
}
