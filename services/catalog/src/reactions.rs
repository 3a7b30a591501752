//! What the service does with the `catalog` topic, its own: events it appended itself are
//! already in its state; events put there by someone else (with kcat) are facts, folded into
//! the state as they are, with their SKU claims.
//!
//! Not here: reactions to other services, which the catalog service has none of.

use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::{Journal, ReadError};
use eventmart_runtime::state::{self, Versioned};
use sqlx::AnyConnection;

use crate::domain::{Catalog, Command, PRODUCT, Product, SKU, Sku};

/// Applies the events of the catalog topic.
#[derive(Clone, Debug)]
pub(crate) struct Reactions {
    /// The service's journal: what it holds was applied when appended.
    pub(crate) journal: Journal,
}

impl Handler for Reactions {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        incoming: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let appended_here = self
            .journal
            .contains(tx, incoming.envelope().event_id)
            .await
            .map_err(read_error)?;
        if appended_here {
            return Ok(());
        }
        record(tx, incoming).await
    }

    fn committed(&self) {
        self.journal.committed();
    }
}

/// Folds an event from outside into the product it is about, and claims the SKU of a new
/// product. A SKU another product holds is recorded anyway (the event is a fact), with a
/// warning.
async fn record(tx: &mut AnyConnection, incoming: &Incoming<'_>) -> Result<(), HandlerError> {
    let event = incoming.event();
    let product_id = event.aggregate_id();
    let current: Versioned<Option<Product>> = state::load(tx, PRODUCT, &product_id).await?;
    let facts = Catalog
        .decide(&current.state, &Command::Record(event.clone()))
        .map_err(|e| {
            HandlerError::permanent(format!("{} {product_id}: {e}", event.event_type()))
        })?;
    if facts.is_empty() {
        return Ok(());
    }
    let is_new = current.state.is_none();
    let after = facts
        .iter()
        .fold(current.state, |s, e| Catalog.evolve(s, e));
    state::save(tx, PRODUCT, &product_id, current.version, &after).await?;
    if let Some(product) = after.filter(|_| is_new) {
        let sku = Sku::normalise(&product.sku);
        let holder = state::claim(tx, SKU, &sku, &product_id).await?;
        if holder != product_id {
            tracing::warn!(
                product_id,
                sku,
                holder,
                event_id = %incoming.envelope().event_id,
                "recorded {} with a SKU another product holds",
                event.event_type()
            );
        }
    }
    Ok(())
}

/// A journal read failure: transient if the database may recover.
fn read_error(error: ReadError) -> HandlerError {
    match error {
        ReadError::Database(e) => HandlerError::from(e),
        other => HandlerError::permanent(other),
    }
}
