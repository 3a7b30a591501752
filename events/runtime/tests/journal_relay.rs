//! The relay against a real broker and schema registry, on SQLite and PostgreSQL: what is
//! committed reaches the topic, keyed by aggregate, with its envelope as headers, in commit
//! order per aggregate, whether the relay was running at commit time or not, and through a
//! broker crash or a registry outage.

mod journal_support;

use eventmart_runtime::on_both_engines;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use eventmart_events::{Envelope, Event};
use eventmart_runtime::db::Engine;
use eventmart_runtime::journal::{ExpectedVersion, Journal, RelayConfig};
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, wait_for,
};
use journal_support::{
    RunningRelay, check_against_committed, inventory_topic, journal, provision, read_topic,
    restocked, wait_until_published,
};
use uuid::Uuid;

type Committed = BTreeMap<String, Vec<(Event, Envelope)>>;

/// Appends `events` to `product`'s stream in one transaction, expecting the version the
/// test has seen so far, and records them in `committed`.
async fn append(
    journal: &Journal,
    committed: &mut Committed,
    product: Uuid,
    events: Vec<(Event, Envelope)>,
) {
    let id = product.to_string();
    let stream = committed.entry(id.clone()).or_default();
    let expected = ExpectedVersion::Exactly(stream.len() as u64);
    let mut tx = journal.db().pool.begin().await.unwrap();
    journal
        .append(&mut tx, &id, expected, events.clone())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    journal.committed();
    stream.extend(events);
}

/// `n` appends of one to three events, round-robin over `products`.
async fn append_many(
    journal: &Journal,
    committed: &mut Committed,
    products: &[Uuid],
    n: usize,
    counter: &mut usize,
) {
    for _ in 0..n {
        *counter += 1;
        let product = products[*counter % products.len()];
        append(
            journal,
            committed,
            product,
            some_events(product, 1 + *counter % 3),
        )
        .await;
    }
}

/// Events for `product`; every other one is caused by the previous and carries a trace, so
/// that all seven envelope headers travel.
fn some_events(product: Uuid, n: usize) -> Vec<(Event, Envelope)> {
    let mut out: Vec<(Event, Envelope)> = Vec::new();
    for i in 0..n {
        let (event, mut envelope) = restocked(product, i as i32 + 1);
        if let Some((_, previous)) = out.last().filter(|_| i % 2 == 1) {
            envelope = envelope
                .caused_by(previous)
                .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        }
        out.push((event, envelope));
    }
    out
}

