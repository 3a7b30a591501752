//! What a consumer's user writes: a [`Handler`] that applies one event inside the transaction
//! the consumer opened, and the two ways it can fail.

use std::future::Future;

use eventmart_events::{Decoded, Envelope, Event};
use sqlx::AnyConnection;

use super::trace::TraceParent;

/// Boxed error a handler fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Applies events to a database, exactly once each.
///
/// The consumer calls [`Handler::handle`] with a transaction it opened and commits that
/// transaction together with the event's id and the partition's next offset. So:
///
/// - every effect must go through `tx`: anything done elsewhere (an HTTP call, another
///   connection, a file) is not rolled back with it and may happen more than once;
/// - `handle` may be called more than once for one event (a batch rolled back because of a
///   transient error or of another record is applied again); only the committed call counts;
/// - events of one partition arrive in order, one at a time; different partitions are handled
///   concurrently, so a handler must be `Sync`;
/// - on SQLite the pool has one connection, which `tx` holds: do not acquire another.
pub trait Handler: Send + Sync + 'static {
    /// Applies `event` through `tx`.
    fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Applies `events` (a partition's new events, in order) through `tx`, one at a time with
    /// [`Handler::handle`] unless overridden. A handler may apply a batch in fewer statements
    /// (a projector rebuilding from offset 0 sees thousands at a time), provided the effect
    /// is the one of handling them one by one. A failure names the index of the event that
    /// failed (or of the first event of the group that did): the events before it are
    /// committed without it, and it is retried alone, then dead-lettered as usual.
    fn handle_batch(
        &self,
        tx: &mut AnyConnection,
        events: &[Incoming<'_>],
    ) -> impl Future<Output = Result<(), (usize, HandlerError)>> + Send {
        async move {
            for (index, event) in events.iter().enumerate() {
                self.handle(tx, event).await.map_err(|e| (index, e))?;
            }
            Ok(())
        }
    }

    /// Called after a batch applied by this handler has committed, e.g. to wake the relay
    /// that publishes what the batch appended to the journal. Does nothing by default.
    fn committed(&self) {}
}

/// An event handed to a [`Handler`], with where it was read.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The decoded record: envelope (gaps filled), event, and its wire format.
    pub decoded: &'a Decoded,
    /// The full topic name.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record key.
    pub key: Option<&'a [u8]>,
    /// How many times `handle` has been called for this record by this consumer, this call
    /// included. A rolled-back batch is retried as a whole, so a record may be handled again
    /// without having failed itself.
    pub attempt: u32,
    pub(crate) trace: Option<TraceParent>,
}

impl<'a> Incoming<'a> {
    /// `decoded` as read at `topic`/`partition`@`offset`, without a key, on its first
    /// attempt: the event a handler's own tests hand it.
    pub fn new(decoded: &'a Decoded, topic: &'a str, partition: i32, offset: i64) -> Self {
        Self {
            decoded,
            topic,
            partition,
            offset,
            key: None,
            attempt: 1,
            trace: decoded
                .envelope
                .traceparent
                .as_deref()
                .and_then(TraceParent::parse),
        }
    }

    /// The event.
    pub fn event(&self) -> &'a Event {
        &self.decoded.event
    }

    /// Its envelope; pass it to [`Envelope::caused_by`] for events this one causes.
    pub fn envelope(&self) -> &'a Envelope {
        &self.decoded.envelope
    }

    /// A W3C `traceparent` for an event caused by this one: the same trace, a new span. `None`
    /// when the record carried no (valid) trace context.
    pub fn child_traceparent(&self) -> Option<String> {
        self.trace.map(|t| t.child().to_string())
    }
}

/// Why a handler could not apply an event; the variant tells the consumer what to do next.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Something the handler depends on is unavailable or busy (the database, a lock, a
    /// network). The transaction is rolled back and the event retried with capped exponential
    /// backoff until it succeeds: it is never skipped, so the partition waits. Use it only
    /// when waiting can fix the problem.
    #[error("{0}")]
    Transient(#[source] BoxError),
    /// The event cannot be applied (it contradicts the handler's state or rules, or the
    /// handler has a bug). The transaction is rolled back and the event retried alone, up to
    /// `max_handler_attempts` times in all; then it goes to the dead-letter topic with this
    /// error as the reason (kind `handler_failed`) and the consumer moves on. The events
    /// before and after it are applied as usual.
    #[error("{0}")]
    Permanent(#[source] BoxError),
    /// The event cannot be applied *yet*: it waits for a fact that has not arrived (an
    /// aggregate it is about is not known yet). The transaction is rolled back and the event
    /// is parked for its record key: the partition moves on at once, the key's later events
    /// queue behind it in order, and it is tried again on a schedule and whenever the
    /// consumer applies something (the fact may have come). Once
    /// [`ConsumerConfig::park_budget`](super::ConsumerConfig::park_budget) has passed since
    /// it was parked, it and the events queued behind it go to the dead-letter topic, in
    /// order (kind `park_expired`), with this error as the reason.
    #[error("{0}")]
    Waiting(#[source] BoxError),
}

impl HandlerError {
    /// A transient failure with this reason.
    pub fn transient(reason: impl Into<BoxError>) -> Self {
        Self::Transient(reason.into())
    }

    /// A permanent failure with this reason.
    pub fn permanent(reason: impl Into<BoxError>) -> Self {
        Self::Permanent(reason.into())
    }

    /// A failure that waits for a fact that has not arrived, with this reason.
    pub fn waiting(reason: impl Into<BoxError>) -> Self {
        Self::Waiting(reason.into())
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Database errors a handler meets are transient when waiting can cure them (the connection
/// failed, the pool is exhausted, a lock or serialization conflict, the server is shutting
/// down or out of resources) and permanent otherwise (a constraint violated, bad SQL, a value
/// that does not decode).
impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        if is_transient(&error) {
            Self::Transient(Box::new(error))
        } else {
            Self::Permanent(Box::new(error))
        }
    }
}

/// Whether a database error is worth retrying as it is.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| transient_code(&code)),
        _ => false,
    }
}

/// Whether a database error means the transaction met another one (a serialization
/// failure, a deadlock, a lock not available, SQLite busy or locked): running it again, at
/// once, is the cure.
pub fn is_contention(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.code().is_some_and(|code| {
        matches!(code.as_ref(), "40001" | "40P01" | "55P03")
            || code
                .parse::<i64>()
                .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
    })
}

/// PostgreSQL SQLSTATE classes 08 (connection), 40 (serialization failure, deadlock),
/// 53 (insufficient resources), 57 (operator intervention), 58 (system error) and 55P03
/// (lock not available); SQLite's BUSY and LOCKED result codes, primary or extended.
fn transient_code(code: &str) -> bool {
    if code.len() == 5 && code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return ["08", "40", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class))
            || code == "55P03";
    }
    code.parse::<i64>()
        .is_ok_and(|extended| matches!(extended & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_lock_and_resource_problems_are_transient() {
        for code in [
            "08006", "40001", "40P01", "53300", "57P01", "55P03", "5", "6", "517",
        ] {
            assert!(transient_code(code), "{code}");
        }
    }

    #[test]
    fn constraint_violations_and_bad_sql_are_permanent() {
        for code in ["23505", "23503", "42601", "42P01", "19", "1", "2067"] {
            assert!(!transient_code(code), "{code}");
        }
    }

    #[test]
    fn pool_exhaustion_is_transient_and_a_missing_row_is_not() {
        assert!(HandlerError::from(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!HandlerError::from(sqlx::Error::RowNotFound).is_transient());
    }
}
