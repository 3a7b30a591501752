//! The writer lock of a service's database: every running instance holds it shared, and
//! promoting a rebuilt state takes it exclusively, so that a state is never swapped under a
//! service that is still writing to the old one. On SQLite a running instance holds it
//! exclusively: a SQLite database serves one instance (several instances of a service run
//! on PostgreSQL), and a second one is refused with an error that says so.
//!
//! On SQLite it is an advisory lock on the file `<database>.lock` beside the database; on
//! PostgreSQL a session advisory lock in the main database, held by a connection of its own.
//! Either is released when its holder goes away, however it ends (`kill -9` included).

use std::fs::{File, OpenOptions, TryLockError};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

use crate::db::Engine;

/// The key of the advisory lock on PostgreSQL (advisory locks are per database).
const PG_KEY: i64 = 0x6576_656e_746d_6172; // "eventmar"

/// A held writer lock; released on drop.
#[derive(Debug)]
pub struct WriterLock {
    _held: Held,
}

#[derive(Debug)]
enum Held {
    /// The lock file, locked.
    File { _file: File },
    /// The connection holding the advisory lock.
    Postgres { _conn: PgConnection },
    /// An in-memory database: no other process can open it.
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
            return Self::take(main_url, Mode::Exclusive)
                .await
                .with_context(|| {
                    format!(
                        "{service}: another instance runs on this SQLite database, or its state is \
                     being swapped; a SQLite database serves one instance (run several on \
                     PostgreSQL)"
                    )
                });
        }
        Self::take(main_url, Mode::Shared).await.with_context(|| {
            format!("{service}: its state is being swapped for a rebuilt one; start it again once the promotion has finished")
        })
    }

    /// Takes the lock exclusively, as a promotion does: fails while any instance runs.
    pub async fn exclusive(main_url: &str, service: &str) -> anyhow::Result<Self> {
        Self::take(main_url, Mode::Exclusive)
            .await
            .with_context(|| format!("{service} is running; stop every instance of it first"))
    }

    async fn take(main_url: &str, mode: Mode) -> anyhow::Result<Self> {
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
            Engine::Postgres => {
                let mut conn = PgConnection::connect(main_url).await?;
                let sql = match mode {
                    Mode::Shared => "SELECT pg_try_advisory_lock_shared($1)",
                    Mode::Exclusive => "SELECT pg_try_advisory_lock($1)",
                };
                let taken: bool = sqlx::query_scalar(sql)
                    .bind(PG_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                if !taken {
                    bail!("the database's writer lock is held");
                }
                Held::Postgres { _conn: conn }
            }
        };
        Ok(Self { _held: held })
    }
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
}
