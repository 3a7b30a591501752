//! Appending to the journal on SQLite and PostgreSQL: events load back as appended, the
//! expected version is enforced (also against a concurrent writer), and an append commits
//! or rolls back with the caller's transaction.

mod journal_support;

use eventmart_runtime::on_both_engines;
use std::time::Duration;

use eventmart_runtime::db::Engine;
use eventmart_runtime::journal::{AppendError, ExpectedVersion, Journal};
use eventmart_runtime::testing::wait_for;
use journal_support::{journal, restocked};
use uuid::Uuid;

async fn append_one(
    journal: &Journal,
    product: Uuid,
    expected: ExpectedVersion,
) -> Result<eventmart_runtime::journal::Appended, AppendError> {
    let mut tx = journal.db().pool.begin().await?;
    let appended = journal
        .append(
            &mut tx,
            &product.to_string(),
            expected,
            vec![restocked(product, 1)],
        )
        .await?;
    tx.commit().await?;
    journal.committed();
    Ok(appended)
}

async fn appended_events_load_back_in_order_with_their_envelopes(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let id = product.to_string();
    let first = vec![restocked(product, 5), restocked(product, 7)];
    let second = vec![restocked(product, 2)];

    let mut tx = journal.db().pool.begin().await.unwrap();
    let appended = journal
        .append(&mut tx, &id, ExpectedVersion::NoStream, first.clone())
        .await
        .unwrap();
    assert_eq!(appended.version, 2);
    assert_eq!(
        appended.event_ids,
        [first[0].1.event_id, first[1].1.event_id]
    );
    let again = journal
        .append(&mut tx, &id, ExpectedVersion::Exactly(2), second.clone())
        .await
        .unwrap();
    assert_eq!(again.version, 3);
    assert!(again.positions[0] > appended.positions[1]);
    tx.commit().await.unwrap();

    let mut conn = journal.db().pool.acquire().await.unwrap();
    assert_eq!(journal.version(&mut conn, &id).await.unwrap(), 3);
    let stored = journal.load(&mut conn, &id).await.unwrap();
    let expected: Vec<_> = first.iter().chain(&second).collect();
    assert_eq!(stored.len(), 3);
    for (i, (stored, (event, envelope))) in stored.iter().zip(expected).enumerate() {
        assert_eq!(stored.sequence, i as u64 + 1);
        assert_eq!(&stored.event, event);
        assert_eq!(&stored.envelope, envelope);
        assert_eq!(stored.topic, journal.topics().name(event.topic()));
        assert_eq!(stored.published_at, None);
    }
    assert_eq!(journal.version(&mut conn, "unknown").await.unwrap(), 0);
    assert!(journal.load(&mut conn, "unknown").await.unwrap().is_empty());
    // On SQLite the pool has one connection.
    drop(conn);
    assert_eq!(journal.unpublished().await.unwrap(), 3);
}

async fn the_stored_event_is_its_natural_json(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let (event, envelope) = restocked(product, 5);
    let mut tx = journal.db().pool.begin().await.unwrap();
    journal
        .append(
            &mut tx,
            &product.to_string(),
            ExpectedVersion::Any,
            vec![(event.clone(), envelope.clone())],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let sql = match engine {
        Engine::Sqlite => "SELECT event_json, event_type, topic, occurred_at FROM event_journal",
        Engine::Postgres => {
            "SELECT event_json::text, event_type, topic, occurred_at FROM event_journal"
        }
    };
    let (json, event_type, topic, occurred_at): (String, String, String, i64) = sqlx::query_as(sql)
        .fetch_one(&journal.db().pool)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json, eventmart_events::to_json(&event, &envelope));
    assert_eq!(json["change"], "RESTOCKED");
    assert_eq!(json["event_id"], envelope.event_id.to_string());
    assert_eq!(event_type, "inventory.updated");
    assert_eq!(topic, journal.topics().name(event.topic()));
    assert_eq!(occurred_at, envelope.occurred_at.timestamp_millis());
}

async fn a_stale_expected_version_is_a_conflict(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    append_one(&journal, product, ExpectedVersion::NoStream)
        .await
        .unwrap();

    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exactly(0),
        ExpectedVersion::Exactly(2),
    ] {
        match append_one(&journal, product, expected).await {
            Err(AppendError::Conflict {
                aggregate_id,
                expected: reported,
                actual,
            }) => {
                assert_eq!(aggregate_id, product.to_string());
                assert_eq!(reported, expected);
                assert_eq!(actual, 1);
            }
            other => panic!("expected a conflict for {expected:?}, got {other:?}"),
        }
    }
    append_one(&journal, product, ExpectedVersion::Exactly(1))
        .await
        .unwrap();
    let appended = append_one(&journal, product, ExpectedVersion::Any)
        .await
        .unwrap();
    assert_eq!(appended.version, 3);
}

