//! Running a read model: the projector of its live version and its query API, and the
//! switch to a newly promoted version without a moment of downtime.
//!
//! The switch, when the control table names another live version: start following the new
//! version beside the old one and wait until it has applied everything the old one has; stop
//! following the old one (queries keep reading it, frozen for that moment) and wait until the
//! new one has passed it once more; then point every later query at the new one and record
//! that it is served. A query therefore never sees a model older than one it saw before,
//! and never an error; a read waiting for a position moves to the new version with it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use eventmart_events::Codec;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::versions::{self, Version};
use super::{Current, LiveDb, Projection};
use crate::consumer::{self, Consumer, ConsumerConfig};
use crate::db::{self, Db};
use crate::kafka;
use crate::metrics::Metrics;
use crate::process::{self, Readiness};
use crate::service::ServiceArgs;
use crate::service::lock::WriterLock;

/// How often the control table is read for a newly promoted version.
const LOOK_EVERY: Duration = Duration::from_millis(250);

/// How often a switch that is still waiting for the new version to catch up says so.
const CATCH_UP_REPORT: Duration = Duration::from_secs(30);

/// Runs read model `P` on `listener` until `shutdown` is cancelled (or a task fails): the
/// projector of its live version, and the query API that `router` builds over [`LiveDb`];
/// switches to a version promoted by a rebuild (see [`super::versions::promote`]).
pub async fn serve<P: Projection>(
    args: &ServiceArgs,
    listener: TcpListener,
    router: impl FnOnce(LiveDb) -> Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let main_url = args.database_url(P::NAME);
    let _sole = WriterLock::sole_on_sqlite(&main_url, P::NAME).await?;
    let control = db::connect_component(&main_url, P::migrations())
        .await
        .with_context(|| format!("opening the {} database", P::NAME))?;
    versions::ensure_first(&control.pool, P::NAME, &main_url).await?;
    let connections = &args.connections;
    connections.provision().await?;
    let follower = Follower {
        args: args.clone(),
        codec: Codec::new(&connections.registry_url),
        metrics: Metrics::new(),
        control: control.clone(),
        main_url,
    };
    let version = versions::live(&control.pool, P::NAME).await?;
    let db = follower.open::<P>(&version).await?;
    let following = follower.follow::<P>(&version, db.clone(), &shutdown);
    let live = LiveDb::new(Current {
        db: db::readers(&db, &version.database_url).await?,
        group: version.group(),
    });
    versions::mark_served(&control.pool, P::NAME, version.number).await?;

    let readiness = Readiness::new()
        .database(control.pool.clone())
        .broker(connections)?
        .registry(&connections.registry_url);
    let api = router(live.clone()).merge(process::ops_router(readiness, follower.metrics.clone()));
    tracing::info!(
        projection = P::NAME,
        version = version.number,
        address = %listener.local_addr()?,
        "serving"
    );
    let mut tasks = JoinSet::new();
    tasks.spawn(process::serve(
        listener,
        api,
        follower.metrics.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(follower.watch::<P>(live, following, shutdown.clone()));
    process::supervise(tasks, shutdown, args.grace).await
}

/// What following a version takes.
struct Follower {
    args: ServiceArgs,
    codec: Codec,
    metrics: Metrics,
    control: Db,
    main_url: String,
}

/// A consumer keeping one version up to date.
struct Following {
    version: Version,
    db: Db,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Following {
    /// Stops the consumer once its in-flight batch has committed.
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await.context("the projector panicked")??;
        Ok(())
    }
}

impl Follower {
    /// Opens `version`'s database (the control database itself for the main one).
    async fn open<P: Projection>(&self, version: &Version) -> anyhow::Result<Db> {
        versions::open(&self.control, &self.main_url, version, P::migrations).await
    }

    /// Starts a consumer that keeps `version` (in `db`) up to date until stopped or
    /// `shutdown`.
    fn follow<P: Projection>(
        &self,
        version: &Version,
        db: Db,
        shutdown: &CancellationToken,
    ) -> Following {
        let topics = self.args.connections.topics();
        let names = P::TOPICS.iter().map(|t| topics.name(*t));
        let mut config = ConsumerConfig::new(version.group(), names);
        config.session_timeout = self.args.session_timeout;
        config.fetch_wait = self.args.fetch_wait;
        config.park_budget = self.args.park_budget;
        config.dedup_retention = self.args.dedup_retention;
        let kafka = kafka::client_config(
            &self.args.connections.bootstrap_servers,
            &self.args.connections.kafka,
        );
        let consumer = Consumer::new(
            config,
            kafka,
            db.clone(),
            self.codec.clone(),
            self.metrics.clone(),
        );
        let stop = shutdown.child_token();
        let handler = P::handler(db.engine);
        let token = stop.clone();
        let task = tokio::spawn(async move { Ok(consumer.run(handler, token).await?) });
        Following {
            version: version.clone(),
            db,
            stop,
            task,
        }
    }

    /// Follows the live version until `shutdown`, switching when another one is promoted.
    async fn watch<P: Projection>(
        self,
        live: LiveDb,
        mut following: Following,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut look = tokio::time::interval(LOOK_EVERY);
        look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                done = &mut following.task => {
                    // A consumer ends by itself only when it cannot start.
                    done.context("the projector panicked")??;
                    anyhow::bail!("the projector of version {} stopped", following.version.number);
                }
                _ = look.tick() => {}
            }
            let promoted = match versions::live(&self.control.pool, P::NAME).await {
                Ok(promoted) => promoted,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "reading the live version");
                    continue;
                }
            };
            if promoted.number == following.version.number {
                continue;
            }
            following = self
                .switch::<P>(&live, following, promoted, &shutdown)
                .await?;
        }
        following.stop().await?;
        Ok(())
    }

    /// Switches queries from `old` to version `next`; see the [module docs](self).
    async fn switch<P: Projection>(
        &self,
        live: &LiveDb,
        old: Following,
        next: Version,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Following> {
        tracing::info!(
            projection = P::NAME,
            from = old.version.number,
            to = next.number,
            "switching to a promoted version"
        );
        let db = self.open::<P>(&next).await?;
        let following = self.follow::<P>(&next, db.clone(), shutdown);
        // First while the old version still follows the topics (queries stay fresh while the
        // new consumer joins its group), then once more after stopping it (queries read the
        // old version frozen for that moment).
        let old_group = old.version.group();
        let old_db = old.db.clone();
        self.wait_until_passed(&db, &next, &following, &old_db, &old_group, shutdown)
            .await?;
        old.stop().await?;
        self.wait_until_passed(&db, &next, &following, &old_db, &old_group, shutdown)
            .await?;
        live.replace(Current {
            db: db::readers(&db, &next.database_url).await?,
            group: next.group(),
        });
        versions::mark_served(&self.control.pool, P::NAME, next.number).await?;
        tracing::info!(
            projection = P::NAME,
            version = next.number,
            "serving the promoted version"
        );
        Ok(following)
    }
}

