//! The orders service's state as it is rebuilt from the topics (`eventmart service rebuild
//! orders`): each order is the fold of its events on the orders topic, taken as facts the
//! way events typed into the topic are, and the user and product replicas follow the users
//! and catalog topics. What inventory and payments report is a reaction's cause, not a fact:
//! the rebuilt order learns its outcome from the `order.confirmed` or `order.cancelled` it
//! led to.

use std::time::Duration;

use eventmart_events::{Event, Topic};
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Migrations;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::service::rebuild::ServiceState;
use sqlx::AnyConnection;

use crate::reactions::Reactions;

/// The deadline a pending order gets in the rebuilt state. The swap replaces it with the
/// live service's own timer wherever that has one.
const DEADLINE: Duration = Duration::from_secs(30);

/// The orders service's state; see the [module docs](self).
#[derive(Debug)]
pub struct State;

impl ServiceState for State {
    const NAME: &'static str = crate::NAME;
    const OWN: Topic = Topic::Orders;
    const FACTS: &'static [Topic] = &[Topic::Orders, Topic::Users, Topic::Catalog];
    const REACTS_TO: &'static [Topic] = &[Topic::Inventory, Topic::Payments];
    type Replay = Replay;

    fn migrations() -> Migrations {
        Migrations::none()
    }

    fn replay(journal: Journal) -> Replay {
        Replay(Reactions {
            journal,
            deadline: DEADLINE,
        })
    }
}

/// Folds orders and replicas; every reaction is left out.
#[derive(Debug)]
pub struct Replay(Reactions);

impl Handler for Replay {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        match event.event() {
            Event::UserRegistered(_)
            | Event::UserUpdated(_)
            | Event::ProductCreated(_)
            | Event::ProductPriceChanged(_)
            | Event::OrderCreated(_)
            | Event::OrderConfirmed(_)
            | Event::OrderCancelled(_) => self.0.handle(tx, event).await,
            _ => Ok(()),
        }
    }
}
