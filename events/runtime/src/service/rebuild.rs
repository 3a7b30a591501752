//! Rebuilding a service's own state from the topics, the way a read model is rebuilt: into a
//! new version in a database of its own while the service keeps running on the live one,
//! checked row for row against it, and swapped in while the service is stopped.
//!
//! **What is replayed.** Only facts: a service's reactions decide with the time of day and
//! with the order in which other services' events arrive, so replaying them would decide
//! again, differently, with event ids already taken by what was decided the first time.
//! What a service knows is the fold of the facts it has seen: its own topic (what it
//! appended, and what was typed into it), the replicas it keeps of other services' facts, and
//! the facts a pending step waits for. A [`ServiceState`] names those topics and the handler
//! that folds them without deciding anything; [`rebuild`] runs it on the runtime's
//! exactly-once consumer (resumable, like a read model's rebuild), takes the service's own
//! events back into the new journal as published, and passes over every record the
//! service's group dead-lettered (read from the dead-letter topics), as the live state did.
//!
//! **The swap** ([`promote`]) needs the service stopped: it takes the database's
//! [writer lock](super::lock) exclusively, refuses while the live journal holds events not
//! yet published, catches the new version up with the topics' end, and then moves over what
//! belongs to the service's running, not to its facts: the positions and processed events
//! of the topics it reacts to (so that it reacts to exactly what it had not reacted to yet),
//! its idempotency keys and its timers. The next start runs on the new version.
//!
//! Not here: which topics and folds a service has (each service's `replay` module).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use eventmart_events::{Topic, Topics};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;

use super::ServiceArgs;
use super::handover;
use super::lock::WriterLock;
use crate::consumer::{self, Handler, HandlerError, Incoming};
use crate::db::{self, Db, Migrations};
use crate::journal::{AppendError, Journal};
use crate::projection::rebuild::{self as projection_rebuild, Outcome, Progress, Target};
use crate::projection::versions::{self, Version, VersionState};
use crate::projection::{Table, rebuild::RebuildOptions};

/// The tables that hold a service's state, as a checksum compares them: the aggregates'
/// states (not how often each was saved, or when) and the unique claims. The journal is left
/// out: the live one holds what the service appended, a rebuilt one also what was typed into
/// its topic.
pub const STATE_TABLES: &[Table] = &[
    Table {
        name: "aggregate_state",
        key: &["kind", "id"],
        ignore: &["version", "updated_at"],
    },
    Table {
        name: "unique_claims",
        key: &["kind", "value"],
        ignore: &[],
    },
];

/// A service's state as the runtime rebuilds it; see the [module docs](self).
pub trait ServiceState: Send + Sync + 'static {
    /// The service's name (its group, its database).
    const NAME: &'static str;
    /// Its own topic.
    const OWN: Topic;
    /// The topics whose facts its state is folded from, its own first.
    const FACTS: &'static [Topic];
    /// The topics the running service reacts to: where it stands in them is carried over
    /// from the live version at the swap. Its consumer reads these and [`Self::FACTS`].
    const REACTS_TO: &'static [Topic];
    /// What folds one fact into the state, without deciding anything.
    type Replay: Handler;
    /// The service's own migrations, beside the runtime's.
    fn migrations() -> Migrations;
    /// The fold, writing through `journal`'s database.
    fn replay(journal: Journal) -> Self::Replay;

    /// Every topic the running service's consumer reads: its facts, and what it reacts to.
    fn consumed() -> Vec<Topic> {
        let mut topics = Self::FACTS.to_vec();
        for topic in Self::REACTS_TO {
            if !topics.contains(topic) {
                topics.push(*topic);
            }
        }
        topics
    }
}

/// The facts handler of `S` with what every service's replay does around it: take the
/// service's own events into the journal. (What the live group dead-lettered, the rebuild's
/// consumer passes over before any handler sees it.)
#[derive(Debug)]
struct Folding<H> {
    inner: H,
    journal: Journal,
    own: String,
}

impl<H: Handler> Handler for Folding<H> {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        self.inner.handle(tx, event).await?;
        if event.topic == self.own {
            self.journal
                .import(tx, event.event(), event.envelope())
                .await
                .map_err(|e| match e {
                    AppendError::Database(e) => HandlerError::from(e),
                    other => HandlerError::permanent(other),
                })?;
        }
        Ok(())
    }
}

/// The consumer group that holds the positions of `version` of a service's state:
/// `<service>.vN` while it is built, the service's own once it has been promoted (the running
/// service reads on from there under its own group).
pub fn group(version: &Version) -> String {
    match version.state {
        VersionState::Building => version.group(),
        _ => version.projection.clone(),
    }
}

fn target<S: ServiceState>() -> Target {
    Target {
        name: S::NAME,
        topics: S::FACTS,
        migrations: S::migrations,
    }
}

