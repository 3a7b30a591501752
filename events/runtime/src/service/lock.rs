//! The writer lock of a service's database: every running instance holds it shared, and
//! promoting a rebuilt state takes it exclusively, so that a state is never swapped under a
//! service that is still writing to the old one. On SQLite a running instance holds it
//! exclusively: a SQLite database serves one instance (several instances of a service run
//! on PostgreSQL), and a second one is refused with an error that says so. Read models take
//! it on SQLite for the same reason ([`WriterLock::sole_on_sqlite`]).
//!
//! On SQLite it is an advisory lock on the file `<database>.lock` beside the database; on
//! PostgreSQL a session advisory lock in the main database, held by a connection of its own.
//! Either is released when its holder goes away, however it ends (`kill -9` included). A
//! PostgreSQL connection can also go away under a live holder (a database restart, a cut
//! connection): a running instance [watches](WriterLock::watch) its connection, takes the lock
//! again on a new one, and stops if a promotion took it in between; a promotion waits long
//! enough after taking the lock for such an instance to have noticed.

use std::fs::{File, OpenOptions, TryLockError};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::db::Engine;

/// The key of the advisory lock on PostgreSQL (advisory locks are per database).
const PG_KEY: i64 = 0x6576_656e_746d_6172; // "eventmar"

/// How often a running instance checks the connection holding its lock on PostgreSQL.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a check of that connection may take before it counts as cut.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A held writer lock; released on drop.
#[derive(Debug)]
pub struct WriterLock {
    held: Arc<tokio::sync::Mutex<Held>>,
    component: String,
}

#[derive(Debug)]
enum Held {
    /// The lock file, locked.
    File { _file: File },
    /// The connection holding the advisory lock, and where it goes.
    Postgres { conn: PgConnection, url: String },
    /// An in-memory database, or a read model on PostgreSQL: nothing to hold.
    Nothing,
}

/// How a lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Shared,
    Exclusive,
}

impl WriterLock {
    /// Takes the lock shared, as a running service does: other instances may hold it too;
    /// fails while a promotion holds it.
    pub async fn shared(main_url: &str, service: &str) -> anyhow::Result<Self> {
        if Engine::of(main_url)? == Engine::Sqlite {
            return Self::take(main_url, Mode::Exclusive, service)
                .await
                .with_context(|| one_instance(service));
        }
        Self::take(main_url, Mode::Shared, service).await.with_context(|| {
            format!("{service}: its state is being swapped for a rebuilt one; start it again once the promotion has finished")
        })
    }

    /// Takes the lock exclusively, as a promotion does: fails while any instance runs. On
    /// PostgreSQL it then waits until an instance whose lock connection was cut a moment
    /// ago has noticed, failed to take the lock again, and stopped writing.
    pub async fn exclusive(main_url: &str, service: &str) -> anyhow::Result<Self> {
        let lock = Self::take(main_url, Mode::Exclusive, service)
            .await
            .with_context(|| format!("{service} is running; stop every instance of it first"))?;
        if Engine::of(main_url)? == Engine::Postgres {
            tokio::time::sleep(WATCH_EVERY * 2 + CHECK_TIMEOUT / 5).await;
        }
        Ok(lock)
    }

    /// For a read model: on SQLite the lock, exclusively (a SQLite database serves one
    /// instance, and a second one is refused with an error that says so); on PostgreSQL,
    /// where any number of instances share a database and nothing swaps it under them,
    /// nothing.
    pub async fn sole_on_sqlite(main_url: &str, component: &str) -> anyhow::Result<Self> {
        if Engine::of(main_url)? == Engine::Sqlite {
            return Self::take(main_url, Mode::Exclusive, component)
                .await
                .with_context(|| one_instance(component));
        }
        Ok(Self {
            held: Arc::new(tokio::sync::Mutex::new(Held::Nothing)),
            component: component.to_owned(),
        })
    }

    async fn take(main_url: &str, mode: Mode, component: &str) -> anyhow::Result<Self> {
        let held = match Engine::of(main_url)? {
            Engine::Sqlite => {
                let path = main_url.split('?').next().unwrap_or(main_url);
                let file = path
                    .strip_prefix("sqlite://")
                    .or_else(|| path.strip_prefix("sqlite:"))
                    .unwrap_or(path);
                if file.contains(":memory:") {
                    Held::Nothing
                } else {
                    Held::File {
                        _file: lock_file(&format!("{file}.lock"), mode)?,
                    }
                }
            }
            Engine::Postgres => match take_pg(main_url, mode).await? {
                Some(conn) => Held::Postgres {
                    conn,
                    url: main_url.to_owned(),
                },
                None => bail!("the database's writer lock is held"),
            },
        };
        Ok(Self {
            held: Arc::new(tokio::sync::Mutex::new(held)),
            component: component.to_owned(),
        })
    }

