//! The catalog service's state as it is rebuilt from the topics (`eventmart service rebuild
//! catalog`): the fold of its own topic, every event taken as a fact the way one typed into
//! the topic is (see `reactions`).

use eventmart_events::Topic;
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Migrations;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::service::rebuild::ServiceState;
use sqlx::AnyConnection;

use crate::reactions::Reactions;

/// The catalog service's state; see the [module docs](self).
#[derive(Debug)]
pub struct State;

impl ServiceState for State {
    const NAME: &'static str = crate::NAME;
    const OWN: Topic = Topic::Catalog;
    const FACTS: &'static [Topic] = &[Topic::Catalog];
    const REACTS_TO: &'static [Topic] = &[];
    type Replay = Replay;

    fn migrations() -> Migrations {
        Migrations::none()
    }

    fn replay(journal: Journal) -> Replay {
        Replay(Reactions { journal })
    }
}

/// Folds the catalog topic's events.
#[derive(Debug)]
pub struct Replay(Reactions);

impl Handler for Replay {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        self.0.handle(tx, event).await
    }
}
