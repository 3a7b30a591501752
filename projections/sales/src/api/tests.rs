//! The API served on a free port over a real database that the projector writes at the same
//! time, event by event as the consumer does: what a client reads while sales are counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::orders::{OrderConfirmed, OrderCreated, OrderLine};
use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{Reads, ServedQueries, apply_in_order};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{App, router};
use crate::ReadModel;
use crate::projector::Projector;

/// The query API on a free port over a fresh database (see [`ServedQueries`]).
async fn serve(engine: Engine) -> anyhow::Result<ServedQueries> {
    let wait_max = Duration::from_secs(5);
    ServedQueries::start::<ReadModel>(engine, |live| router(App { live, wait_max })).await
}

/// Counts a sale of `quantity` of `product` at `unit_cents` euros: the order's creation
/// and its confirmation, each in its own transaction.
async fn sell(
    served: &ServedQueries,
    product: Uuid,
    quantity: i32,
    unit_cents: i64,
) -> anyhow::Result<()> {
    let order_id = Uuid::now_v7();
    let price = Money::new(unit_cents, Currency::EUR);
    let created = decoded(OrderCreated {
        order_id,
        user_id: Uuid::from_u128(1),
        lines: vec![OrderLine {
            product_id: product,
            quantity,
            unit_price: price,
        }],
        total: Money::new(i64::from(quantity) * unit_cents, Currency::EUR),
        payment_token: None,
        created_at: may_first(),
    });
    let confirmed = decoded(OrderConfirmed {
        order_id,
        payment_id: Uuid::now_v7(),
        confirmed_at: may_first(),
    });
    let projector = Projector {
        engine: served.writer.engine,
    };
    apply_in_order(
        &projector,
        &served.writer,
        &[&created, &confirmed],
        "orders",
    )
    .await
}
fn may_first() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
}

fn decoded(event: impl Into<Event>) -> Decoded {
    let event = event.into();
    Decoded {
        envelope: Envelope::new(&event),
        event,
        format: Format::Json,
    }
}

/// The `product_id`s of a ranking's items.
fn ids(ranking: &Value) -> Vec<String> {
    ranking["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["product_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How `ranking` (by units, in euros) is not the figures of one instant, if it is not: each
/// product once, units never rising down the ranking, and each product's revenue that of
/// its units at its one price (`prices`, in cents by product id). Units and revenue are read
/// in two statements; they agree only when both see the same sales.
fn incoherence(ranking: &Value, prices: &HashMap<String, i64>) -> Option<String> {
    let items = ranking["items"].as_array().cloned().unwrap_or_default();
    let mut listed = ids(ranking);
    listed.sort();
    listed.dedup();
    let units: Vec<i64> = items.iter().filter_map(|i| i["units"].as_i64()).collect();
    let priced = items.iter().all(|item| {
        let price = item["product_id"].as_str().and_then(|id| prices.get(id));
        let units = item["units"].as_i64();
        let cents = units.zip(price.copied()).map(|(u, p)| u * p);
        item["revenue"] == json!([{ "currency": "EUR", "cents": cents }])
    });
    let coherent = listed.len() == items.len()
        && units.len() == items.len()
        && units.windows(2).all(|pair| pair[0] >= pair[1])
        && priced;
    (!coherent).then(|| ranking["items"].to_string())
}

/// Products sold in the tests, and sales of them counted while clients read.
const PRODUCTS: usize = 6;
const SALES: usize = 60;

/// Readers reading at once.
const READERS: usize = 3;

async fn a_ranking_read_while_sales_are_counted_is_the_figures_of_one_instant(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    let products: Vec<Uuid> = (0..PRODUCTS).map(|_| Uuid::now_v7()).collect();
    let prices: Arc<HashMap<String, i64>> = Arc::new(
        products
            .iter()
            .zip(1..)
            .map(|(id, n)| (id.to_string(), n * 100))
            .collect(),
    );
    let known = Arc::clone(&prices);
    let Reads { answers, wrong } = served
        .read_while_writing(
            SALES,
            READERS,
            |_| "/sales/top?by=units&currency=EUR".to_owned(),
            move |ranking| incoherence(ranking, &known),
            |sale| {
                let product = products[sale * 5 % PRODUCTS];
                let (served, prices) = (&served, &prices);
                async move {
                    let quantity = i32::try_from(sale % 3 + 1)?;
                    sell(served, product, quantity, prices[&product.to_string()]).await
                }
            },
        )
        .await?;
    assert!(
        wrong.is_empty(),
        "{} of {answers} rankings are not one instant's, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(2)]
    );
    assert!(answers >= SALES, "only {answers} rankings read");
    let all = served.ok("/sales/top?by=units&currency=EUR").await?;
    assert_eq!(ids(&all).len(), PRODUCTS, "{all}");
    assert_eq!(all["truncated"], false);
    Ok(())
}

on_both_engines!(a_ranking_read_while_sales_are_counted_is_the_figures_of_one_instant);

async fn a_ranking_is_the_top_limit_says_whether_more_sold_and_takes_no_cursor(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    // Three products selling 3, 2 and 1 units.
    let products: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for (product, units) in products.iter().zip([3, 2, 1]) {
        sell(&served, *product, units, 100).await?;
    }
    let expected: Vec<String> = products.iter().map(Uuid::to_string).collect();

    let top = served.ok("/sales/top?by=units&limit=2").await?;
    assert_eq!(ids(&top), expected[..2]);
    assert_eq!(top["truncated"], true);
    assert!(top.get("next_cursor").is_none(), "{top}");
    let all = served.ok("/sales/top?by=units&limit=3").await?;
    assert_eq!(ids(&all), expected);
    assert_eq!(all["truncated"], false);

    let (status, body) = served.get("/sales/top?by=units&limit=2&cursor=x").await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "cursor");
    Ok(())
}

on_both_engines!(a_ranking_is_the_top_limit_says_whether_more_sold_and_takes_no_cursor);
