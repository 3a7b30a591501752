//! Recording what happens to orders, inside the one transaction of a command, a reaction or
//! a timer: the shapes stored per aggregate kind, and a decision's fold, save, append and
//! deadline, which must always go together.
//!
//! Not here: the rules (the domain's [`OrderDecider`]), or where a command comes from.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use eventmart_events::{Cause, Envelope, Event};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::{AppendError, Appended, ExpectedVersion, Journal, ReadError};
use eventmart_runtime::state::{self, StateError, Versioned};
use eventmart_runtime::timers;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Command, Order, OrderDecider, OrderError};

/// State kind of an order ([`StoredOrder`]), by order id.
pub(crate) const ORDER: &str = "order";
/// State kind of a user replica ([`crate::domain::User`]), by user id.
pub(crate) const USER: &str = "user";
/// State kind of a product replica ([`crate::domain::Product`]), by product id.
pub(crate) const PRODUCT: &str = "product";
/// Timer kind of an order's deadline, by order id.
pub(crate) const DEADLINE: &str = "order_deadline";

/// An order as stored: the domain's order and the cause of its flow (its `order.created`),
/// which every later event of the order that has no other cause continues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredOrder {
    /// The order.
    #[serde(flatten)]
    pub(crate) order: Order,
    /// Its `order.created`: event id, correlation id and trace.
    pub(crate) cause: Cause,
}

/// Why a decision about an order could not be recorded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The order is not (yet) known here.
    #[error("order {0} is not known here")]
    UnknownOrder(Uuid),
    /// The domain refused the command.
    #[error(transparent)]
    Refused(#[from] OrderError),
    /// Reading or saving state failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Appending the events failed.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Reading the journal failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The database failed (timers).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<RecordError> for CommandError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::UnknownOrder(id) => {
                CommandError::NotFound(format!("order {id} does not exist"))
            }
            // Where the order stands is in the way: a conflict with its state.
            RecordError::Refused(
                refusal @ (OrderError::Confirmed(_) | OrderError::Cancelled(_)),
            ) => CommandError::refused(refusal.code(), refusal.to_string()),
            RecordError::Refused(refusal) => {
                CommandError::rejected(refusal.code(), refusal.to_string())
            }
            RecordError::State(e) => e.into(),
            RecordError::Append(e) => e.into(),
            RecordError::Read(e) => e.into(),
            RecordError::Database(e) => e.into(),
        }
    }
}

impl From<RecordError> for HandlerError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::State(e) => e.into(),
            RecordError::Database(e) | RecordError::Append(AppendError::Database(e)) => e.into(),
            RecordError::Read(ReadError::Database(e)) => e.into(),
            // Another writer got there first: deciding again on fresh state settles it.
            e @ RecordError::Append(
                AppendError::Conflict { .. } | AppendError::DuplicateEvent { .. },
            ) => HandlerError::transient(e),
            e => HandlerError::permanent(e),
        }
    }
}

