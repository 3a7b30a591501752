//! The order saga end to end: every service a real process, a real broker, each service on
//! its own database. Each test drives the system through its HTTP APIs only and checks what a
//! user sees: order status, stock figures, payments, and the events on the topics.

use std::time::Duration;

use eventmart_events::{Event, Topic};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::topics::read_all;
use eventmart_system::{Ledger, Settings, StatusCode, System};
use serde_json::Value;
use uuid::Uuid;

const SAGA: Duration = Duration::from_secs(60);

async fn stock(system: &System, product: Uuid) -> anyhow::Result<Value> {
    let (status, body) = system
        .get("inventory", &format!("/stock/{product}"))
        .await?;
    anyhow::ensure!(status == StatusCode::OK, "stock answered {status}: {body}");
    Ok(body)
}

fn figures(stock: &Value) -> [i64; 4] {
    ["received", "available", "reserved", "sold"].map(|f| stock[f].as_i64().unwrap_or(-1))
}

/// Waits until no product has units reserved (every compensation has run).
async fn wait_no_reservations(system: &System, products: &[Uuid]) -> anyhow::Result<()> {
    for product in products {
        system
            .wait_until(
                "inventory",
                &format!("/stock/{product}"),
                "reservations to be released or sold",
                SAGA,
                |s| s["reserved"] == 0,
            )
            .await?;
    }
    Ok(())
}

async fn happy_path(engine: Engine) -> anyhow::Result<()> {
    let system = System::start(Settings::new(engine)).await?;
    let user = system.register_user("ada@example.com").await?;
    let book = system.create_product("BOOK-1", 1999).await?;
    let pen = system.create_product("PEN-1", 250).await?;
    system.restock(book, 5).await?;
    system.restock(pen, 10).await?;

    let order = system
        .place_order(user, &[(book, 2), (pen, 3)], None)
        .await?;
    let ended = system.wait_final(order, SAGA).await?;
    assert_eq!(ended["status"], "CONFIRMED", "{ended}");
    assert_eq!(ended["total"]["cents"], 2 * 1999 + 3 * 250);

    let sold = |s: &Value| s["sold"] != 0;
    let book_stock = system
        .wait_until(
            "inventory",
            &format!("/stock/{book}"),
            "book sold",
            SAGA,
            sold,
        )
        .await?;
    assert_eq!(figures(&book_stock), [5, 3, 0, 2]);
    let pen_stock = system
        .wait_until(
            "inventory",
            &format!("/stock/{pen}"),
            "pens sold",
            SAGA,
            sold,
        )
        .await?;
    assert_eq!(figures(&pen_stock), [10, 7, 0, 3]);
    let (_, payment) = system
        .get("payments", &format!("/payments/{order}"))
        .await?;
    assert_eq!(payment["status"], "COMPLETED", "{payment}");
    assert_eq!(payment["amount"]["cents"], 2 * 1999 + 3 * 250);

    // The whole flow shares the order's correlation id, each step naming its cause.
    let mut flow = Vec::new();
    for topic in [Topic::Orders, Topic::Inventory, Topic::Payments] {
        let name = system.topics.name(topic);
        let records = read_all(
            &system.broker.bootstrap,
            &system.registry.url,
            &name,
            Duration::from_secs(2),
        )
        .await?;
        flow.extend(records.into_iter().filter(|r| concerns(&r.event, order)));
    }
    let created = flow
        .iter()
        .find(|r| r.envelope.event_type == "order.created")
        .expect("order.created on the orders topic");
    let correlation = created.envelope.correlation_id;
    let by_type = |t: &str, change: Option<&str>| {
        flow.iter()
            .find(|r| {
                r.envelope.event_type == t
                    && change.is_none_or(|c| matches!(&r.event, Event::InventoryUpdated(e) if e.change.as_str() == c))
            })
            .unwrap_or_else(|| panic!("{t} {change:?} in the flow"))
    };
    let reserved = by_type("inventory.updated", Some("RESERVED"));
    let charged = by_type("payment.completed", None);
    let confirmed = by_type("order.confirmed", None);
    let sold_event = by_type("inventory.updated", Some("SOLD"));
    for (step, cause) in [
        (reserved, created),
        (charged, reserved),
        (confirmed, charged),
        (sold_event, confirmed),
    ] {
        assert_eq!(step.envelope.correlation_id, correlation);
        assert_eq!(step.envelope.causation_id, Some(cause.envelope.event_id));
        assert!(step.envelope.traceparent.is_some());
    }
    Ok(())
}

