//! Writing a change to one order's payment, all in the caller's transaction: the payment's
//! state, the credit of the users its events charge or refund, its `charge` timer, and the
//! events decided.
//!
//! The `charge` timer is set exactly while the payment is CHARGING: [`Store::write`] sets it
//! (due after the provider's latency) when a change makes the payment CHARGING and removes it
//! when a change ends the charge some other way.
//!
//! Not here: what to change (the [`domain`](crate::domain)) or when (reactions, timers, API).

use std::collections::BTreeMap;
use std::time::Duration;

use eventmart_events::{Cause, Envelope, Event};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::journal::{AppendError, Appended, ExpectedVersion, Journal, ReadError};
use eventmart_runtime::state::{self, StateError, Versioned};
use eventmart_runtime::timers;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Credit, Payment, Status, credit_change};

/// The aggregate kind of an order's payment (id: the order id).
pub(crate) const PAYMENT: &str = "payment";

/// The aggregate kind of a user's credit (id: the user id).
pub(crate) const CREDIT: &str = "credit";

/// The timer kind of a charge at the provider (id: the order id).
pub(crate) const CHARGE_TIMER: &str = "charge";

/// Why a change could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Reading or saving state failed (a concurrent change: decide again).
    #[error(transparent)]
    State(#[from] StateError),
    /// Appending the events failed.
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Setting or removing the timer failed.
    #[error("charge timer: {0}")]
    Timer(#[from] sqlx::Error),
}

impl From<StoreError> for HandlerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::State(e) => e.into(),
            StoreError::Timer(e) | StoreError::Append(AppendError::Database(e)) => e.into(),
            StoreError::Append(e @ AppendError::Conflict { .. }) => HandlerError::transient(e),
            // Deterministic ids and the payment's status make these impossible; never apply
            // an effect twice if they happen anyway.
            StoreError::Append(e) => HandlerError::permanent(e),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::State(e) => e.into(),
            StoreError::Append(e) => e.into(),
            StoreError::Timer(e) => e.into(),
        }
    }
}

/// A journal read failure as a handler error: a database failure is retried, a row that
/// does not decode is not.
pub(crate) fn read_failed(e: ReadError) -> HandlerError {
    match e {
        ReadError::Database(e) => e.into(),
        e @ ReadError::Undecodable { .. } => HandlerError::permanent(e),
    }
}

/// The payment of `order_id` and its version (a default payment at version 0 if never seen).
pub(crate) async fn load_payment(
    conn: &mut AnyConnection,
    order_id: Uuid,
) -> Result<Versioned<Payment>, StateError> {
    state::load(conn, PAYMENT, &order_id.to_string()).await
}

/// The credit of `user_id` and its version (nothing outstanding at version 0 if never seen).
pub(crate) async fn load_credit(
    conn: &mut AnyConnection,
    user_id: Uuid,
) -> Result<Versioned<Credit>, StateError> {
    state::load(conn, CREDIT, &user_id.to_string()).await
}

/// The envelope of `event`, which continues the order's flow from `cause` at `step`; a new
/// flow when the cause is unknown (a payment only ever seen on its own topic).
pub(crate) fn continuing(event: &Event, cause: Option<&Cause>, step: &str) -> Envelope {
    match cause {
        Some(cause) => Envelope::reacting_to(event, cause, step),
        None => Envelope::new(event),
    }
}

/// A change to one order's payment, built up and then handed to [`Store::write`].
#[derive(Debug)]
pub(crate) struct Change {
    order_id: Uuid,
    before: Versioned<Payment>,
    /// The payment after the change.
    pub(crate) after: Payment,
    /// Payment events that happened elsewhere (typed into the topic): they change credit but
    /// are not appended.
    observed: Vec<Event>,
    /// Events decided now, to append.
    decided: Vec<(Event, Envelope)>,
    /// The version of each user's credit the decision read: the credit is written at it.
    credit_read: BTreeMap<Uuid, u64>,
}

impl Change {
    /// A change to the payment of `order_id`, as read.
    pub(crate) fn new(order_id: Uuid, before: Versioned<Payment>) -> Self {
        let after = before.state.clone();
        Self {
            order_id,
            before,
            after,
            observed: Vec::new(),
            decided: Vec::new(),
            credit_read: BTreeMap::new(),
        }
    }

    /// Records that what is decided rests on `user_id`'s credit as read at `version`.
    pub(crate) fn decided_on_credit(&mut self, user_id: Uuid, version: u64) {
        self.credit_read.insert(user_id, version);
    }

    /// The payment as read.
    pub(crate) fn before(&self) -> &Versioned<Payment> {
        &self.before
    }

    /// Records a fact learnt from another service (`order.created`, a reservation, a
    /// cancellation).
    pub(crate) fn learn(&mut self, event: &Event) {
        self.after = std::mem::take(&mut self.after).evolve(event);
    }

    /// Records a payment event that happened elsewhere.
    pub(crate) fn observe(&mut self, event: &Event) {
        self.learn(event);
        self.observed.push(event.clone());
    }

    /// Records events decided now, to be appended.
    pub(crate) fn decide(&mut self, events: Vec<(Event, Envelope)>) {
        for (event, _) in &events {
            self.learn(event);
        }
        self.decided.extend(events);
    }
}

/// Writes changes to payments; see the [module docs](self).
#[derive(Clone, Debug)]
pub(crate) struct Store {
    /// The service's journal.
    pub(crate) journal: Journal,
    /// How long the provider takes to answer a charge.
    pub(crate) provider_latency: Duration,
}

impl Store {
    /// Writes `change` through `tx`: the payment (at the version it was read), the credits,
    /// the timer, and the decided events. Returns the payment afterwards and what was
    /// appended, if anything.
    pub(crate) async fn write(
        &self,
        tx: &mut AnyConnection,
        change: Change,
    ) -> Result<(Payment, Option<Appended>), StoreError> {
        let Change {
            order_id,
            before,
            after,
            observed,
            decided,
            credit_read,
        } = change;
        let id = order_id.to_string();
        state::save(tx, PAYMENT, &id, before.version, &after).await?;

        let mut credit: BTreeMap<Uuid, i64> = BTreeMap::new();
        let events = observed
            .iter()
            .chain(decided.iter().map(|(event, _)| event));
        for (user_id, cents) in events.filter_map(|event| credit_change(&after, event)) {
            *credit.entry(user_id).or_default() += cents;
        }
        for (user_id, cents) in credit {
            let current = load_credit(tx, user_id).await?;
            let changed = current.state.changed_by(cents);
            // At the version the decision read, if it read one: a credit changed since then
            // fails the write as a conflict, and the decision is taken again.
            let expected = credit_read
                .get(&user_id)
                .copied()
                .unwrap_or(current.version);
            state::save(tx, CREDIT, &user_id.to_string(), expected, &changed).await?;
        }

        let was_charging = before.state.status == Status::Charging;
        let is_charging = after.status == Status::Charging;
        if is_charging && !was_charging {
            let latency =
                chrono::Duration::from_std(self.provider_latency).unwrap_or(chrono::Duration::MAX);
            let due = chrono::Utc::now()
                .checked_add_signed(latency)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            timers::schedule(tx, CHARGE_TIMER, &id, due).await?;
        } else if was_charging && !is_charging {
            timers::cancel(tx, CHARGE_TIMER, &id).await?;
        }

        let appended = if decided.is_empty() {
            None
        } else {
            Some(
                self.journal
                    .append(tx, &id, ExpectedVersion::Any, decided)
                    .await?,
            )
        };
        Ok((after, appended))
    }
}
