//! Parking per key against a real broker, schema registry and database (SQLite and
//! PostgreSQL): an event that cannot be applied yet holds up its own key and nothing else;
//! its key's later events wait behind it in order; it applies once the fact arrives, or goes
//! to the dead-letter topic with the events behind it, in order, once its budget runs out.

mod consumer_support;

use std::time::Duration;

use eventmart_events::{Envelope, Event};
use eventmart_runtime::consumer::PARK_EXPIRED;
use eventmart_runtime::db::Engine;
use eventmart_runtime::dlq::{self, Selection};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::wait_for;
use uuid::Uuid;

use consumer_support::{DEADLINE, Fault, Harness, StockHandler, metric, restock};

on_both_engines!(
    a_waiting_event_holds_up_its_key_alone,
    a_parked_key_goes_to_the_dead_letter_topic_in_order_when_its_budget_runs_out,
);

/// Produces `event` and returns its event id.
async fn produce(h: &Harness, event: &Event) -> Uuid {
    h.produce(event).await.event_id
}

/// Produces, for product `waiting`, an event the handler cannot apply yet and two more behind
/// it; then one event for each of `others`. Returns the three ids of `waiting`'s events.
async fn scenario(
    h: &Harness,
    handler: &StockHandler,
    waiting: Uuid,
    others: &[Uuid],
) -> [Uuid; 3] {
    let first = restock(waiting, 1);
    let envelope = Envelope::new(&first);
    handler.fail(envelope.event_id, Fault::Waiting);
    h.produce_with(&first, &envelope).await;
    let second = produce(h, &restock(waiting, 2)).await;
    let third = produce(h, &restock(waiting, 4)).await;
    for product in others {
        produce(h, &restock(*product, 10)).await;
    }
    [envelope.event_id, second, third]
}

async fn a_waiting_event_holds_up_its_key_alone(engine: Engine) {
    let h = Harness::start(engine).await;
    let handler = StockHandler::new();
    let waiting = Uuid::now_v7();
    // Nine other products: on three partitions, several share the waiting one's.
    let others: Vec<Uuid> = (0..9).map(|_| Uuid::now_v7()).collect();
    let mut config = h.config("stock");
    config.park_budget = Duration::from_secs(300);
    config.park_retry_max = Duration::from_millis(500);

    // Given an event that cannot be applied yet, two more of its key behind it, and events
    // of other keys after them…
    let ids = scenario(&h, &handler, waiting, &others).await;
    let running = h.spawn(config, handler.clone());

    // …then every partition moves past them all, every other key's event applies…
    h.wait_settled("stock").await;
    h.wait_applied(9).await;
    let stock = h.stock().await;
    assert!(
        others.iter().all(|p| stock.get(p) == Some(&10)),
        "{stock:?}"
    );
    // …and the waiting key's three events are parked, in order, applied nowhere.
    assert_eq!(stock.get(&waiting), None);
    let parked = h.parked().await;
    let parked_ids: Vec<Uuid> = parked.iter().map(|(_, _, id, _)| *id).collect();
    assert_eq!(parked_ids, ids);
    assert!(parked[0].3.contains("not known yet"), "{}", parked[0].3);
    assert!(parked[1].3.contains("queued behind"), "{}", parked[1].3);
    assert!(
        parked
            .windows(2)
            .all(|w| w[0].0 == w[1].0 && w[0].1 < w[1].1)
    );
    assert!(handler.calls(ids[0]) >= 1);
    assert_eq!(handler.calls(ids[1]), 0, "queued events wait unhandled");

    // When the fact it waits for arrives…
    handler.heal();

    // …then the three apply, in their order, once each, and nothing stays parked.
    h.wait_applied(12).await;
    wait_for("the queue to empty", DEADLINE, || async {
        h.parked().await.is_empty().then_some(())
    })
    .await
    .expect("queue empties");
    let order: Vec<Uuid> = h
        .applied_in_order()
        .await
        .into_iter()
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(order, ids);
    assert_eq!(h.stock().await.get(&waiting), Some(&7));
    let metrics = running.stop().await;
    assert_eq!(h.applied().await, (12, 12));
    let topic = &h.topic;
    assert_eq!(
        metric(
            &metrics,
            &format!("eventmart_events_parked_total{{topic=\"{topic}\"}}")
        ),
        3
    );
    assert_eq!(
        metric(
            &metrics,
            &format!("eventmart_events_consumed_total{{topic=\"{topic}\"}}")
        ),
        12
    );
}

async fn a_parked_key_goes_to_the_dead_letter_topic_in_order_when_its_budget_runs_out(
    engine: Engine,
) {
    let h = Harness::start(engine).await;
    let handler = StockHandler::new();
    let waiting = Uuid::now_v7();
    let others: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let mut config = h.config("stock");
    config.park_budget = Duration::from_secs(8);
    config.park_retry_max = Duration::from_millis(300);

    // Given an event whose fact never comes, with two more of its key behind it…
    let ids = scenario(&h, &handler, waiting, &others).await;
    let running = h.spawn(config.clone(), handler.clone());
    h.wait_settled("stock").await;
    h.wait_applied(3).await;
    let parked = h.parked().await;
    assert_eq!(parked.len(), 3);
    // (A restart while they wait does not give them a new budget.)
    let give_up_at = || async {
        sqlx::query_scalar::<_, i64>("SELECT MIN(give_up_at) FROM consumer_parked")
            .fetch_one(&h.db.pool)
            .await
            .expect("budget")
    };
    let budget = give_up_at().await;
    let before = running.stop().await;
    let running = h.spawn(config, handler.clone());
    assert_eq!(give_up_at().await, budget);

    // …when its budget runs out, it and the two behind it are in the dead-letter topic, in
    // their order, with the reason…
    let letters = wait_for("three dead letters", DEADLINE, || async {
        let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
            .await
            .ok()?;
        (letters.len() >= 3).then_some(letters)
    })
    .await
    .expect("dead-lettered");
    assert_eq!(letters.len(), 3);
    let offsets: Vec<i64> = letters
        .iter()
        .map(|l| l.original.as_ref().expect("origin").2)
        .collect();
    assert_eq!(offsets, parked.iter().map(|p| p.1).collect::<Vec<_>>());
    assert!(letters.iter().all(|l| l.error_kind == PARK_EXPIRED));
    assert!(
        letters[0].error_message.contains("not known yet"),
        "{}",
        letters[0].error_message
    );
    assert!(
        letters[1].error_message.contains(&ids[0].to_string()),
        "{}",
        letters[1].error_message
    );
    wait_for("the queue to empty", DEADLINE, || async {
        h.parked().await.is_empty().then_some(())
    })
    .await
    .expect("queue empties");
    assert_eq!(h.times_applied(ids[0]).await, 0);

    // …and once the cause is fixed, replaying them applies them in their order.
    handler.heal();
    let report = dlq::replay(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("replayed");
    assert_eq!(report.replayed.len(), 3);
    h.wait_applied(6).await;
    let order: Vec<Uuid> = h
        .applied_in_order()
        .await
        .into_iter()
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(order, ids);
    let after = running.stop().await;
    let series = format!(
        "eventmart_events_dead_lettered_total{{kind=\"{PARK_EXPIRED}\",topic=\"{}\"}}",
        h.topic
    );
    assert_eq!(metric(&before, &series) + metric(&after, &series), 3);
}