/// Whether `event` is about `order`.
fn concerns(event: &Event, order: Uuid) -> bool {
    match event {
        Event::OrderCreated(e) => e.order_id == order,
        Event::OrderConfirmed(e) => e.order_id == order,
        Event::OrderCancelled(e) => e.order_id == order,
        Event::InventoryUpdated(e) => e.order_id == Some(order),
        Event::PaymentCompleted(e) => e.order_id == order,
        Event::PaymentFailed(e) => e.order_id == order,
        Event::PaymentRefunded(e) => e.order_id == order,
        _ => false,
    }
}

async fn fifty_orders_for_ten_units(engine: Engine) -> anyhow::Result<()> {
    let system = System::start(Settings::new(engine)).await?;
    let product = system.create_product("HOT-1", 500).await?;
    system.restock(product, 10).await?;
    let mut users = Vec::new();
    for n in 0..5 {
        users.push(
            system
                .register_user(&format!("buyer{n}@example.com"))
                .await?,
        );
    }
    // Wait until orders knows everyone, then fire all 50 at once.
    let first = system.place_order(users[4], &[(product, 1)], None).await?;
    let lines = [(product, 1)];
    let mut placing = Vec::new();
    for n in 1..50 {
        let user = users[n % users.len()];
        placing.push(system.place_order(user, &lines, None));
    }
    let mut orders = vec![first];
    for placed in futures::future::join_all(placing).await {
        orders.push(placed?);
    }
    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for order in &orders {
        let ended = system.wait_final(*order, SAGA).await?;
        match (ended["status"].as_str(), ended["reason"].as_str()) {
            (Some("CONFIRMED"), _) => confirmed += 1,
            (Some("CANCELLED"), Some("out_of_stock")) => out_of_stock += 1,
            other => panic!("order {order} ended {other:?}"),
        }
    }
    assert_eq!((confirmed, out_of_stock), (10, 40));
    let sold = system
        .wait_until(
            "inventory",
            &format!("/stock/{product}"),
            "10 sold",
            SAGA,
            |s| s["sold"] == 10,
        )
        .await?;
    assert_eq!(figures(&sold), [10, 0, 0, 10]);
    let ledger = Ledger::read(&system).await?;
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}

