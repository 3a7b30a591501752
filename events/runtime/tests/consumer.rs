//! Consumers against a real broker, schema registry and database (SQLite and PostgreSQL):
//! every effect applies exactly once through duplicates, replays, restarts, rebalances and
//! transient failures.

mod consumer_support;

use eventmart_runtime::on_both_engines;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventmart_events::{Envelope, Event, to_json};
use eventmart_runtime::consumer::{PassedOver, stored_offsets};
use eventmart_runtime::db::Engine;
use eventmart_runtime::dlq::{self, Selection};
use eventmart_runtime::testing::{postgres_admin_url, wait_for};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use consumer_support::{DEADLINE, Fault, Harness, StockHandler, expected_stock, metric, restock};

on_both_engines!(
    duplicates_and_replays_apply_once,
    a_restarted_consumer_resumes_from_the_database,
    a_member_leaving_mid_stream_loses_and_doubles_nothing,
    a_member_taking_over_partitions_reads_nothing_again,
    transient_failures_are_retried_until_they_pass,
    a_recreated_topic_stops_the_consumer_instead_of_skipping_events,
    processed_ids_past_their_retention_are_forgotten_and_positions_kept,
    records_passed_over_are_settled_in_their_place_and_the_rest_applied,
);

fn series(name: &str, topic: &str) -> String {
    format!("{name}{{topic=\"{topic}\"}}")
}

fn products(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::now_v7()).collect()
}

async fn duplicates_and_replays_apply_once(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(5);
    let events: Vec<Event> = (0..30)
        .map(|i| restock(products[i % 5], i as i32 + 1))
        .collect();
    let envelopes: Vec<Envelope> = events.iter().map(Envelope::new).collect();
    // Given every record produced twice (a producer's retry, a redelivery)…
    for (event, envelope) in events.iter().zip(&envelopes) {
        h.produce_with(event, envelope).await;
        h.produce_with(event, envelope).await;
    }
    // …and five of the events typed into kcat again as JSON with their event_id.
    for (event, envelope) in events.iter().zip(&envelopes).take(5) {
        let json = to_json(event, envelope).to_string();
        h.produce_raw(&envelope.aggregate_id, json.as_bytes(), &[])
            .await;
    }

    // When a consumer reads them all…
    let running = h.spawn(h.config("stock"), StockHandler::new());
    h.wait_settled("stock").await;
    // (Once caught up, its lag reads zero on every partition.)
    wait_for("lag to be reported as zero", DEADLINE, || async {
        let text = running.metrics.render();
        let lags: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("eventmart_consumer_lag{"))
            .collect();
        (lags.len() == 3 && lags.iter().all(|line| line.ends_with(" 0"))).then_some(())
    })
    .await
    .expect("lag reported");
    let metrics = running.stop().await;

    // …then each event took effect once.
    assert_eq!(h.applied().await, (30, 30));
    assert_eq!(h.stock().await, expected_stock(&events));
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_consumed_total", &h.topic)
        ),
        30
    );
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_duplicate_total", &h.topic)
        ),
        35
    );

    // When the group's offsets are forgotten and everything is read again (a replay)…
    sqlx::query("DELETE FROM consumer_offsets")
        .execute(&h.db.pool)
        .await
        .expect("offsets forgotten");
    let mut config = h.config("stock");
    config.kafka_group_id = Some("stock-replay".to_owned());
    let running = h.spawn(config, StockHandler::new());
    h.wait_settled("stock").await;
    let metrics = running.stop().await;

    // …then nothing changes: every record is recognised as a duplicate.
    assert_eq!(h.applied().await, (30, 30));
    assert_eq!(h.stock().await, expected_stock(&events));
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_consumed_total", &h.topic)
        ),
        0
    );
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_duplicate_total", &h.topic)
        ),
        65
    );
}

