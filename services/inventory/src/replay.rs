//! The inventory's state as it is rebuilt from the topics (`eventmart service rebuild
//! inventory`): stock and reservations are the fold of its own topic, and a product's row
//! starts with the catalog's `product.created`. What orders ask for is a reaction, not a
//! fact: the rebuilt state learns it from the stock changes the inventory decided.

use eventmart_events::{Event, Topic};
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Migrations;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::service::rebuild::ServiceState;
use sqlx::AnyConnection;

use crate::reactions::facts;

/// The inventory's state; see the [module docs](self).
#[derive(Debug)]
pub struct State;

impl ServiceState for State {
    const NAME: &'static str = crate::NAME;
    const OWN: Topic = Topic::Inventory;
    const FACTS: &'static [Topic] = &[Topic::Inventory, Topic::Catalog];
    const REACTS_TO: &'static [Topic] = &[Topic::Orders];
    type Replay = Replay;

    fn migrations() -> Migrations {
        Migrations::none()
    }

    fn replay(_journal: Journal) -> Replay {
        Replay
    }
}

/// Folds stock changes and new products.
#[derive(Debug)]
pub struct Replay;

impl Handler for Replay {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        match event.event() {
            Event::ProductCreated(_) => facts::track_product(tx, event).await,
            Event::InventoryUpdated(update) => facts::fold(tx, event, update).await,
            _ => Ok(()),
        }
    }
}
