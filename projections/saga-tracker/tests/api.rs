//! The saga-tracker binary against a real broker, schema registry and database: events typed
//! into the orders, inventory and payments topics show up as sagas with their steps, where
//! they stand and whom they wait for, whatever order they arrive in; sagas list by state or
//! as stuck, by start a page at a time or the longest quiet first; reads that carry a command's
//! position wait for it; malformed reads are refused naming the parameter.

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use eventmart_events::inventory::InventoryChange::{Released, Reserved, Sold};
use eventmart_events::orders::CancellationReason::{PaymentDeclined, Timeout};
use eventmart_events::{Envelope, Event, timestamp};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{TestComponent, schemathesis, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use support::{
    LONG_WAIT, Order, PATIENCE, after, first, ids, later, position, saga_of, step, steps,
};

async fn sagas_are_shown_with_their_steps_whatever_order_the_topics_deliver_them_in(
    engine: Engine,
) -> anyhow::Result<()> {
    let tracker = TestComponent::start("saga-tracker", engine, &[LONG_WAIT]).await?;
    let t0 = timestamp::now();

    // A saga that arrives in the order it happened.
    let a = Order::random();
    let a_created = first(a.created(t0));
    let a_reserved = after(&a_created, a.stock(Reserved, later(t0, 1)));
    let a_paid = after(&a_reserved, a.paid(later(t0, 2)));
    let a_confirmed = after(&a_paid, a.confirmed(later(t0, 3)));
    let a_sold = after(&a_confirmed, a.stock(Sold, later(t0, 4)));
    let decided = [&a_created, &a_reserved, &a_paid, &a_confirmed];
    tracker.produce(&decided).await?;
    let id = saga_of(&a_created);
    let saga = tracker
        .ok(&format!("/sagas/{id}?position={}", position(&decided)))
        .await?;
    assert_eq!(
        saga,
        json!({
            "correlation_id": id,
            "order_id": a.order_id,
            "state": "confirmed",
            "step": "CONFIRMED",
            "waiting_for": "inventory",
            "started_at": timestamp::to_rfc3339(&t0),
            "last_event_at": timestamp::to_rfc3339(&later(t0, 3)),
            "step_count": 4,
            "steps": saga["steps"].clone(),
        })
    );
    assert_eq!(
        steps(&saga),
        [
            step(&a_created, "CREATED", "orders"),
            step(&a_reserved, "RESERVED", "inventory"),
            step(&a_paid, "COMPLETED", "payments"),
            step(&a_confirmed, "CONFIRMED", "orders"),
        ]
    );
    assert_eq!(saga["steps"][0]["causation_id"], Value::Null);
    assert_eq!(
        saga["steps"][1]["causation_id"],
        json!(a_created.1.event_id)
    );
    assert_eq!(saga["steps"][2]["order_id"], json!(a.order_id));
    tracker.produce(&[&a_sold]).await?;
    let saga = tracker
        .ok(&format!("/sagas/{id}?position={}", position(&[&a_sold])))
        .await?;
    assert_eq!(
        (
            &saga["state"],
            &saga["step"],
            &saga["waiting_for"],
            &saga["step_count"]
        ),
        (&json!("confirmed"), &json!("SOLD"), &Value::Null, &json!(5))
    );

    // A saga whose inventory and payment events, then its cancellation, arrive before its
    // order.created.
    let b = Order::random();
    let b_created = first(b.created(later(t0, 10)));
    let b_reserved = after(&b_created, b.stock(Reserved, later(t0, 11)));
    let b_failed = after(&b_reserved, b.declined(later(t0, 12)));
    let b_cancelled = after(&b_failed, b.cancelled(PaymentDeclined, later(t0, 13)));
    let b_released = after(&b_cancelled, b.stock(Released, later(t0, 14)));
    let id = saga_of(&b_created);
    let at = |events: &[&(Event, Envelope)]| format!("/sagas/{id}?position={}", position(events));
    let standing = |saga: &Value| {
        (
            saga["state"].as_str().unwrap_or_default().to_owned(),
            saga["waiting_for"].as_str().map(str::to_owned),
            saga["step_count"].as_i64().unwrap_or_default(),
        )
    };
    tracker.produce(&[&b_reserved, &b_failed]).await?;
    let saga = tracker.ok(&at(&[&b_reserved, &b_failed])).await?;
    assert_eq!(
        standing(&saga),
        ("running".into(), Some("orders".into()), 2)
    );
    assert_eq!(saga["order_id"], json!(b.order_id));
    assert_eq!(saga["step"], "FAILED");
    assert_eq!(saga["started_at"], timestamp::to_rfc3339(&later(t0, 11)));

    tracker.produce(&[&b_cancelled]).await?;
    let saga = tracker.ok(&at(&[&b_cancelled])).await?;
    assert_eq!(
        standing(&saga),
        ("compensating".into(), Some("inventory".into()), 3)
    );

    tracker.produce(&[&b_created]).await?;
    let saga = tracker.ok(&at(&[&b_created])).await?;
    assert_eq!(
        standing(&saga),
        ("compensating".into(), Some("inventory".into()), 4)
    );
    assert_eq!(saga["started_at"], timestamp::to_rfc3339(&later(t0, 10)));
    assert_eq!(saga["step"], "CANCELLED", "the latest step by time: {saga}");

    tracker.produce(&[&b_released]).await?;
    let saga = tracker.ok(&at(&[&b_released])).await?;
    assert_eq!(standing(&saga), ("cancelled".into(), None, 5));
    assert_eq!(
        steps(&saga),
        [
            step(&b_created, "CREATED", "orders"),
            step(&b_reserved, "RESERVED", "inventory"),
            step(&b_failed, "FAILED", "payments"),
            step(&b_cancelled, "CANCELLED", "orders"),
            step(&b_released, "RELEASED", "inventory"),
        ]
    );

    // A refund typed in without a correlation id is a step of its order's saga.
    let c = Order::random();
    let c_refunded = first(c.refunded(later(t0, 20)));
    tracker.produce(&[&c_refunded]).await?;
    let saga = tracker
        .ok(&format!(
            "/sagas/{}?position={}",
            c.order_id,
            position(&[&c_refunded])
        ))
        .await?;
    assert_eq!(steps(&saga), [step(&c_refunded, "REFUNDED", "payments")]);
    assert_eq!(saga["correlation_id"], json!(c.order_id));

    let unknown = Uuid::now_v7();
    let (status, body) = tracker.get(&format!("/sagas/{unknown}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    Ok(())
}

on_both_engines!(sagas_are_shown_with_their_steps_whatever_order_the_topics_deliver_them_in);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sagas_list_by_state_or_as_stuck_by_start_or_the_longest_quiet_first() -> anyhow::Result<()>
{
    let tracker = TestComponent::start("saga-tracker", Engine::Sqlite, &[LONG_WAIT]).await?;
    let now = timestamp::now();
    let minutes = |m: i64| later(now, m * 60);

    let [s1, s2, s3, s4, s5] = [(); 5].map(|()| Order::random());
    // Running, quiet for ten minutes (stuck).
    let s1_created = first(s1.created(minutes(-10)));
    // Cancelled at its deadline eight minutes ago, its stock still held (stuck).
    let s2_created = first(s2.created(minutes(-9)));
    let s2_reserved = after(&s2_created, s2.stock(Reserved, minutes(-9)));
    let s2_cancelled = after(&s2_reserved, s2.cancelled(Timeout, minutes(-8)));
    // Confirmed and sold seven minutes ago.
    let s3_created = first(s3.created(minutes(-7)));
    let s3_confirmed = after(&s3_created, s3.confirmed(minutes(-7)));
    let s3_sold = after(&s3_confirmed, s3.stock(Sold, minutes(-7)));
    // Placed after the listings' time (clocks differ): running, never quiet long enough.
    let s4_created = first(s4.created(minutes(5)));
    // Cancelled and released six minutes ago.
    let s5_created = first(s5.created(minutes(-6)));
    let s5_reserved = after(&s5_created, s5.stock(Reserved, minutes(-6)));
    let s5_cancelled = after(&s5_reserved, s5.cancelled(Timeout, minutes(-6)));
    let s5_released = after(&s5_cancelled, s5.stock(Released, minutes(-6)));
    let events = [
        &s1_created,
        &s2_created,
        &s2_reserved,
        &s2_cancelled,
        &s3_created,
        &s3_confirmed,
        &s3_sold,
        &s4_created,
        &s5_created,
        &s5_reserved,
        &s5_cancelled,
        &s5_released,
    ];
    tracker.produce(&events).await?;
    tracker
        .ok(&format!("/sagas?position={}", position(&events)))
        .await?;
    let sagas = [
        &s1_created,
        &s2_created,
        &s3_created,
        &s4_created,
        &s5_created,
    ]
    .map(|created| saga_of(created).to_string());
    let [s1, s2, s3, s4, s5] = sagas.each_ref().map(String::as_str);

    let listed = async |query: &str| -> anyhow::Result<Vec<String>> {
        let page = tracker.ok(&format!("/sagas{query}")).await?;
        assert_eq!(page["next_cursor"], Value::Null, "{query}: {page}");
        assert_eq!(page["truncated"], false, "{query}: {page}");
        Ok(ids(&page))
    };
    // By start: by correlation id, which the services hand out in ever later UUIDv7s.
    let by_start = |sagas: &[&str]| -> Vec<String> {
        let mut sorted: Vec<String> = sagas.iter().map(|s| (*s).to_owned()).collect();
        sorted.sort();
        sorted
    };
    assert_eq!(listed("").await?, by_start(&[s1, s2, s3, s4, s5]));
    assert_eq!(listed("?sort=quiet").await?, [s1, s2, s3, s5, s4]);
    assert_eq!(listed("?state=stuck").await?, by_start(&[s1, s2]));
    assert_eq!(listed("?state=stuck&sort=quiet").await?, [s1, s2]);
    assert_eq!(listed("?state=stuck&older_than=9m").await?, [s1]);
    assert_eq!(
        listed("?state=stuck&older_than=1h").await?,
        Vec::<String>::new()
    );
    assert_eq!(listed("?state=running").await?, by_start(&[s1, s4]));
    assert_eq!(listed("?state=running&older_than=1m").await?, [s1]);
    assert_eq!(listed("?state=compensating").await?, [s2]);
    assert_eq!(listed("?state=confirmed").await?, [s3]);
    assert_eq!(listed("?state=cancelled&older_than=30s").await?, [s5]);
    assert_eq!(listed("?older_than=390s").await?, by_start(&[s1, s2, s3]));

    let page = tracker.ok("/sagas?state=stuck&sort=quiet").await?;
    let item = &page["items"][1];
    assert_eq!(
        (&item["state"], &item["waiting_for"], &item["step"]),
        (
            &json!("compensating"),
            &json!("inventory"),
            &json!("CANCELLED")
        )
    );
    assert!(item.get("steps").is_none(), "{page}");

    // Pages of two, then of one.
    for limit in [2, 1] {
        let mut seen = Vec::new();
        let mut path = format!("/sagas?limit={limit}");
        loop {
            let page = tracker.ok(&path).await?;
            let got = ids(&page);
            assert!(got.len() <= limit, "{page}");
            seen.extend(got);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/sagas?limit={limit}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, by_start(&[s1, s2, s3, s4, s5]), "pages of {limit}");
    }
    let stuck = by_start(&[s1, s2]);
    let page = tracker.ok("/sagas?state=stuck&limit=1").await?;
    assert_eq!(ids(&page), stuck[..1]);
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let page = tracker
        .ok(&format!("/sagas?state=stuck&limit=1&cursor={cursor}"))
        .await?;
    assert_eq!(ids(&page), stuck[1..]);
    assert_eq!(page["next_cursor"], Value::Null);
    // The longest quiet first is one page, which says what it leaves out.
    let quiet = tracker.ok("/sagas?sort=quiet&limit=2").await?;
    assert_eq!(ids(&quiet), [s1, s2]);
    assert_eq!(
        (&quiet["next_cursor"], &quiet["truncated"]),
        (&Value::Null, &json!(true))
    );

    let bad = [
        ("/sagas?state=stuckk".to_owned(), "state"),
        ("/sagas?state=RUNNING".to_owned(), "state"),
        ("/sagas?older_than=soon".to_owned(), "older_than"),
        ("/sagas?older_than=30".to_owned(), "older_than"),
        ("/sagas?limit=0".to_owned(), "limit"),
        ("/sagas?limit=101".to_owned(), "limit"),
        ("/sagas?limit=ten".to_owned(), "limit"),
        ("/sagas?cursor=nope".to_owned(), "cursor"),
        (format!("/sagas?sort=quiet&cursor={cursor}"), "cursor"),
        ("/sagas?sort=oldest".to_owned(), "sort"),
        ("/sagas?page=2".to_owned(), "page"),
        ("/sagas?position=nope".to_owned(), "position"),
        ("/sagas/nope".to_owned(), "correlation_id"),
        (format!("/sagas/{s1}?position=nope"), "position"),
        (format!("/sagas/{s1}?expand=steps"), "expand"),
    ];
    for (path, field) in bad {
        let (status, body) = tracker.get(&path).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(
            (&body["error"], &body["field"]),
            (&json!("invalid"), &json!(field)),
            "{path}: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }

    let document = tracker.ok("/openapi.json").await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")),
        "{document}"
    );
    for path in ["/sagas/{correlation_id}", "/sagas"] {
        assert!(
            document["paths"][path]["get"].is_object(),
            "{path} in {document}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_a_position_wait_until_the_tracker_has_caught_up_with_it() -> anyhow::Result<()>
{
    // The default wait (5 s).
    let tracker = TestComponent::start("saga-tracker", Engine::Sqlite, &[]).await?;

    // Once the consumer is up, an event takes moments to show.
    let warm = first(Order::random().created(timestamp::now()));
    tracker.produce(&[&warm]).await?;
    let path = format!("/sagas/{}", saga_of(&warm));
    wait_for("the tracker to show a saga", PATIENCE, || async {
        matches!(tracker.get(&path).await, Ok((StatusCode::OK, _))).then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", tracker.process.log()))?;

    // A position whose event does not exist yet: the read waits, then gives up.
    let placed = first(Order::random().created(timestamp::now()));
    let token = position(&[&placed]);
    let read = format!("/sagas/{}?position={token}", saga_of(&placed));
    let started = Instant::now();
    let (status, body) = tracker.get(&read).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "not_caught_up");
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("5s")),
        "{body}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(4900),
        "{:?}",
        started.elapsed()
    );
    let (status, body) = tracker
        .get(&format!("/sagas?state=running&position={token}"))
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "not_caught_up");

    // The same read while the event is produced: it answers once the tracker has it.
    let just_placed = [&placed];
    let (answer, produced) = tokio::join!(tracker.get(&read), tracker.produce(&just_placed));
    produced?;
    let (status, saga) = answer?;
    assert_eq!(status, StatusCode::OK, "{saga}\n{}", tracker.process.log());
    assert_eq!(
        (&saga["state"], &saga["waiting_for"]),
        (&json!("running"), &json!("inventory"))
    );
    assert_eq!(steps(&saga), [step(&placed, "CREATED", "orders")]);
    let page = tracker
        .ok(&format!("/sagas?state=running&position={token}"))
        .await?;
    assert_eq!(ids(&page).len(), 2, "{page}");
    Ok(())
}

/// [`schemathesis`] against the saga tracker's own OpenAPI document, with a running saga.
/// Durations, like cursors and position tokens, are strings that a schema cannot describe
/// exactly, so a made-up one is rightly refused with 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() -> anyhow::Result<()> {
    let tracker = TestComponent::start(
        "saga-tracker",
        Engine::Sqlite,
        &[("SAGA_TRACKER_WAIT_MAX", "1s")],
    )
    .await?;
    let order = Order::random();
    let t0 = Utc::now();
    let placed = first(order.created(t0));
    let kept = after(&placed, order.stock(Reserved, later(t0, 1)));
    tracker.produce(&[&placed, &kept]).await?;
    tracker
        .ok(&format!(
            "/sagas/{}?position={}",
            saga_of(&placed),
            position(&[&placed, &kept])
        ))
        .await?;
    schemathesis(&tracker.base).await
}
