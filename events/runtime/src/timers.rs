//! Work due at a time, kept in the service's own database: a saga's deadline, a charge
//! waiting for a slow payment provider.
//!
//! [`schedule`] and [`cancel`] run inside the transaction of the decision that makes a timer
//! necessary or moot, so a timer exists exactly when the state says it should. [`run`] polls
//! for due timers and fires each in its own transaction, deleting it in that same
//! transaction: a timer fires to completion once, even across crashes (a crash mid-fire rolls
//! the deletion back and it fires again, which the handler's versioned state makes
//! harmless).
//!
//! Not here: what firing means (the service's handler decides and appends).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use crate::consumer::HandlerError;
use crate::journal::Journal;

/// Most timers fired per poll.
const BATCH: i64 = 200;

/// How long a timer whose handler failed permanently waits before it is tried again.
const FAILED_RETRY: Duration = Duration::from_secs(30);

/// Sets timer `kind`/`id` to fire at `due_at` (replacing an earlier time).
pub async fn schedule(
    conn: &mut AnyConnection,
    kind: &str,
    id: &str,
    due_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timers (kind, id, due_at) VALUES ($1, $2, $3) \
         ON CONFLICT (kind, id) DO UPDATE SET due_at = excluded.due_at",
    )
    .bind(kind)
    .bind(id)
    .bind(due_at.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes timer `kind`/`id` if it is set.
pub async fn cancel(conn: &mut AnyConnection, kind: &str, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timers WHERE kind = $1 AND id = $2")
        .bind(kind)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How many timers of `kind` are set.
pub async fn pending(conn: &mut AnyConnection, kind: &str) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE kind = $1")
        .bind(kind)
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// What to do when a timer fires.
pub trait TimerHandler: Send + Sync + 'static {
    /// Fires timer `id` through `tx` (the timer is already deleted in `tx`; schedule it again
    /// through `tx` to fire later).
    fn fire(
        &self,
        tx: &mut AnyConnection,
        id: &str,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Fires the due timers of `kind` every `poll` until `shutdown`, appending through `journal`
/// (whose relay is woken after each commit).
pub async fn run<H: TimerHandler>(
    journal: Journal,
    kind: &'static str,
    poll: Duration,
    handler: H,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = journal.db().pool.clone();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(poll) => {}
        }
        let now = Utc::now().timestamp_millis();
        let due: Vec<String> = match sqlx::query_scalar(
            "SELECT id FROM timers WHERE kind = $1 AND due_at <= $2 ORDER BY due_at LIMIT $3",
        )
        .bind(kind)
        .bind(now)
        .bind(BATCH)
        .fetch_all(&pool)
        .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(kind, %error, "reading due timers failed; retrying");
                continue;
            }
        };
        for id in due {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            match fire(&pool, kind, &id, now, &handler).await {
                Ok(true) => journal.committed(),
                Ok(false) => {}
                Err(error) if error.is_transient() => {
                    tracing::debug!(kind, id, %error, "timer will fire again");
                }
                Err(error) => {
                    tracing::error!(kind, id, %error, "timer failed; retrying it later");
                    let later = Utc::now() + FAILED_RETRY;
                    if let Ok(mut conn) = pool.acquire().await {
                        let _ = schedule(&mut conn, kind, &id, later).await;
                    }
                }
            }
        }
    }
}

/// Fires one timer in its own transaction; `false` if it was no longer due (cancelled or
/// rescheduled meanwhile).
async fn fire<H: TimerHandler>(
    pool: &sqlx::AnyPool,
    kind: &str,
    id: &str,
    now: i64,
    handler: &H,
) -> Result<bool, HandlerError> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM timers WHERE kind = $1 AND id = $2 AND due_at <= $3")
        .bind(kind)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    handler.fire(&mut tx, id).await?;
    tx.commit().await?;
    Ok(true)
}