/// Builds a new version of `S`'s state from its facts (or resumes the one being built) and
/// follows the topics until it has caught up with their end; see the [module docs](self).
/// `batch_max` records are applied per transaction.
pub async fn rebuild<S: ServiceState>(
    args: &ServiceArgs,
    batch_max: usize,
    progress: impl FnMut(&Progress),
    shutdown: CancellationToken,
) -> anyhow::Result<Outcome> {
    let options = RebuildOptions {
        from: None,
        promote: false,
        batch_max,
        ..RebuildOptions::default()
    };
    projection_rebuild::rebuild_with(
        &target::<S>(),
        |db: &Db, topics: &Topics| {
            let journal = Journal::new(db.clone(), topics.clone());
            Folding {
                inner: S::replay(journal.clone()),
                journal,
                own: topics.name(S::OWN),
            }
        },
        args,
        &options,
        progress,
        shutdown,
    )
    .await
}

/// What a promotion did.
#[derive(Debug, Clone)]
pub struct Promoted {
    /// The version now live.
    pub version: i64,
    /// The version it replaced.
    pub replaced: i64,
    /// Records the new version applied to catch up first.
    pub caught_up: u64,
    /// Rows carried over from the replaced version, by table.
    pub carried: BTreeMap<&'static str, u64>,
}

/// Makes the version of `S` being built live, once the service is stopped; see the
/// [module docs](self).
pub async fn promote<S: ServiceState>(
    args: &ServiceArgs,
    batch_max: usize,
    progress: impl FnMut(&Progress),
    shutdown: CancellationToken,
) -> anyhow::Result<Promoted> {
    let name = S::NAME;
    let main_url = args.database_url(name);
    let _lock = WriterLock::exclusive(&main_url, name).await?;
    let control = db::connect_component(&main_url, S::migrations())
        .await
        .with_context(|| format!("opening the {name} database"))?;
    versions::ensure_first(&control.pool, name, &main_url).await?;
    let live = versions::live(&control.pool, name).await?;
    let Some(next) = versions::building(&control.pool, name).await? else {
        bail!(
            "no version of {name}'s state is being built; run `eventmart service rebuild {name}` first"
        );
    };
    let live_db = versions::open(&control, &main_url, &live, S::migrations).await?;
    let unpublished = Journal::new(live_db.clone(), args.connections.topics())
        .unpublished()
        .await?;
    if unpublished > 0 {
        bail!(
            "{name} has {unpublished} events it has not published yet; start it so that it \
             publishes them, stop it, and promote again"
        );
    }
    let next_db = versions::open(&control, &main_url, &next, S::migrations).await?;
    let before = consumer::stored_offsets(&next_db.pool, &next.group()).await?;

    let outcome = rebuild::<S>(args, batch_max, progress, shutdown.clone()).await?;
    if shutdown.is_cancelled() {
        bail!(
            "interrupted before {name} version {} had caught up",
            next.number
        );
    }
    refuse_late_dead_letters(args, &next, S::FACTS, &before).await?;
    let topics = args.connections.topics();
    refuse_unapplied_own_events(&live_db, &next_db, &next, name, &topics.name(S::OWN)).await?;

    let reacts_to: Vec<String> = S::REACTS_TO.iter().map(|t| topics.name(*t)).collect();
    let carried = handover::carry_over(&live_db, &next_db, name, &next.group(), &reacts_to).await?;
    versions::promote(&control.pool, name, next.number).await?;
    tracing::info!(service = name, version = next.number, "promoted");
    Ok(Promoted {
        version: next.number,
        replaced: live.number,
        caught_up: outcome.records,
        carried,
    })
}

/// Fails if the service dead-lettered a record after the version's rebuild started, at a
/// position the rebuild had already passed: the rebuild applied what the live state refused.
async fn refuse_late_dead_letters(
    args: &ServiceArgs,
    version: &Version,
    facts: &[Topic],
    before: &BTreeMap<(String, i32), i64>,
) -> anyhow::Result<()> {
    let name = &version.projection;
    let started = version.created_at;
    let by_service = |group: &str| group == name;
    for ((topic, partition, offset), failed_at) in
        projection_rebuild::dead_lettered(args, by_service, facts).await?
    {
        let late = failed_at
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .is_none_or(|t| t >= started);
        let passed = before
            .get(&(topic.clone(), partition))
            .is_some_and(|reached| offset < *reached);
        if late && passed {
            bail!(
                "{name} dead-lettered {topic}/{partition}@{offset} after version {} began, which \
                 had applied it already: drop version {} and rebuild",
                version.number,
                version.number
            );
        }
    }
    Ok(())
}