    /// Keeps a shared lock held until `shutdown`: on PostgreSQL the connection that holds it
    /// is checked every second, and when it was cut (the lock went with it) the lock is taken
    /// again on a new connection. Fails if a promotion took the lock in between: the
    /// instance must stop rather than write to a state being swapped.
    pub fn watch(
        &self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let held = self.held.clone();
        let component = self.component.clone();
        async move {
            let mut every = tokio::time::interval(WATCH_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    _ = every.tick() => {}
                }
                let mut held = held.lock().await;
                let Held::Postgres { conn, url } = &mut *held else {
                    // A file lock lasts as long as the process.
                    drop(held);
                    shutdown.cancelled().await;
                    return Ok(());
                };
                let check = sqlx::query("SELECT 1").execute(&mut *conn);
                if matches!(tokio::time::timeout(CHECK_TIMEOUT, check).await, Ok(Ok(_))) {
                    continue;
                }
                match take_pg(url, Mode::Shared).await {
                    Ok(Some(new)) => {
                        *conn = new;
                        tracing::warn!(%component, "the connection holding the writer lock was cut; lock taken again");
                    }
                    Ok(None) => bail!(
                        "{component}: the connection holding the database's writer lock was cut \
                         and a promotion has taken the lock since; stopping so that the state is \
                         not swapped under a running instance (start it again once the promotion \
                         has finished)"
                    ),
                    Err(error) => {
                        tracing::warn!(%component, %error, "the connection holding the writer lock was cut; taking it again once the database answers");
                    }
                }
            }
        }
    }
}

fn one_instance(component: &str) -> String {
    format!(
        "{component}: another instance runs on this SQLite database, or its state is being \
         swapped; a SQLite database serves one instance (run several on PostgreSQL)"
    )
}

/// Takes the advisory lock on a new connection to `url`; `None` if another holder keeps it.
async fn take_pg(url: &str, mode: Mode) -> anyhow::Result<Option<PgConnection>> {
    let mut conn = PgConnection::connect(url).await?;
    let sql = match mode {
        Mode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
        Mode::Exclusive => "SELECT pg_try_advisory_lock($1)",
    };
    let taken: bool = sqlx::query_scalar(sql)
        .bind(PG_KEY)
        .fetch_one(&mut conn)
        .await?;
    Ok(taken.then_some(conn))
}

fn lock_file(path: &str, mode: Mode) -> anyhow::Result<File> {
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {path}"))?;
    let result = match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    };
    match result {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!("{path} is locked"),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::on_both_engines;
    use crate::testing::TestDatabase;

    on_both_engines!(instances_share_the_lock_and_a_promotion_excludes_them);
    /// Several instances share the lock on PostgreSQL; on SQLite a second is refused.
    async fn instances_share_the_lock_and_a_promotion_excludes_them(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let database = TestDatabase::create(engine).await?;
        let url = &database.url;
        let one = WriterLock::shared(url, "orders").await?;
        let two = match engine {
            Engine::Postgres => Some(WriterLock::shared(url, "orders").await?),
            Engine::Sqlite => {
                let refused = WriterLock::shared(url, "orders").await.unwrap_err();
                assert!(
                    format!("{refused:#}").contains("serves one instance"),
                    "{refused:#}"
                );
                None
            }
        };
        let refused = WriterLock::exclusive(url, "orders").await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("orders is running"),
            "{refused:#}"
        );
        drop((one, two));
        let promotion = WriterLock::exclusive(url, "orders").await?;
        let refused = WriterLock::shared(url, "orders").await.unwrap_err();
        assert!(
            format!("{refused:#}").contains("being swapped"),
            "{refused:#}"
        );
        drop(promotion);
        WriterLock::shared(url, "orders").await?;
        Ok(())
    }

    /// Ends every session of `url`'s database that holds an advisory lock; how many.
    async fn cut_lock_holders(admin: &mut PgConnection) -> anyhow::Result<usize> {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_all(&mut *admin)
        .await?;
        for pid in &pids {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&mut *admin)
                .await?;
        }
        Ok(pids.len())
    }

    /// A running instance whose lock connection is cut takes the lock again; if a promotion
    /// took it in between, the instance is told to stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_lock_connection_is_replaced_or_the_instance_stops_on_postgres()
    -> anyhow::Result<()> {
        let database = TestDatabase::create(Engine::Postgres).await?;
        let url = database.url.as_str();
        let mut admin = PgConnection::connect(url).await?;
        let running = WriterLock::shared(url, "orders").await?;
        let shutdown = CancellationToken::new();
        let watch = tokio::spawn(running.watch(shutdown.clone()));

        // Cut once: the lock is taken again, and a promotion is still refused.
        assert_eq!(cut_lock_holders(&mut admin).await?, 1);
        crate::testing::wait_for(
            "the lock to be taken again",
            Duration::from_secs(20),
            || {
                let url = url.to_owned();
                async move {
                    take_pg(&url, Mode::Exclusive)
                        .await
                        .ok()?
                        .is_none()
                        .then_some(())
                }
            },
        )
        .await?;
        assert!(WriterLock::exclusive(url, "orders").await.is_err());
        assert!(!watch.is_finished());

        // Cut again, and a promotion takes the lock before the instance notices: the
        // instance's watch fails, saying why.
        let mut promotion = None;
        for _ in 0..20 {
            cut_lock_holders(&mut admin).await?;
            if let Some(conn) = take_pg(url, Mode::Exclusive).await? {
                promotion = Some(conn);
                break;
            }
        }
        assert!(promotion.is_some(), "the promotion never got the lock");
        let stopped = tokio::time::timeout(Duration::from_secs(20), watch).await??;
        let error = stopped.expect_err("the instance must stop");
        assert!(
            format!("{error:#}").contains("a promotion has taken the lock"),
            "{error:#}"
        );
        drop(running);
        Ok(())
    }
}
