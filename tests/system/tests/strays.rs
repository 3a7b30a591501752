//! Stray events (about orders that were never placed, as a typo in an order id typed into
//! kcat makes) hold up nobody: the orders placed after them on the same partitions end at
//! once, the strays wait parked for their order, and once their budget runs out they go to
//! the dead-letter topic with the reason, a key's events in their order.

use std::time::Duration;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::wait_for;
use eventmart_system::{Settings, System};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long the strays stay parked before they are dead-lettered.
const BUDGET: Duration = Duration::from_secs(15);

fn payment(event_type: &str, order: Uuid) -> Value {
    let mut event = json!({"event_type": event_type, "payment_id": Uuid::now_v7(),
        "order_id": order, "user_id": Uuid::now_v7(),
        "amount": {"cents": 1500, "currency": "EUR"}});
    if event_type == "payment.completed" {
        event["completed_at"] = json!("2026-12-01T10:00:00.000Z");
    } else {
        event["reason"] = json!("card_declined");
        event["failed_at"] = json!("2026-12-01T10:00:00.000Z");
    }
    event
}

async fn stray_events_for_unknown_orders_hold_up_nobody(engine: Engine) -> anyhow::Result<()> {
    strays(engine, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_instances_of_orders_strays_hold_up_nobody_and_nobody_rejoins()
-> anyhow::Result<()> {
    strays(Engine::Postgres, true).await
}

async fn strays(engine: Engine, two_orders: bool) -> anyhow::Result<()> {
    let mut settings = Settings::new(engine);
    settings.park_budget = BUDGET;
    let system = System::start(settings).await?;
    let second = if two_orders {
        Some(system.add_instance("orders").await?)
    } else {
        None
    };
    let user = system.register_user("stray@example.com").await?;
    let book = system.create_product("BOOK-STRAY", 1500).await?;
    system.restock(book, 1_000).await?;

    // Given stray payment and inventory events for orders nobody placed, typed into kcat
    // (spread over every partition: twelve keys)…
    let mut lines = String::new();
    let strays: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    for (i, order) in strays.iter().enumerate() {
        let kind = if i % 4 == 3 {
            "payment.failed"
        } else {
            "payment.completed"
        };
        lines.push_str(&format!("{order}:{}\n", payment(kind, *order)));
    }
    // …one key with two of them, a completion and then a failure…
    let pair = Uuid::now_v7();
    for kind in ["payment.completed", "payment.failed"] {
        lines.push_str(&format!("{pair}:{}\n", payment(kind, pair)));
    }
    system.kcat_produce(Topic::Payments, true, &lines).await?;
    let mut lines = String::new();
    let rejected: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for order in &rejected {
        let event = json!({"event_type": "inventory.updated", "change": "REJECTED",
            "order_id": order, "lines": [{"product_id": book, "quantity": 1}],
            "reason": "out_of_stock", "updated_at": "2026-12-01T10:00:00.000Z"});
        lines.push_str(&format!("{order}:{event}\n"));
    }
    system.kcat_produce(Topic::Inventory, true, &lines).await?;
    let typed = strays.len() + 2 + rejected.len();

    // …orders placed after them all end confirmed within seconds, not at their deadline…
    let started = tokio::time::Instant::now();
    let mut orders = Vec::new();
    for _ in 0..12 {
        orders.push(system.place_order(user, &[(book, 1)], None).await?);
    }
    for order in &orders {
        let ended = system.wait_final(*order, Duration::from_secs(20)).await?;
        assert_eq!(ended["status"], "CONFIRMED", "{ended}");
    }
    let took = started.elapsed();

    // …while the strays wait, parked, in the orders service's database…
    let url = system.database_url("orders").await?;
    let db =
        eventmart_runtime::db::connect(&url, &eventmart_runtime::db::runtime_migrations()).await?;
    let parked: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM consumer_parked WHERE consumer_group = 'orders'")
            .fetch_one(&db.pool)
            .await?;
    assert!(
        parked > 0 || took >= BUDGET,
        "nothing parked after {took:?}"
    );

    // …and once their budget runs out, every one is in its dead-letter topic with the
    // reason, the two of one key in their order, and nothing stays parked.
    let letters = wait_for("the strays to be dead-lettered", BUDGET * 4, || async {
        let mut letters = system.dead_letters(Topic::Payments).await.ok()?;
        letters.extend(system.dead_letters(Topic::Inventory).await.ok()?);
        letters.retain(|l| l.consumer_group.as_deref() == Some("orders"));
        (letters.len() >= typed).then_some(letters)
    })
    .await?;
    assert_eq!(letters.len(), typed, "{letters:#?}");
    for letter in &letters {
        assert_eq!(letter.error_kind, "park_expired", "{letter:?}");
    }
    let of_pair: Vec<&eventmart_runtime::dlq::DeadLetter> = letters
        .iter()
        .filter(|l| l.key.as_deref() == Some(pair.to_string().as_bytes()))
        .collect();
    assert_eq!(of_pair.len(), 2);
    let types: Vec<String> = of_pair
        .iter()
        .map(|l| {
            let value: Value =
                serde_json::from_slice(l.value.as_deref().unwrap_or_default()).unwrap_or_default();
            value["event_type"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(types, ["payment.completed", "payment.failed"]);
    assert!(
        of_pair[0].error_message.contains("not known yet"),
        "{}",
        of_pair[0].error_message
    );
    assert!(
        of_pair[1].error_message.contains("queued behind"),
        "{}",
        of_pair[1].error_message
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consumer_parked")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(left, 0);
    // With two instances, neither took the other's parked or waiting partitions for orphans.
    if let Some(second) = &second {
        let rejoins = "eventmart_consumer_rejoins_total{group=\"orders\"} 0";
        let first = reqwest::get(system.url("orders", "/metrics"))
            .await?
            .text()
            .await?;
        let other = reqwest::get(format!("{second}/metrics"))
            .await?
            .text()
            .await?;
        assert!(first.contains(rejoins), "{first}");
        assert!(other.contains(rejoins), "{other}");
    }
    println!(
        "strays: 12 orders confirmed in {took:?} behind {typed} strays; the strays \
         dead-lettered after {BUDGET:?}"
    );
    Ok(())
}

on_both_engines!(stray_events_for_unknown_orders_hold_up_nobody);
