//! The projector against a real database: whatever order a saga's events arrive in, the
//! tables end row for row the same; and two steps of one saga applied at once by two
//! partitions both count.

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderCreated, OrderLine};
use eventmart_events::payments::{PaymentCompleted, PaymentRefunded};
use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
use eventmart_runtime::db::{self, Db, Engine};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{TestDatabase, apply_in_order, wait_for};
use sqlx::Row;
use uuid::Uuid;

use super::*;

/// How long anything asynchronous may take.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn stock(order_id: Uuid, change: InventoryChange, seconds: i64) -> Event {
    InventoryUpdated {
        change,
        order_id: Some(order_id),
        lines: vec![StockLine {
            product_id: Uuid::from_u128(3),
            quantity: 1,
        }],
        reason: None,
        updated_at: at(seconds),
    }
    .into()
}

/// An order cancelled at its deadline while the charge was at the provider: reserved,
/// cancelled, released, then charged and refunded; each event caused by the one before.
fn saga(order_id: Uuid) -> Vec<Decoded> {
    let user = Uuid::from_u128(2);
    let payment = Uuid::from_u128(4);
    let amount = Money::new(700, Currency::EUR);
    let events: [Event; 6] = [
        OrderCreated {
            order_id,
            user_id: user,
            lines: vec![OrderLine {
                product_id: Uuid::from_u128(3),
                quantity: 1,
                unit_price: amount,
            }],
            total: amount,
            payment_token: None,
            created_at: at(0),
        }
        .into(),
        stock(order_id, InventoryChange::Reserved, 1),
        OrderCancelled {
            order_id,
            reason: CancellationReason::Timeout,
            detail: None,
            cancelled_at: at(30),
        }
        .into(),
        stock(order_id, InventoryChange::Released, 31),
        PaymentCompleted {
            payment_id: payment,
            order_id,
            user_id: user,
            amount,
            completed_at: at(32),
        }
        .into(),
        PaymentRefunded {
            payment_id: payment,
            order_id,
            amount,
            reason: "order_cancelled".into(),
            refunded_at: at(32),
        }
        .into(),
    ];
    let mut out: Vec<Decoded> = Vec::new();
    for event in events {
        let mut envelope = Envelope::new(&event);
        if let Some(cause) = out.last() {
            envelope = envelope.caused_by(&cause.envelope);
        }
        out.push(Decoded {
            envelope,
            event,
            format: Format::Json,
        });
    }
    out
}

/// Every row of both tables, as text, in a stable order.
async fn rows(db: &Db) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let sagas = sqlx::query(
        "SELECT correlation_id, order_id, state, step, waiting_for, started_at, \
         last_event_at, step_count FROM sagas ORDER BY correlation_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for row in sagas {
        out.push(format!(
            "{:?}",
            (
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                row.try_get::<String, _>(2)?,
                row.try_get::<String, _>(3)?,
                row.try_get::<Option<String>, _>(4)?,
                row.try_get::<i64, _>(5)?,
                row.try_get::<i64, _>(6)?,
                row.try_get::<i64, _>(7)?,
            )
        ));
    }
    let steps = sqlx::query(
        "SELECT correlation_id, event_id, event_type, step, service, order_id, causation_id, \
         occurred_at FROM saga_steps ORDER BY correlation_id, event_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for row in steps {
        out.push(format!(
            "{:?}",
            (
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                row.try_get::<String, _>(2)?,
                row.try_get::<String, _>(3)?,
                row.try_get::<String, _>(4)?,
                row.try_get::<String, _>(5)?,
                row.try_get::<Option<String>, _>(6)?,
                row.try_get::<i64, _>(7)?,
            )
        ));
    }
    Ok(out)
}

async fn the_tables_end_the_same_whatever_the_arrival_order(engine: Engine) -> anyhow::Result<()> {
    let events = saga(Uuid::now_v7());
    // In topic order; each topic's events together (orders, then payments, then
    // inventory); the compensations before what they compensate; everything backwards.
    let orders: [[usize; 6]; 4] = [
        [0, 1, 2, 3, 4, 5],
        [0, 2, 4, 5, 1, 3],
        [3, 5, 4, 1, 2, 0],
        [5, 4, 3, 2, 1, 0],
    ];
    let mut results = Vec::new();
    for order in orders {
        let database = TestDatabase::create(engine).await?;
        let db = db::connect_component(&database.url, crate::migrations()).await?;
        let arrival: Vec<&Decoded> = order.iter().map(|&i| &events[i]).collect();
        apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "orders").await?;
        let applied = rows(&db).await?;
        // Handed over again (the consumer skips what it has applied; the rows would not
        // change if it did not).
        apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "orders").await?;
        assert_eq!(
            rows(&db).await?,
            applied,
            "applied twice in order {order:?}"
        );
        results.push(applied);
        db.pool.close().await;
    }
    assert_eq!(results[0].len(), 7, "{:#?}", results[0]);
    let saga = &results[0][0];
    for expected in ["\"cancelled\"", "\"REFUNDED\"", "None", ", 6)"] {
        assert!(saga.contains(expected), "{expected} in {saga}");
    }
    for (order, result) in orders.iter().zip(&results) {
        assert_eq!(result, &results[0], "arrival order {order:?}");
    }
    Ok(())
}

on_both_engines!(the_tables_end_the_same_whatever_the_arrival_order);

/// On PostgreSQL two partitions' consumers apply steps of the same saga in transactions of
/// their own: the second one to add the saga row retries, and then counts both steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_steps_of_a_new_saga_applied_at_once_both_count() -> anyhow::Result<()> {
    let database = TestDatabase::create(Engine::Postgres).await?;
    let db = db::connect_component(&database.url, crate::migrations()).await?;
    let events = saga(Uuid::now_v7());
    let projector = Projector { engine: db.engine };
    let created = Incoming::new(&events[0], "orders", 0, 0);
    let reserved = Incoming::new(&events[1], "inventory", 0, 0);

    let mut first = db.pool.begin().await?;
    projector
        .handle(&mut first, &created)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let second = {
        let (pool, events) = (db.pool.clone(), events.clone());
        tokio::spawn(async move {
            let reserved = Incoming::new(&events[1], "inventory", 0, 0);
            let mut tx = pool.begin().await?;
            let outcome = Projector {
                engine: Engine::Postgres,
            }
            .handle(&mut tx, &reserved)
            .await;
            tx.rollback().await?;
            anyhow::Ok(outcome.map_err(|e| e.is_transient()))
        })
    };
    // The second transaction waits on the first one's new row until it commits.
    wait_for(
        "the second transaction to wait for a lock",
        PATIENCE,
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&db.pool)
            .await
            .ok()?;
            (waiting > 0).then_some(())
        },
    )
    .await?;
    first.commit().await?;
    assert_eq!(second.await??, Err(true), "the second one is told to retry");

    // Retried, it sees the first one's step and adds its own.
    let mut tx = db.pool.begin().await?;
    projector
        .handle(&mut tx, &reserved)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tx.commit().await?;
    let saga = rows(&db).await?.remove(0);
    for expected in ["\"running\"", "\"RESERVED\"", "Some(\"payments\")", ", 2)"] {
        assert!(saga.contains(expected), "{expected} in {saga}");
    }
    db.pool.close().await;
    Ok(())
}
