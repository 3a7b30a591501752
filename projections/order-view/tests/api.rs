//! The order-view binary against a real broker, schema registry and database: events typed
//! into the orders, inventory and payments topics show up as orders with their timeline,
//! whatever order they arrive in; customers' orders page newest first; reads that carry a
//! command's position wait for it; malformed reads are refused naming the parameter.

use std::cmp::Reverse;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed};
use eventmart_events::{Currency, Envelope, Event, Money, timestamp};
use eventmart_runtime::command::PositionToken;
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{TestComponent, schemathesis, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// How long reads with a position wait in the tests that expect them to succeed: long
/// enough for the consumer group to form on a busy machine.
const LONG_WAIT: (&str, &str) = ("ORDER_VIEW_WAIT_MAX", "60s");

/// The position token of `events`, as a command that appended them would answer.
fn position(events: &[&(Event, Envelope)]) -> String {
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
    PositionToken::encode(&ids)
}

/// `seconds` after `t0`.
fn later(t0: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t0 + TimeDelta::seconds(seconds)
}

/// An event starting a flow.
fn first(event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// An event caused by `cause`.
fn after(cause: &(Event, Envelope), event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event).caused_by(&cause.1);
    (event, envelope)
}

fn created(order_id: Uuid, user_id: Uuid, product_id: Uuid, at: DateTime<Utc>) -> OrderCreated {
    OrderCreated {
        order_id,
        user_id,
        lines: vec![OrderLine {
            product_id,
            quantity: 3,
            unit_price: Money::new(1999, Currency::EUR),
        }],
        total: Money::new(5997, Currency::EUR),
        payment_token: Some("tok_visa".into()),
        created_at: at,
    }
}

fn reserved(order_id: Uuid, product_id: Uuid, at: DateTime<Utc>) -> InventoryUpdated {
    InventoryUpdated {
        change: InventoryChange::Reserved,
        order_id: Some(order_id),
        lines: vec![StockLine {
            product_id,
            quantity: 3,
        }],
        reason: None,
        updated_at: at,
    }
}

fn confirmed(order_id: Uuid, payment_id: Uuid, at: DateTime<Utc>) -> OrderConfirmed {
    OrderConfirmed {
        order_id,
        payment_id,
        confirmed_at: at,
    }
}

/// The `(event_type, step, service, event_id)` of each timeline entry.
fn steps(order: &Value) -> Vec<(String, String, String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    order["timeline"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    (
                        text(&e["event_type"]),
                        text(&e["step"]),
                        text(&e["service"]),
                        text(&e["event_id"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step(event: &(Event, Envelope), step: &str, service: &str) -> (String, String, String, String) {
    (
        event.0.event_type().to_owned(),
        step.to_owned(),
        service.to_owned(),
        event.1.event_id.to_string(),
    )
}

/// The `order_id`s of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["order_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn orders_are_shown_with_their_saga_whatever_order_the_topics_deliver_it_in(
    engine: Engine,
) -> anyhow::Result<()> {
    let view = TestComponent::start("order-view", engine, &[LONG_WAIT]).await?;
    let (user, product, payment) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t0 = timestamp::now();

    // An order whose saga arrives in the order it happened.
    let a = Uuid::now_v7();
    let a_created = first(created(a, user, product, t0));
    let a_reserved = after(&a_created, reserved(a, product, later(t0, 1)));
    let a_paid = after(
        &a_reserved,
        PaymentCompleted {
            payment_id: payment,
            order_id: a,
            user_id: user,
            amount: Money::new(5997, Currency::EUR),
            completed_at: later(t0, 2),
        },
    );
    let a_confirmed = after(&a_paid, confirmed(a, payment, later(t0, 3)));
    let saga = [&a_created, &a_reserved, &a_paid, &a_confirmed];
    view.produce(&saga).await?;
    let order = view
        .ok(&format!("/orders/{a}?position={}", position(&saga)))
        .await?;
    assert_eq!(
        order,
        json!({
            "order_id": a,
            "user_id": user,
            "status": "CONFIRMED",
            "reason": null,
            "total": {"cents": 5997, "currency": "EUR"},
            "payment_id": payment,
            "created_at": timestamp::to_rfc3339(&t0),
            "lines": [{"product_id": product, "quantity": 3,
                       "unit_price": {"cents": 1999, "currency": "EUR"}}],
            "timeline": order["timeline"].clone(),
        })
    );
    assert_eq!(
        steps(&order),
        [
            step(&a_created, "CREATED", "orders"),
            step(&a_reserved, "RESERVED", "inventory"),
            step(&a_paid, "COMPLETED", "payments"),
            step(&a_confirmed, "CONFIRMED", "orders"),
        ]
    );
    assert_eq!(
        order["timeline"][1]["occurred_at"],
        timestamp::to_rfc3339(&later(t0, 1))
    );

    // An order whose inventory and payment events, then its cancellation, arrive before
    // its order.created.
    let b = Uuid::now_v7();
    let b_created = first(created(b, user, product, later(t0, 10)));
    let b_reserved = after(&b_created, reserved(b, product, later(t0, 11)));
    let b_failed = after(
        &b_reserved,
        PaymentFailed {
            payment_id: Uuid::now_v7(),
            order_id: b,
            user_id: user,
            amount: Money::new(5997, Currency::EUR),
            reason: "card_declined".into(),
            failed_at: later(t0, 12),
        },
    );
    let b_cancelled = after(
        &b_failed,
        OrderCancelled {
            order_id: b,
            reason: CancellationReason::PaymentDeclined,
            detail: None,
            cancelled_at: later(t0, 13),
        },
    );
    view.produce(&[&b_reserved, &b_failed]).await?;
    let early = position(&[&b_reserved, &b_failed]);
    let (status, body) = view.get(&format!("/orders/{b}?position={early}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");

    view.produce(&[&b_cancelled]).await?;
    let order = view
        .ok(&format!(
            "/orders/{b}?position={}",
            position(&[&b_cancelled])
        ))
        .await?;
    assert_eq!(
        (&order["status"], &order["reason"]),
        (&json!("CANCELLED"), &json!("payment_declined"))
    );
    for field in ["user_id", "total", "created_at", "lines"] {
        assert_eq!(order[field], Value::Null, "{field}: {order}");
    }
    assert_eq!(steps(&order).len(), 3, "{order}");

    view.produce(&[&b_created]).await?;
    let order = view
        .ok(&format!("/orders/{b}?position={}", position(&[&b_created])))
        .await?;
    assert_eq!(
        order["status"], "CANCELLED",
        "a late order.created: {order}"
    );
    assert_eq!(order["reason"], "payment_declined");
    assert_eq!(order["user_id"], json!(user));
    assert_eq!(order["total"], json!({"cents": 5997, "currency": "EUR"}));
    assert_eq!(order["created_at"], timestamp::to_rfc3339(&later(t0, 10)));
    assert_eq!(
        steps(&order),
        [
            step(&b_created, "CREATED", "orders"),
            step(&b_reserved, "RESERVED", "inventory"),
            step(&b_failed, "FAILED", "payments"),
            step(&b_cancelled, "CANCELLED", "orders"),
        ]
    );

    let page = view.ok(&format!("/users/{user}/orders")).await?;
    assert_eq!(ids(&page), [b.to_string(), a.to_string()], "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["items"][0]["status"], "CANCELLED");
    assert_eq!(page["items"][1]["payment_id"], json!(payment));
    assert!(page["items"][0].get("timeline").is_none(), "{page}");
    Ok(())
}

on_both_engines!(orders_are_shown_with_their_saga_whatever_order_the_topics_deliver_it_in);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_orders_page_newest_first_and_filter_by_status() -> anyhow::Result<()> {
    let view = TestComponent::start("order-view", Engine::Sqlite, &[LONG_WAIT]).await?;
    let (user, stranger, product) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t0 = timestamp::now();

    // Five orders, the last two placed in the same millisecond; the second and fourth
    // confirmed; and one order of somebody else.
    let mut placed = Vec::new();
    for (n, seconds) in [0, 1, 2, 3, 3].into_iter().enumerate() {
        let id = Uuid::now_v7();
        placed.push((
            n,
            id,
            later(t0, seconds),
            first(created(id, user, product, later(t0, seconds))),
        ));
    }
    let confirmations: Vec<_> = [1, 3]
        .iter()
        .map(|&n| {
            let (_, id, at, cause) = &placed[n];
            after(
                cause,
                confirmed(*id, Uuid::now_v7(), *at + TimeDelta::seconds(10)),
            )
        })
        .collect();
    let theirs = first(created(Uuid::now_v7(), stranger, product, t0));
    let mut events: Vec<&(Event, Envelope)> = placed.iter().map(|(.., e)| e).collect();
    events.extend(confirmations.iter());
    events.push(&theirs);
    view.produce(&events).await?;
    let everything = position(&events);
    view.ok(&format!("/users/{user}/orders?position={everything}"))
        .await?;

    let newest_first = |filter: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut chosen: Vec<_> = placed
            .iter()
            .filter(|(n, ..)| filter(*n))
            .map(|(_, id, at, _)| (Reverse(*at), id.to_string()))
            .collect();
        chosen.sort();
        chosen.into_iter().map(|(_, id)| id).collect()
    };
    let all = newest_first(&|_| true);

    // Pages of two, then of one (which splits the two orders of the same millisecond).
    for limit in [2, 1] {
        let mut seen = Vec::new();
        let mut path = format!("/users/{user}/orders?limit={limit}");
        loop {
            let page = view.ok(&path).await?;
            let got = ids(&page);
            assert!(got.len() <= limit, "{page}");
            seen.extend(got);
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/users/{user}/orders?limit={limit}&cursor={cursor}")
                }
                None => break,
            }
        }
        assert_eq!(seen, all, "pages of {limit}");
    }
    let page = view.ok(&format!("/users/{user}/orders")).await?;
    assert_eq!(ids(&page), all);
    assert_eq!(page["next_cursor"], Value::Null);

    let page = view
        .ok(&format!("/users/{user}/orders?status=CONFIRMED"))
        .await?;
    assert_eq!(ids(&page), newest_first(&|n| n == 1 || n == 3));
    let pending = newest_first(&|n| n != 1 && n != 3);
    let page = view
        .ok(&format!("/users/{user}/orders?status=pending&limit=2"))
        .await?;
    assert_eq!(ids(&page), pending[..2]);
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let page = view
        .ok(&format!(
            "/users/{user}/orders?status=PENDING&limit=2&cursor={cursor}"
        ))
        .await?;
    assert_eq!(ids(&page), pending[2..]);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = view.ok(&format!("/users/{stranger}/orders")).await?;
    assert_eq!(ids(&page), [theirs.0.aggregate_id()]);
    let page = view
        .ok(&format!("/users/{}/orders", Uuid::now_v7()))
        .await?;
    assert_eq!(page, json!({"items": [], "next_cursor": null}));

    let some_order = &placed[0].1;
    let bad = [
        (format!("/users/{user}/orders?status=SHIPPED"), "status"),
        (format!("/users/{user}/orders?limit=0"), "limit"),
        (format!("/users/{user}/orders?limit=101"), "limit"),
        (format!("/users/{user}/orders?limit=ten"), "limit"),
        (format!("/users/{user}/orders?cursor=nope"), "cursor"),
        (format!("/users/{user}/orders?page=2"), "page"),
        (format!("/users/{user}/orders?position=nope"), "position"),
        ("/users/bob/orders".to_owned(), "user_id"),
        ("/orders/nope".to_owned(), "order_id"),
        (format!("/orders/{some_order}?position=nope"), "position"),
        (format!("/orders/{some_order}?expand=lines"), "expand"),
    ];
    for (path, field) in bad {
        let (status, body) = view.get(&path).await?;
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
    let unknown = Uuid::now_v7();
    let (status, body) = view.get(&format!("/orders/{unknown}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");

    let document = view.ok("/openapi.json").await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")),
        "{document}"
    );
    for path in ["/orders/{order_id}", "/users/{user_id}/orders"] {
        assert!(
            document["paths"][path]["get"].is_object(),
            "{path} in {document}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_a_position_wait_until_the_view_has_caught_up_with_it() -> anyhow::Result<()> {
    // The default wait (5 s).
    let view = TestComponent::start("order-view", Engine::Sqlite, &[]).await?;
    let (user, product) = (Uuid::now_v7(), Uuid::now_v7());

    // Once the consumer is up, an event takes moments to show.
    let warm = Uuid::now_v7();
    view.produce(&[&first(created(warm, user, product, timestamp::now()))])
        .await?;
    let path = format!("/orders/{warm}");
    wait_for("the view to show an order", PATIENCE, || async {
        matches!(view.get(&path).await, Ok((StatusCode::OK, _))).then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", view.process.log()))?;

    // A position whose event does not exist yet: the read waits, then gives up.
    let id = Uuid::now_v7();
    let placed = first(created(id, user, product, timestamp::now()));
    let token = position(&[&placed]);
    let read = format!("/orders/{id}?position={token}");
    let started = Instant::now();
    let (status, body) = view.get(&read).await?;
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
    let (status, body) = view
        .get(&format!("/users/{user}/orders?position={token}"))
        .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "not_caught_up");

    // The same read while the event is produced: it answers once the view has it.
    let just_placed = [&placed];
    let (answer, produced) = tokio::join!(view.get(&read), view.produce(&just_placed));
    produced?;
    let (status, order) = answer?;
    assert_eq!(status, StatusCode::OK, "{order}\n{}", view.process.log());
    assert_eq!(order["status"], "PENDING");
    assert_eq!(steps(&order), [step(&placed, "CREATED", "orders")]);
    let page = view
        .ok(&format!("/users/{user}/orders?position={token}"))
        .await?;
    assert_eq!(ids(&page).len(), 2, "{page}");
    Ok(())
}

/// [`schemathesis`] against the order view's own OpenAPI document, with an order to find.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() -> anyhow::Result<()> {
    let view = TestComponent::start(
        "order-view",
        Engine::Sqlite,
        &[("ORDER_VIEW_WAIT_MAX", "1s")],
    )
    .await?;
    let t0 = Utc::now();
    let (order_id, user_id, product_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let placed = first(created(order_id, user_id, product_id, t0));
    let kept = after(&placed, reserved(order_id, product_id, later(t0, 1)));
    view.produce(&[&placed, &kept]).await?;
    view.ok(&format!(
        "/orders/{order_id}?position={}",
        position(&[&placed, &kept])
    ))
    .await?;
    schemathesis(&view.base).await
}
