//! Poison records against a real broker, schema registry and database (SQLite and
//! PostgreSQL): each lands in the dead-letter topic with the reason, the events around it are
//! applied, and a replay after a fix applies what was refused, once.

mod consumer_support;

use std::time::Duration;

use eventmart_events::{Envelope, Event};
use eventmart_runtime::db::Engine;
use eventmart_runtime::dlq::{self, DeadLetter, Selection, headers};
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use uuid::Uuid;

use consumer_support::{Fault, Harness, StockHandler, expected_stock, metric, restock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_dead_lettered_and_replayed_after_a_fix_on_sqlite() {
    poison_is_dead_lettered_and_replayed_after_a_fix(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_is_dead_lettered_and_replayed_after_a_fix_on_postgres() {
    poison_is_dead_lettered_and_replayed_after_a_fix(Engine::Postgres).await;
}

async fn poison_is_dead_lettered_and_replayed_after_a_fix(engine: Engine) {
    let h = Harness::start(engine).await;
    let product = Uuid::now_v7();
    let key = product.to_string();
    let good: Vec<Event> = (1..=6).map(|q| restock(product, q)).collect();
    let envelopes: Vec<Envelope> = good.iter().map(Envelope::new).collect();
    // Given a handler with a bug that refuses the fifth event…
    let handler = StockHandler::new();
    let refused = envelopes[4].event_id;
    handler.fail(refused, Fault::Permanent);

    // …and, on one partition, good events with poison in between.
    h.produce_with(&good[0], &envelopes[0]).await;
    h.produce_raw(
        &key,
        b"\x07not an event",
        &[
            (headers::ERROR_KIND, "left over from elsewhere"),
            ("source", "test"),
        ],
    )
    .await;
    h.produce_with(&good[1], &envelopes[1]).await;
    let schema_invalid = json!({
        "event_type": "inventory.updated",
        "change": "RESTOCKED",
        "lines": "three boxes",
        "updated_at": "2024-05-01T12:00:00Z",
    });
    h.produce_raw(&key, schema_invalid.to_string().as_bytes(), &[])
        .await;
    h.produce_with(&good[2], &envelopes[2]).await;
    let unknown = json!({"event_type": "inventory.teleported", "product_id": key});
    h.produce_raw(&key, unknown.to_string().as_bytes(), &[])
        .await;
    h.produce_with(&good[3], &envelopes[3]).await;
    h.produce_with(&good[4], &envelopes[4]).await;
    h.produce_with(&good[5], &envelopes[5]).await;

    // When the consumer reads them…
    let mut config = h.config("stock");
    config.max_handler_attempts = 2;
    let running = h.spawn(config, handler.clone());
    h.wait_settled("stock").await;

    // …then the good events around the poison are applied, once each…
    let applied_first: Vec<Event> = good
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(h.applied().await, (5, 5));
    assert_eq!(h.stock().await, expected_stock(&applied_first));
    assert_eq!(
        handler.calls(refused),
        2,
        "tried max_handler_attempts times"
    );

    // …and each poison record is in the dead-letter topic, in order, with the reason.
    let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("dead letters listed");
    let kinds: Vec<&str> = letters.iter().map(|l| l.error_kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "undecodable",
            "schema_invalid",
            "unknown_event_type",
            dlq::HANDLER_FAILED
        ]
    );
    let partition = letters[0].original.as_ref().expect("origin").1;
    let origins: Vec<_> = letters.iter().map(|l| l.original.clone()).collect();
    assert_eq!(
        origins,
        [1, 3, 5, 7].map(|offset| Some((h.topic.clone(), partition, offset)))
    );
    for letter in &letters {
        assert_eq!(letter.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(letter.consumer_group.as_deref(), Some("stock"));
        let failed_at = letter.failed_at.as_deref().expect("failed_at");
        assert!(
            chrono::DateTime::parse_from_rfc3339(failed_at).is_ok(),
            "{failed_at}"
        );
        assert!(!letter.error_message.is_empty());
    }
    assert_eq!(letters[0].value.as_deref(), Some(&b"\x07not an event"[..]));
    assert_eq!(
        letters[0].headers,
        vec![("source".to_owned(), Some(b"test".to_vec()))],
        "original headers kept, stale dlq.* ones dropped"
    );
    assert!(
        letters[1].error_message.contains("lines"),
        "{}",
        letters[1].error_message
    );
    assert!(letters[2].error_message.contains("inventory.teleported"));
    assert!(letters[3].error_message.contains("refuses"));
    assert!(letters[3].headers.contains(&(
        "event_id".to_owned(),
        Some(refused.to_string().into_bytes())
    )));
    assert_no_repeated_header_keys(&h, &h.dlq_topic()).await;

    // When the bug is fixed and what the handler refused is replayed…
    handler.heal();
    let only_refused = Selection {
        kind: Some(dlq::HANDLER_FAILED.to_owned()),
        ..Selection::default()
    };
    let report = dlq::replay(&h.kafka(), &h.dlq_topic(), &only_refused)
        .await
        .expect("replayed");
    assert_eq!(report.replayed.len(), 1);
    assert_eq!(report.not_selected, 3);
    h.wait_settled("stock").await;

    // …then it is applied, once.
    assert_eq!(h.applied().await, (6, 6));
    assert_eq!(h.times_applied(refused).await, 1);
    assert_eq!(h.stock().await, expected_stock(&good));

    // When everything is replayed: the applied event is a duplicate now, and the poison fails
    // again, once, without the replay picking up its own failures.
    let report = dlq::replay(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("replayed");
    assert_eq!(report.replayed.len(), 4);
    h.wait_settled("stock").await;
    let letters = dlq::list(&h.kafka(), &h.dlq_topic(), &Selection::default())
        .await
        .expect("dead letters listed");
    let again: Vec<&str> = letters[4..].iter().map(|l| l.error_kind.as_str()).collect();
    assert_eq!(
        again,
        ["undecodable", "schema_invalid", "unknown_event_type"]
    );
    let metrics = running.stop().await;

    assert_eq!(h.applied().await, (6, 6));
    assert_eq!(h.stock().await, expected_stock(&good));
    let topic = &h.topic;
    assert_eq!(
        metric(
            &metrics,
            &format!("eventmart_events_duplicate_total{{topic=\"{topic}\"}}")
        ),
        1
    );
    for (kind, n) in [
        ("undecodable", 2),
        ("schema_invalid", 2),
        ("unknown_event_type", 2),
        ("handler_failed", 1),
    ] {
        let series =
            format!("eventmart_events_dead_lettered_total{{kind=\"{kind}\",topic=\"{topic}\"}}");
        assert_eq!(metric(&metrics, &series), n, "{series}");
    }
}

/// Reads every record of `topic` and checks that none carries a header key twice.
async fn assert_no_repeated_header_keys(h: &Harness, topic: &str) {
    let consumer: StreamConsumer = h
        .kafka()
        .set("group.id", "header-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let ends = h.ends(topic).await;
    let mut assignment = TopicPartitionList::new();
    for (&partition, &end) in &ends {
        if end > 0 {
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&assignment).expect("assigned");
    let total: i64 = ends.values().sum();
    for _ in 0..total {
        let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("a record")
            .expect("no error");
        let letter = DeadLetter::from_message(&message);
        let keys: Vec<&str> = message
            .headers()
            .map(|hs| hs.iter().map(|h| h.key).collect())
            .unwrap_or_default();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            keys.len(),
            "repeated header in {letter:?}: {keys:?}"
        );
    }
}
