//! The product-availability binary against a real broker, schema registry and database:
//! events typed into the catalog and inventory topics show up as products with their price
//! and stock, whatever order they arrive in; products page by id and filter by
//! availability; reads that carry a command's position wait for it; malformed reads are
//! refused naming the parameter.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use eventmart_events::catalog::{ProductCreated, ProductPriceChanged};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
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
const LONG_WAIT: (&str, &str) = ("PRODUCT_AVAILABILITY_WAIT_MAX", "60s");

/// GET `/products/{product_id}` once the view has processed `events`.
async fn product_after(
    view: &TestComponent,
    product_id: Uuid,
    events: &[&(Event, Envelope)],
) -> anyhow::Result<Value> {
    view.ok(&format!(
        "/products/{product_id}?position={}",
        position(events)
    ))
    .await
}

/// The position token of `events`, as a command that appended them would answer.
fn position(events: &[&(Event, Envelope)]) -> String {
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
    PositionToken::encode(&ids)
}

/// `seconds` after `t0`.
fn later(t0: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t0 + TimeDelta::seconds(seconds)
}

/// An event with its envelope.
fn enveloped(event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event);
    (event, envelope)
}

fn created(product_id: Uuid, sku: &str, cents: i64, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(ProductCreated {
        product_id,
        sku: sku.into(),
        name: format!("Product {sku}"),
        price: Money::new(cents, Currency::EUR),
        created_at: at,
    })
}

fn repriced(product_id: Uuid, cents: i64, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(ProductPriceChanged {
        product_id,
        price: Money::new(cents, Currency::EUR),
        changed_at: at,
    })
}

fn stock(
    change: InventoryChange,
    order_id: Option<Uuid>,
    lines: &[(Uuid, i32)],
    at: DateTime<Utc>,
) -> (Event, Envelope) {
    enveloped(InventoryUpdated {
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
        updated_at: at,
    })
}

/// `(received, available, reserved, sold)` of a product as shown.
fn figures(product: &Value) -> [i64; 4] {
    ["received", "available", "reserved", "sold"].map(|f| product[f].as_i64().unwrap_or(-1))
}

/// The `product_id`s of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["product_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn products_show_their_price_and_stock_whatever_order_the_topics_deliver_them_in(
    engine: Engine,
) -> anyhow::Result<()> {
    use InventoryChange::*;
    let view = TestComponent::start("product-availability", engine, &[LONG_WAIT]).await?;
    let (tee, mug) = (Uuid::now_v7(), Uuid::now_v7());
    let (sold, released, rejected) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let t0 = timestamp::now();

    // Stock arrives before the catalog has announced the product.
    let restocked = stock(Restocked, None, &[(tee, 10)], later(t0, 1));
    view.produce(&[&restocked]).await?;
    let product = product_after(&view, tee, &[&restocked]).await?;
    assert_eq!(
        product,
        json!({
            "product_id": tee,
            "sku": null,
            "name": null,
            "price": null,
            "received": 10,
            "available": 10,
            "reserved": 0,
            "sold": 0,
            "updated_at": timestamp::to_rfc3339(&later(t0, 1)),
        })
    );
    let page = view.ok("/products").await?;
    assert!(!ids(&page).contains(&tee.to_string()), "{page}");

    // Then the catalog, its later price first.
    let tee_created = created(tee, "TEE", 1500, t0);
    let dearer = repriced(tee, 1900, later(t0, 5));
    let cheaper = repriced(tee, 1700, later(t0, 3));
    let mug_created = created(mug, "MUG", 800, t0);
    let catalog = [&dearer, &tee_created, &cheaper, &mug_created];
    view.produce(&catalog).await?;
    let product = product_after(&view, tee, &catalog).await?;
    assert_eq!(
        (&product["sku"], &product["name"], &product["price"]),
        (
            &json!("TEE"),
            &json!("Product TEE"),
            &json!({"cents": 1900, "currency": "EUR"})
        )
    );
    assert_eq!(figures(&product), [10, 10, 0, 0]);
    assert_eq!(product["updated_at"], timestamp::to_rfc3339(&later(t0, 5)));

    // Orders: one reserved and sold, one reserved and released, one rejected; a sale of
    // an order that holds nothing (the inventory refuses it) and an adjustment.
    let inventory = [
        stock(Reserved, Some(sold), &[(tee, 2), (mug, 1)], later(t0, 6)),
        stock(Reserved, Some(released), &[(tee, 3)], later(t0, 6)),
        stock(Sold, Some(sold), &[(tee, 2), (mug, 1)], later(t0, 7)),
        stock(Released, Some(released), &[(tee, 3)], later(t0, 8)),
        stock(Rejected, Some(rejected), &[(tee, 50)], later(t0, 6)),
        stock(Sold, Some(rejected), &[(tee, 50)], later(t0, 9)),
        stock(Adjusted, None, &[(tee, -1)], later(t0, 4)),
        stock(Restocked, None, &[(mug, 5)], later(t0, 2)),
    ];
    let all: Vec<&(Event, Envelope)> = inventory.iter().collect();
    view.produce(&all).await?;
    let product = product_after(&view, tee, &all).await?;
    // 10 received, 1 taken away, 2 sold, 3 reserved and given back.
    assert_eq!(figures(&product), [9, 7, 0, 2], "{product}");
    assert_eq!(product["updated_at"], timestamp::to_rfc3339(&later(t0, 8)));
    let product = view.ok(&format!("/products/{mug}")).await?;
    assert_eq!(figures(&product), [5, 4, 0, 1], "{product}");
    assert_eq!(product["price"], json!({"cents": 800, "currency": "EUR"}));

    let page = view.ok("/products").await?;
    let mut both = vec![tee.to_string(), mug.to_string()];
    both.sort();
    assert_eq!(ids(&page), both, "{page}");
    assert_eq!(page["next_cursor"], Value::Null);
    Ok(())
}