async fn a_restarted_consumer_resumes_from_the_database(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(6);
    let first: Vec<Event> = (0..40).map(|i| restock(products[i % 6], 1)).collect();
    for event in &first {
        h.produce(event).await;
    }

    // Given a consumer stopped half-way (small batches, and fetching paused whenever eight
    // records wait)…
    let mut config = h.config("stock");
    config.batch_max = 4;
    config.max_buffered = 8;
    // (slow enough that the stop lands mid-stream even when fetches return at once)
    let running = h.spawn(
        config.clone(),
        StockHandler::slow(Duration::from_millis(60)),
    );
    h.wait_applied(15).await;
    running.stop().await;
    let (after_first, distinct) = h.applied().await;
    assert_eq!(after_first, distinct);
    assert!(
        after_first < 40,
        "the first consumer should stop mid-stream"
    );

    // …and more events produced while none runs…
    let second: Vec<Event> = (0..40).map(|i| restock(products[i % 6], 2)).collect();
    for event in &second {
        h.produce(event).await;
    }

    // (Kafka was told too, for tools and lag, though the database is what counts.)
    let stored: BTreeMap<i32, i64> = stored_offsets(&h.db.pool, "stock")
        .await
        .expect("stored offsets")
        .into_iter()
        .map(|((_, partition), next)| (partition, next))
        .collect();
    assert_eq!(h.kafka_committed("stock").await, stored);

    // …when a new consumer starts under a fresh Kafka group but the same database group…
    config.kafka_group_id = Some(format!("stock-{}", Uuid::new_v4().simple()));
    let running = h.spawn(config, StockHandler::new());
    h.wait_settled("stock").await;
    let metrics = running.stop().await;

    // …then it starts where the database says: nothing is lost, nothing read twice.
    let all: Vec<Event> = first.into_iter().chain(second).collect();
    assert_eq!(h.applied().await, (80, 80));
    assert_eq!(h.stock().await, expected_stock(&all));
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_duplicate_total", &h.topic)
        ),
        0
    );
    assert_eq!(
        metric(
            &metrics,
            &series("eventmart_events_consumed_total", &h.topic)
        ),
        80 - after_first as u64
    );
}

async fn a_member_leaving_mid_stream_loses_and_doubles_nothing(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(12);
    let config = h.config("stock");
    // Given two members of one group sharing the database…
    let a = h.spawn(config.clone(), StockHandler::slow(Duration::from_millis(2)));
    let b = h.spawn(config, StockHandler::slow(Duration::from_millis(2)));
    let consumed = series("eventmart_events_consumed_total", &h.topic);
    let (a_metrics, b_metrics) = (a.metrics.clone(), b.metrics.clone());

    // …while events keep coming, one member leaves once both have applied some.
    let b_gone = AtomicBool::new(false);
    let b_gone = &b_gone;
    let produce = async {
        let mut events = Vec::new();
        let mut after_leaving = 0;
        while after_leaving < 60 {
            let event = restock(
                products[events.len() % products.len()],
                1 + (events.len() % 5) as i32,
            );
            h.produce(&event).await;
            events.push(event);
            if b_gone.load(Ordering::SeqCst) {
                after_leaving += 1;
            }
            assert!(events.len() < 5000, "the second member never took part");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        events
    };
    let leave = async move {
        wait_for("both members to apply events", DEADLINE, || async {
            (metric(&a_metrics, &consumed) > 0 && metric(&b_metrics, &consumed) > 0).then_some(())
        })
        .await
        .expect("both members take part");
        b.stop().await;
        b_gone.store(true, Ordering::SeqCst);
    };
    let (events, ()) = tokio::join!(produce, leave);

    // Then the remaining member takes over: every event applied exactly once.
    h.wait_settled("stock").await;
    a.stop().await;
    let n = events.len() as i64;
    assert_eq!(h.applied().await, (n, n));
    assert_eq!(h.stock().await, expected_stock(&events));
}

async fn a_member_taking_over_partitions_reads_nothing_again(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(12);
    let config = h.config("stock");
    let consumed = series("eventmart_events_consumed_total", &h.topic);
    let reread = series("eventmart_events_reread_total", &h.topic);
    // Given two members of one group that have applied everything so far between them…
    let a = h.spawn(config.clone(), StockHandler::new());
    let b = h.spawn(config, StockHandler::new());
    let mut events = Vec::new();
    while events.len() < 300 || metric(&b.metrics, &consumed) == 0 {
        assert!(events.len() < 5000, "the second member never took part");
        let event = restock(products[events.len() % products.len()], 1);
        h.produce(&event).await;
        events.push(event);
    }
    h.wait_settled("stock").await;
    let by_b = metric(&b.metrics, &consumed);
    let before = metric(&a.metrics, &reread);

    // …when one leaves and the other takes its partitions over…
    b.stop().await;
    for i in 0..30 {
        let event = restock(products[i % products.len()], 2);
        h.produce(&event).await;
        events.push(event);
    }
    h.wait_settled("stock").await;

    // …it starts them where the group is, not where it last was itself (or at the
    // beginning): none of the records the other member applied is read again.
    let a = a.stop().await;
    assert_eq!(
        metric(&a, &reread) - before,
        0,
        "records the leaving member had applied ({by_b}) were read again"
    );
    let n = events.len() as i64;
    assert_eq!(h.applied().await, (n, n));
    assert_eq!(h.stock().await, expected_stock(&events));
}

async fn transient_failures_are_retried_until_they_pass(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(3);
    let events: Vec<Event> = (0..10).map(|i| restock(products[i % 3], 3)).collect();
    let envelopes: Vec<Envelope> = events.iter().map(Envelope::new).collect();
    // Given a handler that fails three times on one event, transiently…
    let handler = StockHandler::new();
    let flaky = envelopes[4].event_id;
    handler.fail(flaky, Fault::Transient(3));
    for (event, envelope) in events.iter().zip(&envelopes) {
        h.produce_with(event, envelope).await;
    }

    let running = h.spawn(h.config("stock"), handler.clone());
    h.wait_settled("stock").await;
    let metrics = running.stop().await;

    // …then it is applied once, on the fourth try, and nothing is dead-lettered.
    assert_eq!(handler.calls(flaky), 4);
    assert_eq!(h.times_applied(flaky).await, 1);
    assert_eq!(h.applied().await, (10, 10));
    assert_eq!(h.stock().await, expected_stock(&events));
    let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("dead letters listed");
    assert!(letters.is_empty(), "{letters:?}");
    // (Every dead-letter series is exported from the start, and every one is still zero.)
    let text = metrics.render();
    let series: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("eventmart_events_dead_lettered_total{"))
        .collect();
    assert!(!series.is_empty());
    assert!(series.iter().all(|line| line.ends_with(" 0")), "{series:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_cut_mid_stream_are_retried_on_postgres() {
    let h = Harness::start(Engine::Postgres).await;
    let products = products(6);
    let events: Vec<Event> = (0..60).map(|i| restock(products[i % 6], 2)).collect();
    for event in &events {
        h.produce(event).await;
    }
    let mut config = h.config("stock");
    config.batch_max = 5;
    let running = h.spawn(config, StockHandler::slow(Duration::from_millis(10)));

    // Given the database cutting every connection of the consumer's database, repeatedly…
    let database = h
        .database
        .url
        .rsplit('/')
        .next()
        .expect("database name")
        .to_owned();
    let mut admin = PgConnection::connect(&postgres_admin_url())
        .await
        .expect("PostgreSQL reachable");
    h.wait_applied(5).await;
    let mut cut = 0u64;
    for _ in 0..6 {
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database)
        .fetch_all(&mut admin)
        .await
        .expect("connections cut");
        cut += killed.len() as u64;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cut > 0, "some connections were cut");

    // …then every event is still applied exactly once, and nothing is dead-lettered.
    h.wait_settled("stock").await;
    running.stop().await;
    assert_eq!(h.applied().await, (60, 60));
    assert_eq!(h.stock().await, expected_stock(&events));
    let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("dead letters listed");
    assert!(letters.is_empty(), "{letters:?}");
}

