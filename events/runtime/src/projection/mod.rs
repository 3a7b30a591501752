//! Read models: projections that fold events into tables of their own, served by a thin
//! query API, and rebuilt from the topics without downtime.
//!
//! A read model describes itself with [`Projection`] (its name, topics, tables and the
//! handler that folds an event into them); [`serve`] runs it: the projector on the
//! runtime's exactly-once consumer and the query API, both on the live version's database
//! ([`LiveDb`]), which a rebuild swaps atomically.
//!
//! - [`versions`]: the versions of a read model, each in its own database, and which is live.
//! - [`rebuild`]: builds a new version from the topics while the live one serves, and
//!   promotes it once it has caught up; resumes where an interrupted rebuild stopped.
//! - [`checksum`]: a content checksum of a version's tables, and the rows two versions
//!   disagree on.
//!
//! Not here: what a read model stores (each projection's crate) or the command side.

use std::sync::{Arc, RwLock};

pub mod checksum;
pub mod rebuild;
mod serve;
pub mod versions;

use eventmart_events::Topic;

pub use self::serve::serve;
use crate::consumer::Handler;
use crate::db::{Db, Engine, Migrations};

/// A read model, as the runtime runs, rebuilds and checks it.
pub trait Projection: Send + Sync + 'static {
    /// Its name: the prefix of its consumer groups, its database file by default, and how
    /// `eventmart projection` names it.
    const NAME: &'static str;
    /// The topics it reads.
    const TOPICS: &'static [Topic];
    /// Its tables, each with the columns that identify a row: what a checksum covers.
    const TABLES: &'static [Table];
    /// What applies one event to the tables, inside the consumer's transaction.
    type Handler: Handler;
    /// Its tables' migrations, beside the runtime's.
    fn migrations() -> Migrations;
    /// The handler for a database of `engine`.
    fn handler(engine: Engine) -> Self::Handler;
}

/// One of a read model's tables.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The table's name.
    pub name: &'static str,
    /// The columns of its primary key, in order: rows are compared in this order.
    pub key: &'static [&'static str],
    /// Columns a checksum leaves out: bookkeeping that differs between two versions holding
    /// the same content (a save counter, a time of writing).
    pub ignore: &'static [&'static str],
}

/// The version of a read model that answers queries now.
#[derive(Debug)]
pub struct Current {
    /// Its database, for reads (on SQLite a pool of read-only connections of its own).
    pub db: Db,
    /// The consumer group that keeps it (what read-your-writes waits on).
    pub group: String,
}

/// The live version's database, shared by every query handler; a promoted rebuild replaces
/// it between two requests, so each request reads one version from start to end.
#[derive(Debug, Clone)]
pub struct LiveDb {
    current: Arc<RwLock<Arc<Current>>>,
}

impl LiveDb {
    /// A handle on `current`.
    pub fn new(current: Current) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(current))),
        }
    }

    /// The version to answer the next query from.
    pub fn current(&self) -> Arc<Current> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `next` the version every later query reads.
    pub fn replace(&self, next: Current) {
        let next = Arc::new(next);
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}