on_both_engines!(products_show_their_price_and_stock_whatever_order_the_topics_deliver_them_in);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_page_by_id_and_filter_by_availability() -> anyhow::Result<()> {
    let view = TestComponent::start("product-availability", Engine::Sqlite, &[LONG_WAIT]).await?;
    let t0 = timestamp::now();

    // Five products, the second and fourth in stock; one more known only to the inventory.
    let products: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut events: Vec<(Event, Envelope)> = products
        .iter()
        .enumerate()
        .map(|(n, &id)| created(id, &format!("SKU-{n}"), 100 * (n as i64 + 1), t0))
        .collect();
    for n in [1, 3] {
        events.push(stock(
            InventoryChange::Restocked,
            None,
            &[(products[n], 4)],
            later(t0, 1),
        ));
    }
    let unlisted = Uuid::now_v7();
    events.push(stock(
        InventoryChange::Restocked,
        None,
        &[(unlisted, 4)],
        later(t0, 1),
    ));
    let events: Vec<&(Event, Envelope)> = events.iter().collect();
    view.produce(&events).await?;
    view.ok(&format!("/products?position={}", position(&events)))
        .await?;

    let sorted = |chosen: &dyn Fn(usize) -> bool| -> Vec<String> {
        let mut ids: Vec<String> = (0..5)
            .filter(|&n| chosen(n))
            .map(|n| products[n].to_string())
            .collect();
        ids.sort();
        ids
    };
    let all = sorted(&|_| true);

    for limit in [2, 1] {
        let mut seen = Vec::new();
        let mut path = format!("/products?limit={limit}");
        loop {
            let page = view.ok(&path).await?;
            let got = ids(&page);
            assert!(got.len() <= limit, "{page}");
            seen.extend(got);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/products?limit={limit}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, all, "pages of {limit}");
    }
    let page = view.ok("/products").await?;
    assert_eq!(ids(&page), all);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(
        page["items"][0]["sku"].as_str().map(|s| &s[..4]),
        Some("SKU-")
    );

    let page = view.ok("/products?availability=in_stock").await?;
    assert_eq!(ids(&page), sorted(&|n| n == 1 || n == 3));
    let out = sorted(&|n| n != 1 && n != 3);
    let page = view
        .ok("/products?availability=out_of_stock&limit=2")
        .await?;
    assert_eq!(ids(&page), out[..2]);
    let cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    let page = view
        .ok(&format!(
            "/products?availability=out_of_stock&limit=2&cursor={cursor}"
        ))
        .await?;
    assert_eq!(ids(&page), out[2..]);
    assert_eq!(page["next_cursor"], Value::Null);
    // Known to the inventory alone: not listed, but shown.
    let product = view.ok(&format!("/products/{unlisted}")).await?;
    assert_eq!(
        (&product["sku"], &product["available"]),
        (&Value::Null, &json!(4))
    );

    let some = products[0];
    let bad = [
        ("/products?availability=IN_STOCK".to_owned(), "availability"),
        ("/products?availability=".to_owned(), "availability"),
        ("/products?limit=0".to_owned(), "limit"),
        ("/products?limit=101".to_owned(), "limit"),
        ("/products?limit=ten".to_owned(), "limit"),
        ("/products?cursor=nope".to_owned(), "cursor"),
        ("/products?page=2".to_owned(), "page"),
        ("/products?position=nope".to_owned(), "position"),
        ("/products/nope".to_owned(), "product_id"),
        (format!("/products/{some}?position=nope"), "position"),
        (format!("/products/{some}?expand=stock"), "expand"),
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
    let (status, body) = view.get(&format!("/products/{unknown}")).await?;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");

    let document = view.ok("/openapi.json").await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")),
        "{document}"
    );
    for path in ["/products", "/products/{product_id}"] {
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
    let view = TestComponent::start("product-availability", Engine::Sqlite, &[]).await?;

    // Once the consumer is up, an event takes moments to show.
    let warm = Uuid::now_v7();
    view.produce(&[&created(warm, "WARM", 100, timestamp::now())])
        .await?;
    let path = format!("/products/{warm}");
    wait_for("the view to show a product", PATIENCE, || async {
        matches!(view.get(&path).await, Ok((StatusCode::OK, _))).then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", view.process.log()))?;

    // A position whose event does not exist yet: the read waits, then gives up.
    let id = Uuid::now_v7();
    let restocked = stock(
        InventoryChange::Restocked,
        None,
        &[(id, 3)],
        timestamp::now(),
    );
    let token = position(&[&restocked]);
    let read = format!("/products/{id}?position={token}");
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
    let (status, body) = view.get(&format!("/products?position={token}")).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "not_caught_up");

    // The same read while the event is produced: it answers once the view has it.
    let just_restocked = [&restocked];
    let (answer, produced) = tokio::join!(view.get(&read), view.produce(&just_restocked));
    produced?;
    let (status, product) = answer?;
    assert_eq!(status, StatusCode::OK, "{product}\n{}", view.process.log());
    assert_eq!(figures(&product), [3, 3, 0, 0]);
    let page = view
        .ok(&format!("/products?availability=in_stock&position={token}"))
        .await?;
    assert_eq!(ids(&page), Vec::<String>::new(), "not listed yet: {page}");
    Ok(())
}

/// [`schemathesis`] against product availability's own OpenAPI document, with a listed product
/// and the stock of one not listed yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() -> anyhow::Result<()> {
    let view = TestComponent::start(
        "product-availability",
        Engine::Sqlite,
        &[("PRODUCT_AVAILABILITY_WAIT_MAX", "1s")],
    )
    .await?;
    let t0 = Utc::now();
    let product_id = Uuid::now_v7();
    let listed = created(product_id, "TEE", 1500, t0);
    let restocked = stock(
        InventoryChange::Restocked,
        None,
        &[(product_id, 4)],
        later(t0, 1),
    );
    let unlisted = stock(
        InventoryChange::Restocked,
        None,
        &[(Uuid::now_v7(), 2)],
        later(t0, 1),
    );
    let events = [&listed, &restocked, &unlisted];
    view.produce(&events).await?;
    product_after(&view, product_id, &events).await?;
    schemathesis(&view.base).await
}
