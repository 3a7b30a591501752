//! A service's current state: one JSON row per aggregate, changed only through optimistic,
//! versioned writes inside the transaction that appends the change's events.
//!
//! A decision reads the aggregates it decides on with [`load`], folds its events into them,
//! writes them back with [`save`] at the version it read, and appends the events to the
//! journal, all in one transaction. If another transaction changed one of those aggregates in
//! between, [`save`] fails with [`StateError::Conflict`] and the whole decision is made again
//! on fresh state (a command retries; a consumer retries the event). So concurrent decisions
//! never act on stale state, whatever the engine.
//!
//! [`claim`] reserves a value that must be unique across aggregates (an email, a SKU).
//!
//! Not here: what the state means (each service's domain) or how it is queried for reports
//! (the read models).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{AnyConnection, Row};

use crate::command::CommandError;
use crate::consumer::HandlerError;

/// An aggregate's state and the version it was read at (0: it has never been saved).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versioned<S> {
    /// The state (`Default` when never saved).
    pub state: S,
    /// How many times it has been saved.
    pub version: u64,
}

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another transaction saved the aggregate after it was read: decide again on fresh
    /// state.
    #[error("{kind} {id} was changed concurrently (expected version {expected})")]
    Conflict {
        /// The aggregate kind.
        kind: String,
        /// Its id.
        id: String,
        /// The version the caller had read.
        expected: u64,
    },
    /// A stored row does not decode into the state type: a bug or a hand-edited database.
    #[error("{kind} {id}: stored state does not decode: {reason}")]
    Corrupt {
        /// The aggregate kind.
        kind: String,
        /// Its id.
        id: String,
        /// The decoding error.
        reason: String,
    },
    /// The database failed.
    #[error("state database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<StateError> for CommandError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Conflict { .. } => CommandError::Conflict(e.to_string()),
            StateError::Corrupt { .. } => CommandError::Internal(e.to_string()),
            StateError::Database(e) => CommandError::from(e),
        }
    }
}

impl From<StateError> for HandlerError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Conflict { .. } => HandlerError::transient(e),
            StateError::Corrupt { .. } => HandlerError::permanent(e),
            StateError::Database(e) => HandlerError::from(e),
        }
    }
}

/// The state of aggregate `kind`/`id`, `Default` at version 0 if it was never saved.
pub async fn load<S: DeserializeOwned + Default>(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
) -> Result<Versioned<S>, StateError> {
    let row = sqlx::query("SELECT version, state FROM aggregate_state WHERE kind = $1 AND id = $2")
        .bind(kind)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(Versioned::default()),
        Some(row) => Ok(Versioned {
            state: decode(kind, id, &row.try_get::<String, _>(1)?)?,
            version: u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or_default(),
        }),
    }
}

/// Whether aggregate `kind`/`id` was ever saved.
pub async fn exists(conn: &mut AnyConnection, kind: &str, id: &str) -> Result<bool, StateError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT version FROM aggregate_state WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// Writes `state` as aggregate `kind`/`id`, if it is still at `expected` (the version
/// [`load`] returned); returns the new version. Fails with [`StateError::Conflict`] if
/// another transaction saved it in between.
pub async fn save<S: Serialize>(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
    expected: u64,
    state: &S,
) -> Result<u64, StateError> {
    let json = serde_json::to_string(state).map_err(|e| StateError::Corrupt {
        kind: kind.to_owned(),
        id: id.to_owned(),
        reason: e.to_string(),
    })?;
    let now = chrono::Utc::now().timestamp_millis();
    let next = i64::try_from(expected + 1).unwrap_or(i64::MAX);
    let written = if expected == 0 {
        sqlx::query(
            "INSERT INTO aggregate_state (kind, id, version, state, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, id) DO NOTHING",
        )
        .bind(kind)
        .bind(id)
        .bind(next)
        .bind(json)
        .bind(now)
        .execute(&mut *conn)
        .await?
    } else {
        sqlx::query(
            "UPDATE aggregate_state SET version = $3, state = $4, updated_at = $5 \
             WHERE kind = $1 AND id = $2 AND version = $6",
        )
        .bind(kind)
        .bind(id)
        .bind(next)
        .bind(json)
        .bind(now)
        .bind(next - 1)
        .execute(&mut *conn)
        .await?
    };
    if written.rows_affected() == 1 {
        Ok(expected + 1)
    } else {
        Err(StateError::Conflict {
            kind: kind.to_owned(),
            id: id.to_owned(),
            expected,
        })
    }
}

/// Every aggregate of `kind` with an id after `after` (all from the start when `None`), in
/// id order, at most `limit`.
pub async fn list<S: DeserializeOwned>(
    conn: &mut AnyConnection,
    kind: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, Versioned<S>)>, StateError> {
    let rows = sqlx::query(
        "SELECT id, version, state FROM aggregate_state WHERE kind = $1 AND id > $2 \
         ORDER BY id LIMIT $3",
    )
    .bind(kind)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            let version = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or_default();
            let state = decode(kind, &id, &row.try_get::<String, _>(2)?)?;
            Ok((id, Versioned { state, version }))
        })
        .collect()
}

fn decode<S: DeserializeOwned>(kind: &str, id: &str, json: &str) -> Result<S, StateError> {
    serde_json::from_str(json).map_err(|e| StateError::Corrupt {
        kind: kind.to_owned(),
        id: id.to_owned(),
        reason: e.to_string(),
    })
}

/// Claims `value` of `kind` (e.g. an email) for `owner`. Returns the owner that holds it
/// afterwards: `owner` itself if it was free or already `owner`'s, else the other holder.
pub async fn claim(
    conn: &mut AnyConnection,
    kind: &str,
    value: &str,
    owner: &str,
) -> Result<String, StateError> {
    sqlx::query(
        "INSERT INTO unique_claims (kind, value, owner) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, value) DO NOTHING",
    )
    .bind(kind)
    .bind(value)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(holder(conn, kind, value)
        .await?
        .unwrap_or_else(|| owner.to_owned()))
}

/// Who holds `value` of `kind`, if anyone.
pub async fn holder(
    conn: &mut AnyConnection,
    kind: &str,
    value: &str,
) -> Result<Option<String>, StateError> {
    Ok(
        sqlx::query_scalar("SELECT owner FROM unique_claims WHERE kind = $1 AND value = $2")
            .bind(kind)
            .bind(value)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Gives up `owner`'s claim on `value` of `kind` (nothing if someone else holds it).
pub async fn release(
    conn: &mut AnyConnection,
    kind: &str,
    value: &str,
    owner: &str,
) -> Result<(), StateError> {
    sqlx::query("DELETE FROM unique_claims WHERE kind = $1 AND value = $2 AND owner = $3")
        .bind(kind)
        .bind(value)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
