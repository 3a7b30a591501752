//! The projector against a real database: whatever order the topics deliver a product's
//! events in (each order's own events keeping theirs, as its partition does), the tables
//! end row for row the same.

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::catalog::{ProductCreated, ProductPriceChanged};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
use eventmart_runtime::db::{self, Db, Engine};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{TestDatabase, apply_in_order};
use sqlx::Row;
use uuid::Uuid;

use super::*;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn stock(
    change: InventoryChange,
    order_id: Option<Uuid>,
    lines: &[(Uuid, i32)],
    seconds: i64,
) -> Event {
    InventoryUpdated {
        change,
        order_id,
        lines: lines
            .iter()
            .map(|&(product_id, quantity)| StockLine {
                product_id,
                quantity,
            })
            .collect(),
        reason: None,
        updated_at: at(seconds),
    }
    .into()
}

/// A product priced twice, restocked, one order reserved and sold, another reserved and
/// released; each event with its envelope.
fn history(product: Uuid, other: Uuid) -> Vec<Decoded> {
    let (sold, released) = (Uuid::now_v7(), Uuid::now_v7());
    let events: [Event; 9] = [
        ProductCreated {
            product_id: product,
            sku: "TEE-1".into(),
            name: "T-shirt".into(),
            price: Money::new(1500, Currency::EUR),
            created_at: at(0),
        }
        .into(),
        ProductPriceChanged {
            product_id: product,
            price: Money::new(1800, Currency::EUR),
            changed_at: at(4),
        }
        .into(),
        ProductPriceChanged {
            product_id: product,
            price: Money::new(1700, Currency::EUR),
            changed_at: at(2),
        }
        .into(),
        stock(InventoryChange::Restocked, None, &[(product, 10)], 1),
        stock(InventoryChange::Restocked, None, &[(other, 3)], 1),
        stock(
            InventoryChange::Reserved,
            Some(sold),
            &[(product, 2), (other, 1)],
            5,
        ),
        stock(
            InventoryChange::Sold,
            Some(sold),
            &[(product, 2), (other, 1)],
            7,
        ),
        stock(
            InventoryChange::Reserved,
            Some(released),
            &[(product, 4)],
            6,
        ),
        stock(
            InventoryChange::Released,
            Some(released),
            &[(product, 4)],
            8,
        ),
    ];
    events
        .into_iter()
        .map(|event| Decoded {
            envelope: Envelope::new(&event),
            event,
            format: Format::Json,
        })
        .collect()
}

/// Every row of the three tables, as text, in a stable order.
async fn rows(db: &Db) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let products = sqlx::query(
        "SELECT product_id, sku, name, created_at, created_event_id, price_cents, currency, \
         price_at, price_event_id, received, available, reserved, sold, updated_at \
         FROM product_availability ORDER BY product_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for row in products {
        out.push(format!(
            "{:?}",
            (
                row.try_get::<String, _>(0)?,
                row.try_get::<Option<String>, _>(1)?,
                row.try_get::<Option<String>, _>(2)?,
                row.try_get::<Option<i64>, _>(3)?,
                row.try_get::<Option<String>, _>(4)?,
                row.try_get::<Option<i64>, _>(5)?,
                row.try_get::<Option<String>, _>(6)?,
                row.try_get::<Option<i64>, _>(7)?,
                row.try_get::<Option<String>, _>(8)?,
                [9, 10, 11, 12, 13]
                    .map(|i| row.try_get::<i64, _>(i).unwrap_or(i64::MIN))
                    .to_vec(),
            )
        ));
    }
    let reservations = sqlx::query(
        "SELECT order_id, status, units FROM product_availability_reservation \
         ORDER BY order_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for row in reservations {
        out.push(format!(
            "{:?}",
            (
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                row.try_get::<String, _>(2)?,
            )
        ));
    }
    let moves = sqlx::query(
        "SELECT product_id, event_id, change, received, available, reserved, sold, \
         occurred_at FROM product_availability_move ORDER BY product_id, event_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for row in moves {
        out.push(format!(
            "{:?}",
            (
                row.try_get::<String, _>(0)?,
                row.try_get::<String, _>(1)?,
                row.try_get::<String, _>(2)?,
                [3, 4, 5, 6, 7]
                    .map(|i| row.try_get::<i64, _>(i).unwrap_or(i64::MIN))
                    .to_vec(),
            )
        ));
    }
    Ok(out)
}

async fn the_tables_end_the_same_whatever_the_arrival_order(engine: Engine) -> anyhow::Result<()> {
    let (product, other) = (Uuid::now_v7(), Uuid::now_v7());
    let events = history(product, other);
    // In the order it happened; the inventory first (so the stock arrives before its
    // product); the catalog backwards and the orders interleaved; everything backwards
    // except each order's own two events.
    let orders: [[usize; 9]; 4] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
        [3, 4, 5, 6, 7, 8, 0, 1, 2],
        [2, 1, 7, 5, 8, 0, 6, 4, 3],
        [7, 8, 5, 6, 4, 3, 2, 1, 0],
    ];
    let mut results = Vec::new();
    for order in orders {
        let database = TestDatabase::create(engine).await?;
        let db = db::connect_component(&database.url, crate::migrations()).await?;
        let arrival: Vec<&Decoded> = order.iter().map(|&i| &events[i]).collect();
        apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "inventory").await?;
        let applied = rows(&db).await?;
        // Handed over again (the consumer skips what it has applied; the rows would not
        // change if it did not).
        apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "inventory").await?;
        assert_eq!(
            rows(&db).await?,
            applied,
            "applied twice in order {order:?}"
        );
        results.push(applied);
        db.pool.close().await;
    }
    // Two products, two reservations, eight moves.
    assert_eq!(results[0].len(), 12, "{:#?}", results[0]);
    let row = results[0]
        .iter()
        .find(|r| r.contains(&product.to_string()) && r.contains("TEE-1"))
        .cloned()
        .unwrap_or_default();
    assert!(row.contains("Some(1800)"), "{row}");
    // received, available, reserved, sold, updated_at
    assert!(
        row.contains(&format!("[10, 8, 0, 2, {}]", at(8).timestamp_millis())),
        "{row}"
    );
    for (order, result) in orders.iter().zip(&results) {
        assert_eq!(result, &results[0], "arrival order {order:?}");
    }
    Ok(())
}

on_both_engines!(the_tables_end_the_same_whatever_the_arrival_order);
