//! The tracker's two tables (migration `0001_saga_tracker.sql`; `0002` indexes a walk by
//! state): `saga_steps`, one row per event of a saga, and `sagas`, one row per saga computed
//! from its steps. The projector writes them inside the consumer's transaction; the API reads
//! them. The same SQL runs on SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::db::Engine;
use eventmart_runtime::query::QueryError;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::saga::{Saga, SagaStep, Service, State, Step};

/// Why the tables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: a bug or a hand-edited database. Rebuild the tracker.
    #[error("saga {correlation_id}: stored row does not decode: {reason}")]
    Corrupt {
        /// The saga (as stored).
        correlation_id: String,
        /// What is wrong with the row.
        reason: String,
    },
}

impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => QueryError::from(error),
            StoreError::Corrupt { .. } => QueryError::Internal(error.to_string()),
        }
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => HandlerError::from(error),
            StoreError::Corrupt { .. } => HandlerError::permanent(error),
        }
    }
}

/// The columns of `sagas`, in the order [`Columns::bind`] binds them.
const SAGA_COLUMNS: &str = "correlation_id, order_id, state, step, waiting_for, started_at, \
                            last_event_at, step_count";

/// The columns of `saga_steps`, in the order [`add_step`] binds them.
const STEP_COLUMNS: &str =
    "correlation_id, event_id, event_type, step, service, order_id, causation_id, occurred_at";

/// Adds `step` to its saga unless it is there already.
pub(crate) async fn add_step(tx: &mut AnyConnection, step: &SagaStep) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO saga_steps ({STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (correlation_id, event_id) DO NOTHING"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(step.correlation_id.to_string())
        .bind(step.event_id.to_string())
        .bind(step.event_type.as_str())
        .bind(step.step.as_str())
        .bind(step.service().as_str())
        .bind(step.order_id.to_string())
        .bind(step.causation_id.map(|id| id.to_string()))
        .bind(step.occurred_at.timestamp_millis())
        .execute(tx)
        .await?;
    Ok(())
}

/// Saga `correlation_id`'s steps, by `occurred_at` then event id.
pub(crate) async fn steps(
    conn: &mut AnyConnection,
    correlation_id: Uuid,
) -> Result<Vec<SagaStep>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM saga_steps WHERE correlation_id = $1 \
         ORDER BY occurred_at, event_id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(correlation_id.to_string())
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode_step).collect()
}

/// Saga `correlation_id`, if it has a row. On PostgreSQL the row stays locked until `tx`
/// ends, so that a concurrent step of the same saga waits for this one and then sees it (on
/// SQLite the transaction holds the only connection, which serialises every writer anyway).
pub(crate) async fn load_for_update(
    tx: &mut AnyConnection,
    engine: Engine,
    correlation_id: Uuid,
) -> Result<Option<Saga>, StoreError> {
    let lock = engine.for_update();
    let sql = format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE correlation_id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(correlation_id.to_string())
        .fetch_optional(tx)
        .await?;
    row.as_ref().map(decode_saga).transpose()
}