/// Fails if the new version applied own-topic events that the stopped service had neither
/// appended nor applied: the service would skip them as its own when it starts again, never
/// having checked them.
async fn refuse_unapplied_own_events(
    live: &Db,
    next: &Db,
    version: &Version,
    name: &str,
    own: &str,
) -> anyhow::Result<()> {
    let reached = consumer::stored_offsets(&live.pool, name).await?;
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT event_id, partition_id, record_offset FROM consumer_processed \
         WHERE consumer_group = $1 AND topic = $2",
    )
    .bind(version.group())
    .bind(own)
    .fetch_all(&next.pool)
    .await?;
    let mut unknown = Vec::new();
    for (event_id, partition, offset) in rows {
        let applied_by_live = reached
            .get(&(own.to_owned(), i32::try_from(partition).unwrap_or_default()))
            .is_some_and(|at| offset < *at);
        if applied_by_live {
            continue;
        }
        let appended: Option<i64> =
            sqlx::query_scalar("SELECT position FROM event_journal WHERE event_id = $1")
                .bind(&event_id)
                .fetch_optional(&live.pool)
                .await?;
        if appended.is_none() {
            unknown.push(format!("{own}/{partition}@{offset}"));
        }
    }
    if !unknown.is_empty() {
        bail!(
            "{} records on {own} arrived after {name} stopped applying it and were not appended \
             by it ({}): start {name} so that it applies them, stop it, and promote again",
            unknown.len(),
            unknown.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::db::Engine;
    use crate::on_both_engines;
    use crate::process::Connections;
    use crate::testing::TestDatabase;

    /// A service whose state nothing is folded into: enough to see what promote refuses.
    struct Shop;

    #[derive(Debug)]
    struct Nothing;

    impl Handler for Nothing {
        async fn handle(
            &self,
            _tx: &mut AnyConnection,
            _event: &Incoming<'_>,
        ) -> Result<(), HandlerError> {
            Ok(())
        }
    }

    impl ServiceState for Shop {
        const NAME: &'static str = "shop";
        const OWN: Topic = Topic::Orders;
        const FACTS: &'static [Topic] = &[Topic::Orders];
        const REACTS_TO: &'static [Topic] = &[Topic::Payments];
        type Replay = Nothing;

        fn migrations() -> Migrations {
            Migrations::none()
        }

        fn replay(_journal: Journal) -> Nothing {
            Nothing
        }
    }

    fn args(url: &str) -> ServiceArgs {
        ServiceArgs {
            connections: Connections {
                // Nothing listens here: a refusal must come before any broker is asked.
                bootstrap_servers: "127.0.0.1:9".to_owned(),
                registry_url: "http://127.0.0.1:9".to_owned(),
                topic_prefix: String::new(),
                kafka: Vec::new(),
            },
            database_url: Some(url.to_owned()),
            listen: None,
            grace: Duration::from_secs(1),
            session_timeout: Duration::from_secs(6),
            fetch_wait: Duration::from_millis(100),
            park_budget: Duration::from_secs(600),
            dedup_retention: Duration::from_secs(30 * 24 * 3600),
            idempotency_retention: Duration::from_secs(24 * 3600),
        }
    }

    async fn refusal(url: &str) -> String {
        match promote::<Shop>(&args(url), 100, |_| {}, CancellationToken::new()).await {
            Ok(promoted) => panic!("promoted {promoted:?}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn the_running_service_reads_its_facts_and_what_it_reacts_to_once_each() {
        assert_eq!(Shop::consumed(), [Topic::Orders, Topic::Payments]);
    }

    on_both_engines!(a_swap_is_refused_while_the_service_runs_or_has_not_published_everything);
    async fn a_swap_is_refused_while_the_service_runs_or_has_not_published_everything(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let database = TestDatabase::create(engine).await?;
        let url = &database.url;
        let main = db::connect_component(url, Migrations::none()).await?;
        versions::ensure_first(&main.pool, "shop", url).await?;

        assert!(
            refusal(url)
                .await
                .contains("no version of shop's state is being built")
        );
        let two = versions::begin(&main.pool, "shop", url, None).await?;

        let running = WriterLock::shared(url, "shop").await?;
        assert!(refusal(url).await.contains("shop is running"));
        drop(running);

        sqlx::query(
            "INSERT INTO event_journal \
             (event_id, aggregate_id, sequence, event_type, topic, event_json, occurred_at, \
              recorded_at) VALUES ('e1', 'o1', 1, 'order.created', 'orders', '{}', 1, 1)",
        )
        .execute(&main.pool)
        .await?;
        let said = refusal(url).await;
        assert!(
            said.contains("shop has 1 events it has not published yet"),
            "{said}"
        );
        assert_eq!(
            versions::live(&main.pool, "shop").await?.number,
            1,
            "nothing was swapped"
        );
        assert_eq!(
            versions::get(&main.pool, "shop", two.number).await?.state,
            VersionState::Building
        );
        Ok(())
    }
}