/// The order `order_id` and the version it was read at; `None` if it is not known.
pub(crate) async fn load_order(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<Versioned<Option<StoredOrder>>, StateError> {
    state::load(conn, ORDER, &order_id.to_string()).await
}

/// When an order created at `created_at` is due to be cancelled if still pending.
pub(crate) fn deadline_of(created_at: DateTime<Utc>, deadline: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(deadline)
        .ok()
        .and_then(|delta| created_at.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Saves a new order with the cause of its flow and sets its deadline, `deadline` after the
/// order was placed, or after `now` if that is later: an order learnt of late (typed in with
/// an old timestamp, or read again from the start of the topic) still gets its full time
/// for the saga to run. Fails with a conflict if the order exists already.
pub(crate) async fn create_order(
    conn: &mut AnyConnection,
    order: Order,
    cause: Cause,
    deadline: Duration,
    now: DateTime<Utc>,
) -> Result<(), RecordError> {
    let id = order.order_id.to_string();
    let due = deadline_of(order.created_at.max(now), deadline);
    state::save(conn, ORDER, &id, 0, &StoredOrder { order, cause }).await?;
    timers::schedule(conn, DEADLINE, &id, due).await?;
    Ok(())
}

/// Folds `event` into a stored order read at `version`, saves it, and clears its deadline
/// once it is final. For facts that are recorded as they are, without deciding anything.
pub(crate) async fn fold_order(
    conn: &mut AnyConnection,
    loaded: Versioned<StoredOrder>,
    event: &Event,
) -> Result<Order, RecordError> {
    let Versioned {
        state: StoredOrder { order, cause },
        version,
    } = loaded;
    let order_id = order.order_id;
    let id = order_id.to_string();
    let order = OrderDecider
        .evolve(Some(order), event)
        .ok_or(RecordError::UnknownOrder(order_id))?;
    let stored = StoredOrder { order, cause };
    state::save(conn, ORDER, &id, version, &stored).await?;
    if stored.order.is_final() {
        timers::cancel(conn, DEADLINE, &id).await?;
    }
    Ok(stored.order)
}

/// What deciding on an existing order did.
#[derive(Debug)]
pub(crate) struct Transition {
    /// The order afterwards.
    pub(crate) order: Order,
    /// What was appended; `None` if the decision was moot or already recorded.
    pub(crate) appended: Option<Appended>,
}

/// Decides `command` on order `order_id` and records the outcome: the events (each with the
/// envelope `envelope` gives it from the event and the order's stored cause) folded into
/// the order, the order saved at the version read, the events appended, and the deadline
/// cleared once the order is final.
///
/// If an event's id is in the journal already, the same cause was handled before: nothing
/// is done again.
pub(crate) async fn transition(
    journal: &Journal,
    conn: &mut AnyConnection,
    order_id: Uuid,
    command: &Command,
    envelope: impl Fn(&Event, &Cause) -> Envelope,
) -> Result<Transition, RecordError> {
    let Versioned { state, version } = load_order(conn, order_id).await?;
    let StoredOrder { order, cause } = state.ok_or(RecordError::UnknownOrder(order_id))?;
    let events = OrderDecider.decide(&Some(order.clone()), command)?;
    let unchanged = |order| Transition {
        order,
        appended: None,
    };
    if events.is_empty() {
        return Ok(unchanged(order));
    }
    let mut enveloped = Vec::with_capacity(events.len());
    for event in events {
        let envelope = envelope(&event, &cause);
        if journal.contains(conn, envelope.event_id).await? {
            return Ok(unchanged(order));
        }
        enveloped.push((event, envelope));
    }
    let order = enveloped
        .iter()
        .try_fold(order, |order, (event, _)| {
            OrderDecider.evolve(Some(order), event)
        })
        .ok_or(RecordError::UnknownOrder(order_id))?;
    let id = order_id.to_string();
    let stored = StoredOrder { order, cause };
    state::save(conn, ORDER, &id, version, &stored).await?;
    let appended = journal
        .append(conn, &id, ExpectedVersion::Any, enveloped)
        .await?;
    if stored.order.is_final() {
        timers::cancel(conn, DEADLINE, &id).await?;
    }
    Ok(Transition {
        order: stored.order,
        appended: Some(appended),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_falls_its_duration_after_the_order_was_placed() {
        let placed = eventmart_events::timestamp::from_millis(1_714_564_800_123).unwrap();
        assert_eq!(
            deadline_of(placed, Duration::from_secs(30)),
            placed + TimeDelta::seconds(30)
        );
        assert_eq!(deadline_of(placed, Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn a_stored_order_keeps_the_orders_fields_at_the_top_with_its_cause() {
        let created = eventmart_events::samples::order_created();
        let order = OrderDecider.replay([&created]).unwrap();
        let envelope = Envelope::new(&created);
        let stored = StoredOrder {
            order,
            cause: Cause::from(&envelope),
        };
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(json["status"], "PENDING");
        assert_eq!(json["cause"]["event_id"], envelope.event_id.to_string());
        let back: StoredOrder = serde_json::from_value(json).unwrap();
        assert_eq!(back, stored);
    }
}
