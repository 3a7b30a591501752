//! The journal: every event a component appends, stored in the component's own database in
//! the same transaction as the state change that produced it, and relayed to Kafka from
//! there (a transactional outbox).
//!
//! - [`Journal::append`] writes events inside the caller's transaction, checking the
//!   aggregate's expected version; the caller's state change and its events commit together
//!   or not at all.
//! - [`Relay`] publishes committed events in commit order (so each aggregate's events stay in
//!   order), keyed by aggregate id, Avro-encoded, with the envelope as headers, and marks them
//!   published once the broker has acknowledged them. What was committed but not yet
//!   acknowledged when a process died is published when the relay runs again: consumers see
//!   such an event twice and deduplicate it by `event_id`.
//! - [`Journal::load`] and [`Journal::version`] read an aggregate's history back.
//!
//! Table `event_journal` (migration `9001_journal.sql`): `position` (global append order),
//! `event_id` (unique), `aggregate_id` and `sequence` (unique together; the aggregate's
//! version after the event), `event_type`, `topic` (full name), `event_json` (the event and
//! its envelope as one flat JSON object, the shape kcat users write), and `occurred_at`,
//! `recorded_at`, `published_at` in epoch milliseconds (`published_at` null until the broker
//! acknowledged the event).
//!
//! Not here: deciding what to append (that is each aggregate's [`Decider`]) and consuming
//! events (the [`consumer`] module).
//!
//! [`Decider`]: crate::decider::Decider
//! [`consumer`]: crate::consumer

mod append;
mod producer;
mod read;
mod relay;

use std::fmt;
use std::sync::Arc;

use eventmart_events::{Envelope, Event, Topics};
use sqlx::AnyConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::db::Db;

pub use self::read::{ReadError, StoredEvent};
pub use self::relay::{Relay, RelayConfig, RelayError};

