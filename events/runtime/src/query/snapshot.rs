//! Reading a read model at one instant: every statement of one answer (an order and its
//! timeline, a ranking and its revenue) sees the same committed state, so that an answer
//! never mixes rows from before a projector's commit with rows from after it.
//!
//! Not here: what is read (each read model's store), or a snapshot that outlives one request
//! (a page walk cannot hold one; each read model's paging says what a walk promises instead).

use sqlx::{Any, Transaction};

use super::error::QueryError;
use crate::db::{Db, Engine};

/// A read-only transaction on `db` whose statements all see one snapshot. Read through it
/// (`&mut *tx`) and let it end when the answer is built.
///
/// PostgreSQL's default isolation (`READ COMMITTED`) takes a new snapshot for each
/// statement, hence `REPEATABLE READ`; on SQLite a transaction's first read fixes its
/// snapshot until it ends (write-ahead logging lets it read beside the writer meanwhile).
pub async fn snapshot(db: &Db) -> Result<Transaction<'static, Any>, QueryError> {
    let tx = match db.engine {
        Engine::Postgres => {
            db.pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?
        }
        Engine::Sqlite => db.pool.begin().await?,
    };
    Ok(tx)
}
