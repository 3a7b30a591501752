//! What the service does with the `users` topic, its own: events it appended itself are
//! already in its state; events put there by someone else (with kcat) are facts, folded into
//! the state as they are, with their email claims.
//!
//! Not here: reactions to other services, which the users service has none of.

use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::{Journal, ReadError};
use eventmart_runtime::state::{self, Versioned};
use sqlx::AnyConnection;

use crate::domain::{Command, EMAIL, Email, USER, User, Users};

/// Applies the events of the users topic.
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

/// Folds an event from outside into the user it is about, and moves the email claim along.
/// An address another user holds is recorded anyway (the event is a fact), with a warning.
async fn record(tx: &mut AnyConnection, incoming: &Incoming<'_>) -> Result<(), HandlerError> {
    let event = incoming.event();
    let user_id = event.aggregate_id();
    let current: Versioned<Option<User>> = state::load(tx, USER, &user_id).await?;
    let facts = Users
        .decide(&current.state, &Command::Record(event.clone()))
        .map_err(|e| HandlerError::permanent(format!("{} {user_id}: {e}", event.event_type())))?;
    if facts.is_empty() {
        return Ok(());
    }
    let before = current.state.as_ref().map(|u| Email::normalise(&u.email));
    let after = facts.iter().fold(current.state, |s, e| Users.evolve(s, e));
    state::save(tx, USER, &user_id, current.version, &after).await?;
    let after = after.map(|u| Email::normalise(&u.email));
    if before == after {
        return Ok(());
    }
    if let Some(old) = before {
        state::release(tx, EMAIL, &old, &user_id).await?;
    }
    if let Some(new) = after {
        let holder = state::claim(tx, EMAIL, &new, &user_id).await?;
        if holder != user_id {
            tracing::warn!(
                user_id,
                email = new,
                holder,
                event_id = %incoming.envelope().event_id,
                "recorded {} with an email address another user holds",
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
