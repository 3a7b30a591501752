//! Rebuilding a service's own state from the topics. After a run of orders (confirmed,
//! declined, out of stock, cancelled by the customer), with stock facts typed into the
//! inventory topic (one of them refused by the inventory and dead-lettered), every service's
//! state is rebuilt into a new version while the services run, and equals the live state row
//! for row; a second, fresh rebuild has the same checksums. Promoting is refused while the
//! service runs, and while a fact typed into its topic after it stopped is not applied. Once
//! each service is stopped, promoted and started again, it runs on the rebuilt state (the
//! replaced version stays as it was, the new one takes the new orders): the saga runs as
//! before, a retried command gets its first answer, and the saga's invariants hold over the
//! whole run.

use std::time::Duration;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::wait_for;
use eventmart_system::{Ledger, SERVICES, Settings, StatusCode, System, expect};
use serde_json::{Value, json};
use uuid::Uuid;

const SAGA: Duration = Duration::from_secs(60);

/// `eventmart service <args…> <service> --database-url <its database>`.
async fn service(system: &System, command: &[&str], name: &str) -> anyhow::Result<String> {
    let url = system.database_url(name).await?;
    let mut args = vec!["service"];
    args.extend(command.iter().take(1));
    args.push(name);
    args.extend(command.iter().skip(1));
    args.extend(["--database-url", &url]);
    system.eventmart(&args).await
}

/// The table checksums `eventmart service checksum --json` prints for `version` of `name`.
async fn checksums(system: &System, name: &str, version: &str) -> anyhow::Result<Value> {
    let out = service(system, &["checksum", "--version", version, "--json"], name).await?;
    let parsed: Value = serde_json::from_str(out.trim())?;
    Ok(parsed["tables"].clone())
}

/// Places an order with an idempotency key and returns the answer.
async fn place_with_key(system: &System, body: &Value, key: &str) -> anyhow::Result<Value> {
    let (status, answer) = system.post_with_key("orders", "/orders", body, key).await?;
    expect(status, StatusCode::CREATED, &answer, "placing an order")?;
    Ok(answer)
}

async fn cancel(system: &System, order: Uuid) -> anyhow::Result<()> {
    let (status, body) = system
        .post("orders", &format!("/orders/{order}/cancel"), &Value::Null)
        .await?;
    // An order that already ended cannot be cancelled: 409 is an answer too.
    if !(status.is_success() || status == StatusCode::CONFLICT) {
        anyhow::bail!("cancelling {order} answered {status}: {body}");
    }
    Ok(())
}