/// A component's journal; cheap to clone, one per database.
///
/// ```ignore
/// let mut tx = db.pool.begin().await?;
/// // … the command's own state change through `&mut *tx` …
/// journal.append(&mut tx, &order_id, ExpectedVersion::NoStream, events).await?;
/// tx.commit().await?;
/// journal.committed(); // the relay publishes now rather than at its next poll
/// ```
#[derive(Clone)]
pub struct Journal {
    db: Db,
    topics: Topics,
    wake: Arc<Notify>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("engine", &self.db.engine)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// The journal in `db` (migrated with the runtime's migrations, as
    /// [`connect_component`](crate::db::connect_component) does), whose events go to the
    /// topics named by `topics`.
    pub fn new(db: Db, topics: Topics) -> Self {
        Self {
            db,
            topics,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The database the journal lives in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The topic names events are appended for.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Tells the relay that events were committed, so that it publishes them now instead of
    /// at its next poll. Call it after every commit of a transaction that appended; calling
    /// it when nothing was appended is harmless.
    pub fn committed(&self) {
        self.wake.notify_one();
    }

    /// Appends `events` to the stream of `aggregate_id`, inside the caller's transaction
    /// `tx`, if the stream is at the `expected` version.
    ///
    /// Every event must belong to `aggregate_id`, and its envelope to it. The events get
    /// sequences `version + 1 …` and positions in append order. Nothing is visible to the
    /// relay (or anyone else) until `tx` commits. On any error roll `tx` back: after a
    /// [`AppendError::Conflict`], reload the aggregate and decide again.
    pub async fn append(
        &self,
        tx: &mut AnyConnection,
        aggregate_id: &str,
        expected: ExpectedVersion,
        events: Vec<(Event, Envelope)>,
    ) -> Result<Appended, AppendError> {
        append::append(
            tx,
            &self.topics,
            aggregate_id,
            expected,
            events,
            append::Publish::Pending,
        )
        .await
    }

    /// Records `event`, read back from the service's own topic, as appended and already
    /// published, after the aggregate's last event; nothing if the journal holds it already.
    /// A state rebuilt from the topics takes its journal back this way, so that what the
    /// service does with its own events afterwards (skip those it appended, number the next
    /// ones) is what it did before.
    pub async fn import(
        &self,
        tx: &mut AnyConnection,
        event: &Event,
        envelope: &Envelope,
    ) -> Result<(), AppendError> {
        if read::contains(tx, envelope.event_id).await? {
            return Ok(());
        }
        append::append(
            tx,
            &self.topics,
            &event.aggregate_id(),
            ExpectedVersion::Any,
            vec![(event.clone(), envelope.clone())],
            append::Publish::Already,
        )
        .await?;
        Ok(())
    }

    /// Every event of `aggregate_id`, oldest first.
    pub async fn load(
        &self,
        conn: &mut AnyConnection,
        aggregate_id: &str,
    ) -> Result<Vec<StoredEvent>, ReadError> {
        read::load(conn, aggregate_id).await
    }

    /// The version of `aggregate_id`: the sequence of its last event, 0 if it has none.
    pub async fn version(
        &self,
        conn: &mut AnyConnection,
        aggregate_id: &str,
    ) -> Result<u64, ReadError> {
        Ok(read::version(conn, aggregate_id).await?)
    }

    /// Whether the journal holds the event `event_id`: a consumer reading its own service's
    /// topic skips such events, whose effect was applied when they were appended.
    pub async fn contains(
        &self,
        conn: &mut AnyConnection,
        event_id: Uuid,
    ) -> Result<bool, ReadError> {
        Ok(read::contains(conn, event_id).await?)
    }

    /// How many committed events the broker has not acknowledged yet.
    pub async fn unpublished(&self) -> Result<u64, ReadError> {
        Ok(read::unpublished(&self.db.pool).await?)
    }
}

/// The version an append expects its aggregate's stream to be at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever it is: the events go after the last one. For events that do not depend on
    /// the aggregate's state.
    Any,
    /// The aggregate has no events yet: the append creates it.
    NoStream,
    /// The aggregate's last event has exactly this sequence (the version its state was
    /// decided on); 0 is the same as [`ExpectedVersion::NoStream`].
    Exactly(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exactly(version) => actual == version,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no events yet"),
            ExpectedVersion::Exactly(version) => write!(f, "version {version}"),
        }
    }
}

/// What an append wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The aggregate.
    pub aggregate_id: String,
    /// Its version after the append (the sequence of the last event appended).
    pub version: u64,
    /// The ids of the events appended, in order.
    pub event_ids: Vec<Uuid>,
    /// Their positions in the journal, in order.
    pub positions: Vec<u64>,
}

/// Why an append failed. In every case the caller's transaction must be rolled back.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The aggregate is not at the expected version: another command changed it since its
    /// state was read. Reload it, decide again and retry (or report a conflict).
    #[error("aggregate {aggregate_id} was expected at {expected} but is at version {actual}")]
    Conflict {
        /// The aggregate.
        aggregate_id: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// Its version as found.
        actual: u64,
    },
    /// An event with this id is already in the journal: the same event was appended twice.
    #[error("event {event_id} is already in the journal")]
    DuplicateEvent {
        /// The event's id.
        event_id: Uuid,
    },
    /// The events are not fit to append (an event of another aggregate, an envelope that
    /// does not match its event, a value its own schema refuses): a bug in the caller.
    #[error("cannot append to {aggregate_id}: {reason}")]
    Invalid {
        /// The aggregate.
        aggregate_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed; transient: retry the whole transaction later.
    #[error("journal database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The current time in epoch milliseconds.
fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::ExpectedVersion;

    #[test]
    fn expected_versions_admit_what_they_say() {
        assert!(ExpectedVersion::Any.admits(0));
        assert!(ExpectedVersion::Any.admits(7));
        assert!(ExpectedVersion::NoStream.admits(0));
        assert!(!ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exactly(3).admits(3));
        assert!(!ExpectedVersion::Exactly(3).admits(4));
        assert!(ExpectedVersion::Exactly(0).admits(0));
    }
}
