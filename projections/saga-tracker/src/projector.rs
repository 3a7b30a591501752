//! The projector: adds each event of `orders`, `inventory` and `payments` to its saga's
//! steps and recomputes the saga from all of them, exactly once, inside the consumer's
//! transaction (so the tables and the consumer's offsets commit together). Events about no
//! order are skipped; nothing is ever emitted.
//!
//! The saga's row is computed from the whole set of its steps each time (a saga has a
//! handful), which is what makes it independent of arrival order.

use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Engine;
use sqlx::AnyConnection;

use crate::saga::{self, Saga};
use crate::store;

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
        let Some(step) = saga::step_of(event.event(), event.envelope()) else {
            return Ok(());
        };
        let correlation_id = step.correlation_id;
        store::add_step(tx, &step).await?;
        // Locked before the steps are read: a concurrent step of the same saga either
        // committed already (and is read) or waits for this transaction and reads this step.
        let current = store::load_for_update(tx, self.engine, correlation_id).await?;
        let steps = store::steps(tx, correlation_id).await?;
        let Some(next) = Saga::of(correlation_id, &steps) else {
            return Ok(());
        };
        match current {
            None => {
                if !store::insert(tx, &next).await? {
                    // Another partition's step of the same saga got there first: apply this
                    // one again on top of it.
                    return Err(HandlerError::transient(format!(
                        "saga {correlation_id} was added concurrently"
                    )));
                }
            }
            Some(current) if current != next => store::update(tx, &next).await?,
            Some(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