async fn a_recreated_topic_stops_the_consumer_instead_of_skipping_events(engine: Engine) {
    use eventmart_runtime::kafka::{TopicLayout, provision_topics};
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;

    let h = Harness::start(engine).await;
    let products = products(6);
    for i in 0..30 {
        h.produce(&restock(products[i % 6], 1)).await;
    }
    // Given a group that has applied a topic's events…
    let running = h.spawn(h.config("stock"), StockHandler::new());
    h.wait_settled("stock").await;
    running.stop().await;
    let stored = stored_offsets(&h.db.pool, "stock")
        .await
        .expect("stored offsets");

    // …when the topic is deleted and created again, empty…
    let admin: AdminClient<DefaultClientContext> = h.kafka().create().expect("admin client");
    admin
        .delete_topics(&[h.topic.as_str()], &AdminOptions::new())
        .await
        .expect("topic deleted");
    wait_for("the topic to be created again", DEADLINE, || async {
        provision_topics(
            &h.broker.bootstrap,
            &[],
            std::slice::from_ref(&h.topic),
            &TopicLayout::default(),
        )
        .await
        .ok()?;
        let ends = h.ends(&h.topic).await;
        ends.values().all(|end| *end == 0).then_some(())
    })
    .await
    .expect("recreated");
    // (A new producer: the harness's idempotent one remembers the old topic's sequence.)
    let producer: rdkafka::producer::FutureProducer = h.kafka().create().expect("producer");
    let value = h
        .codec
        .encode(&h.topic, &restock(products[0], 1))
        .await
        .expect("encodes");
    let key = products[0].to_string();
    producer
        .send(
            rdkafka::producer::FutureRecord::to(&h.topic)
                .key(&key)
                .payload(&value),
            Duration::from_secs(10),
        )
        .await
        .expect("acknowledged");

    // …then the consumer stops with an error naming where it stood and what to do, instead
    // of silently waiting for offsets it has already passed.
    let running = h.spawn(h.config("stock"), StockHandler::new());
    let outcome = tokio::time::timeout(DEADLINE, running.join)
        .await
        .expect("stops by itself")
        .expect("does not panic");
    let message = outcome.expect_err("an error").to_string();
    assert!(message.contains(&h.topic), "{message}");
    assert!(message.contains("beyond the partition's end"), "{message}");
    assert!(message.contains("rebuild"), "{message}");
    let named = stored.iter().any(|((_, p), next)| {
        message.contains(&format!("position {next} in {} partition {p}", h.topic))
    });
    assert!(named, "{message} names none of {stored:?}");
    // And nothing was applied from the new topic behind the operator's back.
    assert_eq!(h.applied().await, (30, 30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_waiting_out_a_failure_is_not_taken_for_gone_on_postgres() {
    let h = Harness::start(Engine::Postgres).await;
    let products = products(6);
    let events: Vec<Event> = (0..12).map(|i| restock(products[i % 6], 1)).collect();
    let envelopes: Vec<Envelope> = events.iter().map(Envelope::new).collect();
    // Given two members of a group, one of which waits out a failure on one event (a registry
    // or database outage looks the same to the others: a partition whose position stands
    // still while records wait)…
    let handler = StockHandler::new();
    let stalled = envelopes[0].event_id;
    handler.fail(stalled, Fault::Transient(u32::MAX));
    let config = h.config("stock");
    let a = h.spawn(config.clone(), handler.clone());
    let b = h.spawn(config.clone(), handler.clone());
    for (event, envelope) in events.iter().zip(&envelopes) {
        h.produce_with(event, envelope).await;
    }

    // …for well over twice the session timeout (the watchdog's patience)…
    let long = config.session_timeout * 4;
    let tries = (long.as_millis() / config.retry_backoff_max.as_millis()) as u32;
    wait_for("the failure to last", long * 3, || async {
        (handler.calls(stalled) >= tries).then_some(())
    })
    .await
    .expect("the failure lasts");
    handler.heal();
    h.wait_settled("stock").await;
    let (a, b) = (a.stop().await, b.stop().await);

    // …then no member took the standstill for a partition nobody owns: no rejoin, no
    // rebalance, and every event applied once.
    let rejoins = "eventmart_consumer_rejoins_total{group=\"stock\"}";
    assert_eq!(metric(&a, rejoins) + metric(&b, rejoins), 0);
    assert_eq!(h.applied().await, (12, 12));
    assert_eq!(h.stock().await, expected_stock(&events));
}

async fn processed_ids_past_their_retention_are_forgotten_and_positions_kept(engine: Engine) {
    let h = Harness::start(engine).await;
    let products = products(4);
    let events: Vec<Event> = (0..20).map(|i| restock(products[i % 4], 1)).collect();
    for event in &events {
        h.produce(event).await;
    }
    // Given a consumer that keeps processed ids for a moment only…
    let mut config = h.config("stock");
    config.dedup_retention = Duration::from_millis(1);
    config.prune_every = Duration::from_millis(200);
    let running = h.spawn(config.clone(), StockHandler::new());
    h.wait_settled("stock").await;

    // …then they are deleted, all of them…
    let processed = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM consumer_processed")
            .fetch_one(&h.db.pool)
            .await
            .expect("count")
    };
    wait_for("the processed ids to be forgotten", DEADLINE, || async {
        (processed().await == 0).then_some(())
    })
    .await
    .expect("forgotten");
    running.stop().await;

    // …while the positions stay: a consumer under a fresh Kafka group applies nothing again.
    config.kafka_group_id = Some(format!("stock-{}", Uuid::new_v4().simple()));
    let running = h.spawn(config, StockHandler::new());
    h.wait_settled("stock").await;
    running.stop().await;
    assert_eq!(h.applied().await, (20, 20));
    assert_eq!(h.stock().await, expected_stock(&events));
}

async fn records_passed_over_are_settled_in_their_place_and_the_rest_applied(engine: Engine) {
    let h = Harness::start(engine).await;
    let product = Uuid::now_v7();
    // Given twelve events of one key (one partition), in one batch…
    let events: Vec<Event> = (1..=12).map(|q| restock(product, q)).collect();
    let mut ids = Vec::new();
    for event in &events {
        ids.push(h.produce(event).await.event_id);
    }
    let ends = h.ends(&h.topic).await;
    let (&partition, _) = ends.iter().find(|(_, end)| **end > 0).expect("a partition");
    // …and a consumer told to pass over the fifth (a rebuild passing over what the live
    // version dead-lettered)…
    let mut passed = PassedOver::new();
    passed
        .entry(h.topic.clone())
        .or_default()
        .insert((partition, 4));
    let running = h.spawn_passing_over(h.config("stock"), StockHandler::new(), passed);
    h.wait_settled("stock").await;
    running.stop().await;

    // …then every other event is applied, in order, and nothing is dead-lettered again.
    let mut expected = ids.clone();
    expected.remove(4);
    assert_eq!(h.applied_in_order().await, expected);
    let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("dead letters listed");
    assert!(letters.is_empty(), "{letters:?}");
}
