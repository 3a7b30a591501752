//! The payments service's state as it is rebuilt from the topics (`eventmart service rebuild
//! payments`): each payment is the fold of the facts it waits for (`order.created`, the
//! reservation, a cancellation) and of its own events, and each user's credit the sum of
//! their charges and refunds. Nothing is decided again: a refund the cancellation led to is
//! on the payments topic.

use eventmart_events::Topic;
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Migrations;
use eventmart_runtime::journal::Journal;
use eventmart_runtime::service::rebuild::ServiceState;
use sqlx::AnyConnection;

use crate::domain::{Payments, Provider};
use crate::reactions::Reactions;
use crate::store::Store;

/// The payments service's state; see the [module docs](self).
#[derive(Debug)]
pub struct State;

impl ServiceState for State {
    const NAME: &'static str = crate::NAME;
    const OWN: Topic = Topic::Payments;
    const FACTS: &'static [Topic] = &[Topic::Payments, Topic::Orders, Topic::Inventory];
    const REACTS_TO: &'static [Topic] = &[Topic::Orders, Topic::Inventory];
    type Replay = Replay;

    fn migrations() -> Migrations {
        Migrations::none()
    }

    fn replay(journal: Journal) -> Replay {
        Replay(Reactions {
            store: Store {
                journal,
                // A charge the rebuilt state finds in flight is the live one's: the swap
                // carries its timer over.
                provider_latency: std::time::Duration::ZERO,
            },
            // Never asked: folding decides nothing.
            payments: Payments::new(Provider::new(0)),
        })
    }
}

/// Folds payments and credits.
#[derive(Debug)]
pub struct Replay(Reactions);

impl Handler for Replay {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        self.0.fold(tx, event).await
    }
}