on_both_engines!(a_rebuilt_service_state_equals_the_live_one_and_runs_the_saga_after_the_swap);
async fn a_rebuilt_service_state_equals_the_live_one_and_runs_the_saga_after_the_swap(
    engine: Engine,
) -> anyhow::Result<()> {
    let system = System::start(Settings::new(engine)).await?;
    let alice = system.register_user("alice@example.com").await?;
    let bob = system.register_user("bob@example.com").await?;
    let book = system.create_product("BOOK-RB", 1200).await?;
    let pen = system.create_product("PEN-RB", 250).await?;
    system.restock(book, 40).await?;
    system.restock(pen, 3).await?;

    // Facts typed in: five more pens (taken), and an adjustment the inventory refuses.
    let typed = json!({"event_type": "inventory.updated", "change": "RESTOCKED",
        "lines": [{"product_id": pen, "quantity": 5}], "updated_at": "2026-12-07T10:00:00.000Z"});
    let refused = json!({"event_type": "inventory.updated", "change": "ADJUSTED",
        "lines": [{"product_id": book, "quantity": -1000}],
        "updated_at": "2026-12-07T10:00:01.000Z"});
    system
        .kcat_produce(
            Topic::Inventory,
            true,
            &format!("{pen}:{typed}\n{book}:{refused}\n"),
        )
        .await?;
    wait_for("the refused fact's dead letter", SAGA, || async {
        let letters = system.dead_letters(Topic::Inventory).await.ok()?;
        letters
            .iter()
            .any(|l| l.consumer_group.as_deref() == Some("inventory"))
            .then_some(())
    })
    .await?;
    system
        .wait_until(
            "inventory",
            &format!("/stock/{pen}"),
            "the typed-in restock",
            SAGA,
            |s| s["received"] == 8,
        )
        .await?;

    // Orders of every outcome.
    let mut orders = Vec::new();
    for i in 0..10 {
        let user = if i % 2 == 0 { alice } else { bob };
        let token = (i % 4 == 3).then_some("tok_decline");
        orders.push(
            system
                .place_order(user, &[(book, 1), (pen, 1)], token)
                .await?,
        );
    }
    orders.push(system.place_order(alice, &[(pen, 50)], None).await?);
    let cancelled = system.place_order(bob, &[(book, 2)], None).await?;
    cancel(&system, cancelled).await?;
    orders.push(cancelled);
    let retried = json!({"user_id": alice, "lines": [{"product_id": book, "quantity": 1}]});
    let first = place_with_key(&system, &retried, "rebuild-retry").await?;
    orders.push(first["order_id"].as_str().unwrap_or_default().parse()?);
    for order in &orders {
        system.wait_final(*order, SAGA).await?;
    }

    // Every service's state, rebuilt while it runs, equals the live one.
    for name in SERVICES {
        let built = service(&system, &["rebuild", "--plain"], name).await?;
        assert!(built.contains("version 2: built"), "{name}: {built}");
        let verified = service(&system, &["verify"], name).await?;
        assert!(verified.contains("identical"), "{name}: {verified}");
    }
    // A second, fresh rebuild has the same checksums (the inventory's, whose topic
    // interleaves stock changes of one product across partitions).
    let second_before = checksums(&system, "inventory", "2").await?;
    service(&system, &["drop", "2"], "inventory").await?;
    let built = service(&system, &["rebuild", "--plain"], "inventory").await?;
    assert!(built.contains("version 3: built"), "{built}");
    assert_eq!(checksums(&system, "inventory", "3").await?, second_before);

    // Promoting needs the service stopped.
    let url = system.database_url("orders").await?;
    let refused = system
        .eventmart_command(&["service", "promote", "orders", "--database-url", &url])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("orders is running"), "{said}");

    // A fact typed into the inventory's topic while it is stopped has not been checked by
    // it: promoting waits until the inventory has applied it.
    system.stop("inventory").await?;
    let late = json!({"event_type": "inventory.updated", "change": "RESTOCKED",
        "lines": [{"product_id": pen, "quantity": 1}], "updated_at": "2026-12-07T10:00:02.000Z"});
    system
        .kcat_produce(Topic::Inventory, true, &format!("{pen}:{late}\n"))
        .await?;
    let url = system.database_url("inventory").await?;
    let refused = system
        .eventmart_command(&["service", "promote", "inventory", "--database-url", &url])
        .output()
        .await?;
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("arrived after inventory stopped applying it"),
        "{said}"
    );
    system.restart("inventory").await?;
    system
        .wait_until(
            "inventory",
            &format!("/stock/{pen}"),
            "the restock typed in while it was stopped",
            SAGA,
            |s| s["received"] == 9,
        )
        .await?;

    // The swap: stop, promote, start. The replaced version is kept, and no longer written.
    let mut replaced = Vec::new();
    for name in SERVICES {
        system.stop(name).await?;
        let promoted = service(&system, &["promote", "--plain"], name).await?;
        assert!(promoted.contains("is live"), "{name}: {promoted}");
        replaced.push((name, checksums(&system, name, "1").await?));
        system.restart(name).await?;
        let listed = service(&system, &["list"], name).await?;
        let live = listed
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("live"))
            .unwrap_or_default()
            .to_owned();
        assert!(
            !live.starts_with('1'),
            "{name} still runs on version 1:\n{listed}"
        );
    }

    // The rebuilt services run the saga: a confirmed order, a declined one, one out of stock.
    let confirmed = system.place_order(alice, &[(book, 2)], None).await?;
    let declined = system
        .place_order(bob, &[(book, 1)], Some("tok_decline"))
        .await?;
    let short = system.place_order(bob, &[(pen, 100)], None).await?;
    assert_eq!(
        system.wait_final(confirmed, SAGA).await?["status"],
        "CONFIRMED"
    );
    let ended = system.wait_final(declined, SAGA).await?;
    assert_eq!(ended["reason"], "payment_declined", "{ended}");
    let ended = system.wait_final(short, SAGA).await?;
    assert_eq!(ended["reason"], "out_of_stock", "{ended}");
    // The services run on the rebuilt states: the versions they replaced did not change,
    // while the new orders reached the rebuilt inventory, orders and payments.
    for (name, before) in &replaced {
        assert_eq!(&checksums(&system, name, "1").await?, before, "{name}");
    }
    for (name, before) in replaced
        .iter()
        .filter(|(n, _)| ["inventory", "orders", "payments"].contains(n))
    {
        let live = service(&system, &["checksum", "--json"], name).await?;
        let live: Value = serde_json::from_str(live.trim())?;
        assert_ne!(&live["tables"], before, "{name} wrote no new state");
    }
    // A command retried after the swap gets its first answer.
    let again = place_with_key(&system, &retried, "rebuild-retry").await?;
    assert_eq!(again["order_id"], first["order_id"]);
    // New users and SKUs are still checked against the rebuilt claims.
    let (status, body) = system
        .post(
            "users",
            "/users",
            &json!({"email": "alice@example.com", "name": "Alice again"}),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let ledger = wait_for("the invariants to hold", SAGA, || async {
        let ledger = Ledger::read(&system).await.ok()?;
        ledger.violations.0.is_empty().then_some(ledger)
    })
    .await;
    match ledger {
        Ok(ledger) => println!("after the swap: {ledger}"),
        Err(_) => {
            let ledger = Ledger::read(&system).await?;
            panic!("invariants broken after the swap:\n{}", ledger.violations);
        }
    }
    Ok(())
}