on_both_engines!(happy_path, fifty_orders_for_ten_units);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_short_of_any_line_is_cancelled_out_of_stock_and_nothing_is_reserved_or_charged()
-> anyhow::Result<()> {
    let system = System::start(Settings::new(Engine::Sqlite)).await?;
    let user = system.register_user("bo@example.com").await?;
    let plenty = system.create_product("PLENTY-1", 100).await?;
    let scarce = system.create_product("SCARCE-1", 100).await?;
    system.restock(plenty, 50).await?;
    system.restock(scarce, 1).await?;

    let order = system
        .place_order(user, &[(plenty, 5), (scarce, 2)], None)
        .await?;
    let ended = system.wait_final(order, SAGA).await?;
    assert_eq!(ended["status"], "CANCELLED");
    assert_eq!(ended["reason"], "out_of_stock");
    assert_eq!(figures(&stock(&system, plenty).await?), [50, 50, 0, 0]);
    assert_eq!(figures(&stock(&system, scarce).await?), [1, 1, 0, 0]);
    let (status, payment) = system
        .get("payments", &format!("/payments/{order}"))
        .await?;
    assert!(
        status == StatusCode::NOT_FOUND || payment["charges"] == 0,
        "{status} {payment}"
    );
    let ledger = Ledger::read(&system).await?;
    assert_eq!(ledger.charges, 0);
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_cancels_the_order_and_releases_its_stock() -> anyhow::Result<()> {
    let system = System::start(Settings::new(Engine::Sqlite)).await?;
    let user = system.register_user("cy@example.com").await?;
    let product = system.create_product("LAMP-1", 4200).await?;
    system.restock(product, 3).await?;

    let order = system
        .place_order(user, &[(product, 2)], Some("tok_decline"))
        .await?;
    let ended = system.wait_final(order, SAGA).await?;
    assert_eq!(ended["status"], "CANCELLED");
    assert_eq!(ended["reason"], "payment_declined");
    wait_no_reservations(&system, &[product]).await?;
    assert_eq!(figures(&stock(&system, product).await?), [3, 3, 0, 0]);
    let (_, payment) = system
        .get("payments", &format!("/payments/{order}"))
        .await?;
    assert_eq!(payment["status"], "FAILED", "{payment}");
    assert_eq!(payment["reason"], "card_declined");
    let ledger = Ledger::read(&system).await?;
    assert_eq!((ledger.charges, ledger.declines), (0, 1));
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_slower_than_the_deadline_cancels_with_timeout_and_refunds_the_late_charge()
-> anyhow::Result<()> {
    let mut settings = Settings::new(Engine::Sqlite);
    settings.order_deadline = Duration::from_secs(2);
    settings.provider_latency = Duration::from_secs(5);
    let system = System::start(settings).await?;
    let user = system.register_user("di@example.com").await?;
    let product = system.create_product("SLOW-1", 999).await?;
    system.restock(product, 4).await?;

    let order = system.place_order(user, &[(product, 1)], None).await?;
    let ended = system.wait_final(order, SAGA).await?;
    assert_eq!(ended["status"], "CANCELLED");
    assert_eq!(ended["reason"], "timeout");
    wait_no_reservations(&system, &[product]).await?;
    assert_eq!(figures(&stock(&system, product).await?), [4, 4, 0, 0]);
    let payment = system
        .wait_until(
            "payments",
            &format!("/payments/{order}"),
            "the late charge to be refunded",
            SAGA,
            |p| p["status"] == "REFUNDED",
        )
        .await?;
    assert_eq!(payment["charges"], 1, "{payment}");
    let again = system.get("orders", &format!("/orders/{order}")).await?.1;
    assert_eq!(
        again["status"], "CANCELLED",
        "a late charge does not confirm"
    );
    let ledger = Ledger::read(&system).await?;
    assert_eq!((ledger.charges, ledger.refunds), (1, 1));
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_cancels_a_pending_order_and_cannot_cancel_a_confirmed_one() -> anyhow::Result<()>
{
    let mut settings = Settings::new(Engine::Sqlite);
    settings.provider_latency = Duration::from_secs(3);
    let system = System::start(settings).await?;
    let user = system.register_user("ed@example.com").await?;
    let product = system.create_product("MUG-1", 800).await?;
    system.restock(product, 5).await?;

    let pending = system.place_order(user, &[(product, 1)], None).await?;
    let (status, body) = system
        .post("orders", &format!("/orders/{pending}/cancel"), &Value::Null)
        .await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = system.wait_final(pending, SAGA).await?;
    assert_eq!(ended["reason"], "cancelled_by_customer");
    wait_no_reservations(&system, &[product]).await?;

    let kept = system.place_order(user, &[(product, 2)], None).await?;
    let ended = system.wait_final(kept, SAGA).await?;
    assert_eq!(ended["status"], "CONFIRMED");
    let (status, body) = system
        .post("orders", &format!("/orders/{kept}/cancel"), &Value::Null)
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "order_confirmed");
    system
        .wait_until(
            "inventory",
            &format!("/stock/{product}"),
            "2 sold",
            SAGA,
            |s| s["sold"] == 2,
        )
        .await?;
    let ledger = Ledger::read(&system).await?;
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}