impl Follower {
    /// Waits until `next` (in `db`, followed by `following`) has applied everything
    /// `old_group` has in `old_db`, however long that takes: a version that has not caught
    /// up is never served (a rollback to a long-retired version would read back in time).
    /// Fails if the new version's consumer stops; returns at shutdown.
    async fn wait_until_passed(
        &self,
        db: &Db,
        next: &Version,
        following: &Following,
        old_db: &Db,
        old_group: &str,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut report = tokio::time::Instant::now() + CATCH_UP_REPORT;
        loop {
            let target = consumer::stored_offsets(&old_db.pool, old_group).await?;
            let reached = consumer::stored_offsets(&db.pool, &next.group()).await?;
            if passed(&reached, &target) || shutdown.is_cancelled() {
                return Ok(());
            }
            if following.task.is_finished() {
                anyhow::bail!(
                    "the projector of version {} stopped before it caught up with the \
                     version it replaces",
                    next.number
                );
            }
            if tokio::time::Instant::now() >= report {
                report += CATCH_UP_REPORT;
                tracing::warn!(
                    version = next.number,
                    "the promoted version is still catching up with the one it replaces, \
                     which keeps serving"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether `reached` is at or past `target` in every partition `target` names (a partition
/// `reached` has no position in is at offset 0: nothing applied there yet).
pub(crate) fn passed(
    reached: &BTreeMap<(String, i32), i64>,
    target: &BTreeMap<(String, i32), i64>,
) -> bool {
    target
        .iter()
        .all(|(partition, next)| reached.get(partition).copied().unwrap_or(0) >= *next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(entries: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
        entries
            .iter()
            .map(|(t, p, o)| (((*t).to_owned(), *p), *o))
            .collect()
    }

    #[test]
    fn a_version_has_passed_another_when_it_is_as_far_in_every_partition() {
        let old = at(&[("orders", 0, 5), ("orders", 1, 3)]);
        assert!(passed(&at(&[("orders", 0, 5), ("orders", 1, 4)]), &old));
        assert!(!passed(&at(&[("orders", 0, 5), ("orders", 1, 2)]), &old));
        assert!(!passed(&at(&[("orders", 0, 9)]), &old));
        assert!(passed(&at(&[]), &at(&[])));
        // A version that read from a point in time has positions in empty partitions too.
        let from_a_time = at(&[("orders", 0, 5), ("orders", 2, 0)]);
        assert!(passed(&at(&[("orders", 0, 5)]), &from_a_time));
    }
}