/// Saga `correlation_id`, if it has a row.
pub(crate) async fn load(
    conn: &mut AnyConnection,
    correlation_id: Uuid,
) -> Result<Option<Saga>, StoreError> {
    let sql = format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE correlation_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(correlation_id.to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(decode_saga).transpose()
}

/// Stores `saga` as a new row; `false` if it has a row already (another transaction
/// inserted it since this one looked).
pub(crate) async fn insert(tx: &mut AnyConnection, saga: &Saga) -> Result<bool, StoreError> {
    let sql = format!(
        "INSERT INTO sagas ({SAGA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (correlation_id) DO NOTHING"
    );
    let done = Columns::of(saga)
        .bind(sqlx::query(sqlx::AssertSqlSafe(sql)))
        .execute(tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Overwrites the saga's row with `saga`.
pub(crate) async fn update(tx: &mut AnyConnection, saga: &Saga) -> Result<(), StoreError> {
    let query = sqlx::query(
        "UPDATE sagas SET order_id = $2, state = $3, step = $4, waiting_for = $5, \
         started_at = $6, last_event_at = $7, step_count = $8 WHERE correlation_id = $1",
    );
    Columns::of(saga).bind(query).execute(tx).await?;
    Ok(())
}

/// Which sagas a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Only sagas in one of these states; every state if empty.
    pub(crate) states: Vec<State>,
    /// Only sagas whose last event happened before this instant (epoch milliseconds).
    pub(crate) quiet_since: Option<i64>,
}

/// Up to `limit` sagas that `filter` lets through, by correlation id, after saga `after`:
/// the order a walk through the pages takes, as a saga's correlation id never changes.
pub(crate) async fn walk(
    conn: &mut AnyConnection,
    filter: &Filter,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Saga>, StoreError> {
    let (mut sql, mut next) = selected(filter);
    if after.is_some() {
        sql.push_str(&format!(" AND correlation_id > ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY correlation_id LIMIT ${next}"));
    let mut query = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), filter);
    if let Some(after) = after {
        query = query.bind(after.to_string());
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    rows.iter().map(decode_saga).collect()
}

/// Up to `limit` sagas that `filter` lets through, the longest quiet first: oldest last
/// event first, ties by correlation id.
pub(crate) async fn quietest(
    conn: &mut AnyConnection,
    filter: &Filter,
    limit: u32,
) -> Result<Vec<Saga>, StoreError> {
    let (mut sql, next) = selected(filter);
    sql.push_str(&format!(
        " ORDER BY last_event_at, correlation_id LIMIT ${next}"
    ));
    let query = bind_filter(sqlx::query(sqlx::AssertSqlSafe(sql)), filter);
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    rows.iter().map(decode_saga).collect()
}

/// The statement that selects the sagas `filter` lets through, its placeholders numbered
/// from `$1` and bound by [`bind_filter`]; and the number of the next placeholder.
fn selected(filter: &Filter) -> (String, usize) {
    let mut sql = format!("SELECT {SAGA_COLUMNS} FROM sagas WHERE 1 = 1");
    let mut next = 1;
    if !filter.states.is_empty() {
        let placeholders: Vec<String> = (next..next + filter.states.len())
            .map(|n| format!("${n}"))
            .collect();
        sql.push_str(&format!(" AND state IN ({})", placeholders.join(", ")));
        next += filter.states.len();
    }
    if filter.quiet_since.is_some() {
        sql.push_str(&format!(" AND last_event_at < ${next}"));
        next += 1;
    }
    (sql, next)
}

/// Binds the values of [`selected`]'s placeholders.
fn bind_filter<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    filter: &Filter,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for state in &filter.states {
        query = query.bind(state.as_str());
    }
    if let Some(quiet_since) = filter.quiet_since {
        query = query.bind(quiet_since);
    }
    query
}

/// A saga as the columns of its row.
struct Columns {
    correlation_id: String,
    order_id: String,
    state: &'static str,
    step: &'static str,
    waiting_for: Option<&'static str>,
    started_at: i64,
    last_event_at: i64,
    step_count: i64,
}

impl Columns {
    fn of(saga: &Saga) -> Self {
        Self {
            correlation_id: saga.correlation_id.to_string(),
            order_id: saga.order_id.to_string(),
            state: saga.state.as_str(),
            step: saga.step.as_str(),
            waiting_for: saga.waiting_for.map(Service::as_str),
            started_at: saga.started_at.timestamp_millis(),
            last_event_at: saga.last_event_at.timestamp_millis(),
            step_count: saga.step_count,
        }
    }

    /// Binds `$1`…`$8` in [`SAGA_COLUMNS`] order.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(self.correlation_id)
            .bind(self.order_id)
            .bind(self.state)
            .bind(self.step)
            .bind(self.waiting_for)
            .bind(self.started_at)
            .bind(self.last_event_at)
            .bind(self.step_count)
    }
}

/// A row of `sagas` read back.
fn decode_saga(row: &AnyRow) -> Result<Saga, StoreError> {
    let correlation_id: String = row.try_get("correlation_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        correlation_id: correlation_id.clone(),
        reason,
    };
    let order_id: String = row.try_get("order_id")?;
    let state: String = row.try_get("state")?;
    let step: String = row.try_get("step")?;
    let waiting_for: Option<String> = row.try_get("waiting_for")?;
    let started_at: i64 = row.try_get("started_at")?;
    let last_event_at: i64 = row.try_get("last_event_at")?;
    Ok(Saga {
        correlation_id: parse_uuid(&correlation_id).map_err(corrupt)?,
        order_id: parse_uuid(&order_id).map_err(corrupt)?,
        state: State::parse(&state).map_err(|e| corrupt(format!("state {e}")))?,
        step: Step::parse(&step).map_err(|e| corrupt(format!("step {e}")))?,
        waiting_for: waiting_for
            .as_deref()
            .map(Service::parse)
            .transpose()
            .map_err(|e| corrupt(format!("waiting_for {e}")))?,
        started_at: millis(started_at).map_err(corrupt)?,
        last_event_at: millis(last_event_at).map_err(corrupt)?,
        step_count: row.try_get("step_count")?,
    })
}

/// A row of `saga_steps` read back.
fn decode_step(row: &AnyRow) -> Result<SagaStep, StoreError> {
    let correlation_id: String = row.try_get("correlation_id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        correlation_id: correlation_id.clone(),
        reason,
    };
    let event_id: String = row.try_get("event_id")?;
    let step: String = row.try_get("step")?;
    let order_id: String = row.try_get("order_id")?;
    let causation_id: Option<String> = row.try_get("causation_id")?;
    let occurred_at: i64 = row.try_get("occurred_at")?;
    Ok(SagaStep {
        correlation_id: parse_uuid(&correlation_id).map_err(corrupt)?,
        event_id: parse_uuid(&event_id).map_err(corrupt)?,
        event_type: row.try_get("event_type")?,
        step: Step::parse(&step).map_err(|e| corrupt(format!("step {e}")))?,
        order_id: parse_uuid(&order_id).map_err(corrupt)?,
        causation_id: causation_id
            .as_deref()
            .map(parse_uuid)
            .transpose()
            .map_err(corrupt)?,
        occurred_at: millis(occurred_at).map_err(corrupt)?,
    })
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|e| format!("{text:?} is not a UUID: {e}"))
}

fn millis(value: i64) -> Result<DateTime<Utc>, String> {
    eventmart_events::timestamp::from_millis(value)
        .ok_or_else(|| format!("{value} is not a timestamp"))
}