async fn publishes_every_event_keyed_with_its_envelope_in_commit_order(engine: Engine) {
    let broker = TestBroker::start().await.unwrap();
    let registry = TestRegistry::start().await.unwrap();
    let (_db, journal) = journal(engine).await.unwrap();
    provision(&broker.bootstrap, &journal).await.unwrap();
    let relay = RunningRelay::start(&journal, &broker.bootstrap, &registry.url).unwrap();

    let products: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let mut committed = Committed::new();
    for round in 0..5 {
        for product in &products {
            append(
                &journal,
                &mut committed,
                *product,
                some_events(*product, 1 + round % 2),
            )
            .await;
        }
    }
    let total: usize = committed.values().map(Vec::len).sum();
    wait_until_published(&journal, Duration::from_secs(10))
        .await
        .unwrap();

    let received = read_topic(
        &broker.bootstrap,
        &registry.url,
        &inventory_topic(&journal),
        total,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let duplicates = check_against_committed(&received, &committed);
    assert_eq!(
        duplicates, 0,
        "a relay that never failed publishes each event once"
    );

    let mut conn = journal.db().pool.acquire().await.unwrap();
    for product in &products {
        for stored in journal.load(&mut conn, &product.to_string()).await.unwrap() {
            assert!(
                stored
                    .published_at
                    .is_some_and(|at| at >= stored.recorded_at)
            );
        }
    }
    drop(conn);
    let metrics = relay.metrics.render();
    let topic = inventory_topic(&journal);
    assert!(
        metrics.contains(&format!(
            "eventmart_events_produced_total{{topic=\"{topic}\"}} {total}"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("eventmart_outbox_backlog 0"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "eventmart_relay_latency_seconds_count{{topic=\"{topic}\"}} {total}"
        )),
        "{metrics}"
    );
    relay.stop().await.unwrap();
}

/// Events committed while no relay runs (a crash after commit, before publishing) go out
/// when a relay starts; and events published but not marked (a crash after the broker's
/// acknowledgement) go out again, after their originals, which consumers drop by id.
async fn what_no_relay_published_is_published_when_one_starts(engine: Engine) {
    let broker = TestBroker::start().await.unwrap();
    let registry = TestRegistry::start().await.unwrap();
    let (_db, journal) = journal(engine).await.unwrap();
    provision(&broker.bootstrap, &journal).await.unwrap();

    let products: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut committed = Committed::new();
    for _ in 0..4 {
        for product in &products {
            append(&journal, &mut committed, *product, some_events(*product, 2)).await;
        }
    }
    assert_eq!(journal.unpublished().await.unwrap(), 24);

    // No `committed()` call reaches this relay: it must look by itself when it starts.
    let relay = RunningRelay::start(&journal, &broker.bootstrap, &registry.url).unwrap();
    wait_until_published(&journal, Duration::from_secs(10))
        .await
        .unwrap();
    relay.stop().await.unwrap();

    // As if the relay had died between the acknowledgement and the mark.
    let forgotten = products[1].to_string();
    sqlx::query("UPDATE event_journal SET published_at = NULL WHERE aggregate_id = $1")
        .bind(&forgotten)
        .execute(&journal.db().pool)
        .await
        .unwrap();
    assert_eq!(journal.unpublished().await.unwrap(), 8);
    let relay = RunningRelay::start(&journal, &broker.bootstrap, &registry.url).unwrap();
    wait_until_published(&journal, Duration::from_secs(10))
        .await
        .unwrap();
    relay.stop().await.unwrap();

    let received = read_topic(
        &broker.bootstrap,
        &registry.url,
        &inventory_topic(&journal),
        24,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let duplicates = check_against_committed(&received, &committed);
    assert_eq!(
        duplicates, 8,
        "the forgotten aggregate's events went out again"
    );
}

/// The broker dies (SIGKILL) while a writer commits events and the relay publishes them,
/// and comes back: every committed event arrives, the first copy of each in commit order.
async fn a_broker_crash_mid_run_loses_and_reorders_nothing(engine: Engine) {
    let broker = TestBroker::start().await.unwrap();
    let registry = TestRegistry::start().await.unwrap();
    let (_db, journal) = journal(engine).await.unwrap();
    provision(&broker.bootstrap, &journal).await.unwrap();
    let mut config = RelayConfig::new(&broker.bootstrap);
    config.max_backoff = Duration::from_secs(1);
    let relay = RunningRelay::start_with(&journal, config, &registry.url).unwrap();

    // A writer appending steadily until told to stop.
    let stop_writing = tokio_util::sync::CancellationToken::new();
    let writer = tokio::spawn({
        let journal = journal.clone();
        let stop = stop_writing.clone();
        async move {
            let products: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
            let mut committed = Committed::new();
            let mut appends = 0;
            while !stop.is_cancelled() {
                append_many(&journal, &mut committed, &products, 1, &mut appends).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            committed
        }
    });
    let published = |at_least: i64| {
        let journal = journal.clone();
        move || {
            let journal = journal.clone();
            async move {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM event_journal WHERE published_at IS NOT NULL",
                )
                .fetch_one(&journal.db().pool)
                .await
                .ok()?;
                (n >= at_least).then_some(n)
            }
        }
    };
    let before_crash = wait_for(
        "100 events published",
        Duration::from_secs(10),
        published(100),
    )
    .await
    .unwrap();
    broker.kill().await;
    wait_for(
        "the writer to go on while the broker is down",
        Duration::from_secs(10),
        || async {
            let waiting = journal.unpublished().await.ok()?;
            (waiting >= 150).then_some(())
        },
    )
    .await
    .unwrap();
    let stranded = journal.unpublished().await.unwrap();
    broker.restart().await.unwrap();
    wait_for(
        "100 more events published",
        Duration::from_secs(15),
        published(before_crash + stranded as i64 + 100),
    )
    .await
    .unwrap();
    stop_writing.cancel();
    let committed = writer.await.unwrap();
    let total: usize = committed.values().map(Vec::len).sum();
    wait_until_published(&journal, Duration::from_secs(15))
        .await
        .unwrap();
    relay.stop().await.unwrap();

    let received = read_topic(
        &broker.bootstrap,
        &registry.url,
        &inventory_topic(&journal),
        total,
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    let duplicates = check_against_committed(&received, &committed);
    eprintln!(
        "{engine:?}: {total} events committed, {before_crash} published before the crash, \
         {stranded} waited for the broker; {} records on the topic, {duplicates} duplicates",
        received.len()
    );
}

/// With the schema registry unreachable no event can be encoded: the relay holds them all
/// back (none is marked published, none is skipped) and publishes them, in order, once the
/// registry answers.
async fn events_wait_for_the_registry_and_are_never_skipped(engine: Engine) {
    let broker = TestBroker::start().await.unwrap();
    let (_db, journal) = journal(engine).await.unwrap();
    provision(&broker.bootstrap, &journal).await.unwrap();
    let port = free_port().unwrap();
    let registry_url = format!("http://127.0.0.1:{port}");
    let mut config = RelayConfig::new(&broker.bootstrap);
    config.max_backoff = Duration::from_millis(500);
    let relay = RunningRelay::start_with(&journal, config, &registry_url).unwrap();

    let products: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut committed = Committed::new();
    for product in &products {
        append(&journal, &mut committed, *product, some_events(*product, 3)).await;
    }
    // The relay has tried, failed, and still counts all of them as waiting.
    wait_for(
        "a relay round that could not publish",
        Duration::from_secs(10),
        || async {
            relay
                .metrics
                .render()
                .contains("eventmart_outbox_backlog 9")
                .then_some(())
        },
    )
    .await
    .unwrap();
    assert_eq!(journal.unpublished().await.unwrap(), 9);

    let registry_db = TestDatabase::create(Engine::Sqlite).await.unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut registry = TestProcess::spawn(
        "schema-registry",
        &[],
        &[
            ("SCHEMA_REGISTRY_LISTEN", listen.as_str()),
            ("DATABASE_URL", registry_db.url.as_str()),
        ],
    )
    .unwrap();
    registry
        .wait_http_ok(
            &format!("{registry_url}/health/ready"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    wait_until_published(&journal, Duration::from_secs(10))
        .await
        .unwrap();
    relay.stop().await.unwrap();

    let received = read_topic(
        &broker.bootstrap,
        &registry_url,
        &inventory_topic(&journal),
        9,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(check_against_committed(&received, &committed), 0);
}

/// How fast events go from commit to the broker's acknowledgement: one at a time (the
/// latency a command's caller sees), a backlog left by a relay that was down, and several
/// writers at once. Printed for the record; the assertions are only that all arrive.
async fn relay_figures(engine: Engine) {
    let broker = TestBroker::start().await.unwrap();
    let registry = TestRegistry::start().await.unwrap();
    let (_db, journal) = journal(engine).await.unwrap();
    provision(&broker.bootstrap, &journal).await.unwrap();

    // A backlog: 2,000 events committed while no relay runs, then drained.
    let mut committed = Committed::new();
    let products: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let mut appends = 0;
    append_many(&journal, &mut committed, &products, 1000, &mut appends).await;
    let backlog = journal.unpublished().await.unwrap();
    let started = Instant::now();
    let relay = RunningRelay::start(&journal, &broker.bootstrap, &registry.url).unwrap();
    wait_until_published(&journal, Duration::from_secs(20))
        .await
        .unwrap();
    let drained_in = started.elapsed();
    clear(&journal).await;

    // One at a time: commit, then wait for the acknowledgement.
    let product = Uuid::now_v7();
    for _ in 0..50 {
        append(&journal, &mut committed, product, some_events(product, 1)).await;
        wait_until_published(&journal, Duration::from_secs(5))
            .await
            .unwrap();
    }
    let single = latencies(&journal).await;
    clear(&journal).await;

    // Four writers, 100 transactions of 5 events each.
    let started = Instant::now();
    let writers = (0..4).map(|_| {
        let journal = journal.clone();
        tokio::spawn(async move {
            let mut committed = Committed::new();
            for _ in 0..25 {
                let product = Uuid::now_v7();
                append(&journal, &mut committed, product, some_events(product, 5)).await;
            }
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.unwrap();
    }
    let committed_in = started.elapsed();
    wait_until_published(&journal, Duration::from_secs(20))
        .await
        .unwrap();
    let published_in = started.elapsed();
    let bulk = latencies(&journal).await;
    relay.stop().await.unwrap();

    eprintln!(
        "{engine:?} relay: a backlog of {backlog} events drained in {drained_in:?} ({:.0} events/s)",
        backlog as f64 / drained_in.as_secs_f64()
    );
    eprintln!(
        "{engine:?} relay, one event at a time: commit→ack p50 {} ms, p99 {} ms (max \
         {} ms)",
        single[single.len() / 2],
        single[single.len() * 98 / 100],
        single[single.len() - 1]
    );
    eprintln!(
        "{engine:?} relay, 500 events from 4 writers: committed in {committed_in:?}, all \
         acknowledged {:?} later; commit→ack p50 {} ms, p99 {} ms",
        published_in - committed_in,
        bulk[bulk.len() / 2],
        bulk[bulk.len() * 99 / 100]
    );
    assert_eq!(bulk.len(), 500);
}

/// Empties the journal between two measurements.
async fn clear(journal: &Journal) {
    sqlx::query("DELETE FROM event_journal")
        .execute(&journal.db().pool)
        .await
        .unwrap();
}

/// Milliseconds from commit to acknowledgement of every event in the journal, sorted.
async fn latencies(journal: &Journal) -> Vec<i64> {
    let mut latencies: Vec<i64> =
        sqlx::query_scalar("SELECT published_at - recorded_at FROM event_journal")
            .fetch_all(&journal.db().pool)
            .await
            .unwrap();
    latencies.sort_unstable();
    latencies
}

on_both_engines!(
    publishes_every_event_keyed_with_its_envelope_in_commit_order,
    what_no_relay_published_is_published_when_one_starts,
    a_broker_crash_mid_run_loses_and_reorders_nothing,
    events_wait_for_the_registry_and_are_never_skipped,
    relay_figures,
);