/// Many appenders race for the same aggregate, each expecting the version it read: exactly
/// one wins, the others get a typed conflict.
async fn of_concurrent_appenders_expecting_one_version_exactly_one_wins(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let racers = (0..8).map(|_| {
        let journal = journal.clone();
        tokio::spawn(async move { append_one(&journal, product, ExpectedVersion::NoStream).await })
    });
    let results = futures::future::join_all(racers).await;
    let wins = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(AppendError::Conflict { actual: 1, .. }))))
        .count();
    assert_eq!((wins, conflicts), (1, 7), "{results:?}");
    let mut conn = journal.db().pool.acquire().await.unwrap();
    assert_eq!(
        journal
            .load(&mut conn, &product.to_string())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn an_append_rolls_back_with_its_transaction(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    {
        let mut tx = journal.db().pool.begin().await.unwrap();
        journal
            .append(
                &mut tx,
                &product.to_string(),
                ExpectedVersion::NoStream,
                vec![restocked(product, 1)],
            )
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    assert_eq!(journal.unpublished().await.unwrap(), 0);
    append_one(&journal, product, ExpectedVersion::NoStream)
        .await
        .unwrap();
}

async fn events_that_do_not_belong_are_refused(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let mut tx = journal.db().pool.begin().await.unwrap();

    let other = restocked(Uuid::now_v7(), 1);
    let err = journal
        .append(
            &mut tx,
            &product.to_string(),
            ExpectedVersion::Any,
            vec![other],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid { .. }), "{err}");

    let (event, mut envelope) = restocked(product, 1);
    envelope.event_type = "order.created".to_owned();
    let err = journal
        .append(
            &mut tx,
            &product.to_string(),
            ExpectedVersion::Any,
            vec![(event, envelope)],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AppendError::Invalid { .. }), "{err}");

    tx.rollback().await.unwrap();
}

async fn the_same_event_cannot_be_appended_twice(engine: Engine) {
    let (_db, journal) = journal(engine).await.unwrap();
    let product = Uuid::now_v7();
    let event = restocked(product, 1);
    let mut tx = journal.db().pool.begin().await.unwrap();
    journal
        .append(
            &mut tx,
            &product.to_string(),
            ExpectedVersion::Any,
            vec![event.clone()],
        )
        .await
        .unwrap();
    let err = journal
        .append(
            &mut tx,
            &product.to_string(),
            ExpectedVersion::Any,
            vec![event.clone()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppendError::DuplicateEvent { event_id } if event_id == event.1.event_id),
        "{err}"
    );
}

on_both_engines!(
    appended_events_load_back_in_order_with_their_envelopes,
    the_stored_event_is_its_natural_json,
    a_stale_expected_version_is_a_conflict,
    of_concurrent_appenders_expecting_one_version_exactly_one_wins,
    an_append_rolls_back_with_its_transaction,
    events_that_do_not_belong_are_refused,
    the_same_event_cannot_be_appended_twice,
);

/// Two transactions append to one aggregate at once on PostgreSQL: the second reads the
/// version before the first commits, so only the unique (aggregate, sequence) constraint
/// can catch it, and it must surface as the same typed conflict.
#[tokio::test]
async fn postgres_a_race_caught_by_the_unique_constraint_is_a_typed_conflict() {
    let (_db, journal) = journal(Engine::Postgres).await.unwrap();
    let product = Uuid::now_v7();
    let id = product.to_string();

    let mut first = journal.db().pool.begin().await.unwrap();
    journal
        .append(
            &mut first,
            &id,
            ExpectedVersion::NoStream,
            vec![restocked(product, 1)],
        )
        .await
        .unwrap();

    let second = tokio::spawn({
        let journal = journal.clone();
        let id = id.clone();
        async move {
            let mut tx = journal.db().pool.begin().await?;
            journal
                .append(
                    &mut tx,
                    &id,
                    ExpectedVersion::NoStream,
                    vec![restocked(product, 2)],
                )
                .await
        }
    });
    let any = tokio::spawn({
        let journal = journal.clone();
        let id = id.clone();
        async move {
            let mut tx = journal.db().pool.begin().await?;
            let appended = journal
                .append(
                    &mut tx,
                    &id,
                    ExpectedVersion::Any,
                    vec![restocked(product, 3)],
                )
                .await?;
            tx.commit().await?;
            Ok::<_, AppendError>(appended)
        }
    });
    // Both wait on the first transaction's row.
    wait_for(
        "both appenders to wait for the first",
        Duration::from_secs(10),
        || async {
            // Sessions of this test's database waiting for a lock (other tests' sessions
            // wait in theirs).
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&journal.db().pool)
            .await
            .ok()?;
            (waiting >= 2).then_some(())
        },
    )
    .await
    .unwrap();
    first.commit().await.unwrap();

    // The version it reports is the one it finds after losing: 1, or 2 if the `Any`
    // append committed in between.
    match second.await.unwrap() {
        Err(AppendError::Conflict {
            expected: ExpectedVersion::NoStream,
            actual: 1 | 2,
            ..
        }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    // An append expecting any version goes after the winner instead.
    assert_eq!(any.await.unwrap().unwrap().version, 2);
}
