//! The sales binary against a real broker, schema registry and database: orders typed into
//! the orders topic count once both their creation and their confirmation have arrived,
//! whatever order those arrive in; cancelled and pending orders never count; the products
//! that sold most rank by units or revenue, the top `limit` in one page; reads that carry a
//! command's position wait for it; malformed reads are refused naming the parameter.

mod common;

use std::time::{Duration, Instant};

use common::{LONG_WAIT, PATIENCE, cancelled, confirmed, created, ids, may, position, revenue};
use eventmart_events::{Currency, Envelope, Event};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{TestComponent, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

async fn confirmed_orders_count_once_whatever_order_their_events_arrive_in(
    engine: Engine,
) -> anyhow::Result<()> {
    let sales = TestComponent::start("sales", engine, &[LONG_WAIT]).await?;
    let (book, pen, cup) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let eur = Currency::EUR;

    // Order a, placed then confirmed on 1 May; order b's confirmation (2 May) arrives before
    // the order; order c is cancelled; order d stays pending.
    let (a, b, c, d) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let a_created = created(a, &[(book, 2, 1250, eur), (pen, 1, 300, eur)]);
    let a_confirmed = confirmed(a, may(1, 23));
    let b_confirmed = confirmed(b, may(2, 9));
    let b_created = created(b, &[(book, 1, 1250, eur)]);
    let c_created = created(c, &[(cup, 4, 500, eur)]);
    let c_cancelled = cancelled(c, may(1, 12));
    let d_created = created(d, &[(pen, 10, 300, eur)]);
    let first = [
        &a_created,
        &a_confirmed,
        &b_confirmed,
        &c_created,
        &c_cancelled,
        &d_created,
    ];
    sales.produce(&first).await?;
    let daily = sales
        .ok(&format!("/sales/daily?position={}", position(&first)))
        .await?;
    assert_eq!(
        daily,
        json!({
            "from": null,
            "to": null,
            "days": [{"day": "2024-05-01", "orders": 1, "units": 3,
                      "revenue": revenue(&[("EUR", 2800)])}],
            "total": {"orders": 1, "units": 3, "revenue": revenue(&[("EUR", 2800)])},
        })
    );

    // Once b's order arrives it counts, on the day of its confirmation; a repeated
    // confirmation of a changes nothing.
    let a_again = confirmed(a, may(3, 9));
    sales.produce(&[&b_created, &a_again]).await?;
    let daily = sales
        .ok(&format!(
            "/sales/daily?position={}",
            position(&[&b_created, &a_again])
        ))
        .await?;
    assert_eq!(
        daily["days"],
        json!([
            {"day": "2024-05-01", "orders": 1, "units": 3, "revenue": revenue(&[("EUR", 2800)])},
            {"day": "2024-05-02", "orders": 1, "units": 1, "revenue": revenue(&[("EUR", 1250)])},
        ])
    );
    // The total is what the confirmed orders cost.
    assert_eq!(
        daily["total"],
        json!({"orders": 2, "units": 4, "revenue": revenue(&[("EUR", 2800 + 1250)])})
    );
    let second = sales
        .ok("/sales/daily?from=2024-05-02&to=2024-05-31")
        .await?;
    assert_eq!(
        (&second["from"], &second["to"], &second["total"]["orders"]),
        (&json!("2024-05-02"), &json!("2024-05-31"), &json!(1))
    );

    let books = sales.ok(&format!("/sales/products/{book}")).await?;
    assert_eq!(
        books,
        json!({
            "product_id": book,
            "from": null,
            "to": null,
            "days": [
                {"day": "2024-05-01", "orders": 1, "units": 2, "revenue": revenue(&[("EUR", 2500)])},
                {"day": "2024-05-02", "orders": 1, "units": 1, "revenue": revenue(&[("EUR", 1250)])},
            ],
            "total": {"orders": 2, "units": 3, "revenue": revenue(&[("EUR", 3750)])},
        })
    );
    let later = sales
        .ok(&format!("/sales/products/{book}?from=2024-06-01"))
        .await?;
    assert_eq!(later["days"], json!([]));
    assert_eq!(later["total"]["units"], 0);
    // Cups were only in a cancelled order: they never sold.
    for never in [cup, Uuid::now_v7()] {
        let (status, body) = sales.get(&format!("/sales/products/{never}")).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"], "not_found");
    }

    let top = sales.ok("/sales/top").await?;
    assert_eq!(
        (&top["by"], &top["currency"], ids(&top)),
        (
            &json!("revenue"),
            &json!("EUR"),
            vec![book.to_string(), pen.to_string()]
        )
    );
    assert_eq!(
        top["items"][1],
        json!({"product_id": pen, "orders": 1, "units": 1, "revenue": revenue(&[("EUR", 300)])})
    );
    assert_eq!(top["truncated"], false);
    let top = sales.ok("/sales/top?by=units&from=2024-05-02").await?;
    assert_eq!(ids(&top), [book.to_string()]);
    assert_eq!(top["currency"], Value::Null);
    Ok(())
}

on_both_engines!(confirmed_orders_count_once_whatever_order_their_events_arrive_in);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_products_rank_by_units_or_revenue_and_bad_parameters_are_named() -> anyhow::Result<()>
{
    let sales = TestComponent::start("sales", Engine::Sqlite, &[LONG_WAIT]).await?;
    // Five products, one order each on 1 May, selling 5, 4, 4, 2 and 1 units at 1.00; and
    // one order in dollars of the last one, on 2 May.
    let products: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut events = Vec::new();
    for (product, units) in products.iter().zip([5, 4, 4, 2, 1]) {
        let order = Uuid::now_v7();
        events.push(created(order, &[(*product, units, 100, Currency::EUR)]));
        events.push(confirmed(order, may(1, 10)));
    }
    let dollars = Uuid::now_v7();
    events.push(created(dollars, &[(products[4], 9, 50, Currency::USD)]));
    events.push(confirmed(dollars, may(2, 10)));
    let all: Vec<&(Event, Envelope)> = events.iter().collect();
    sales.produce(&all).await?;
    sales
        .ok(&format!("/sales/daily?position={}", position(&all)))
        .await?;

    let mut tied = [products[1].to_string(), products[2].to_string()];
    tied.sort();
    let by_units = [
        products[4].to_string(),
        products[0].to_string(),
        tied[0].clone(),
        tied[1].clone(),
        products[3].to_string(),
    ];
    let by_euros = [
        products[0].to_string(),
        tied[0].clone(),
        tied[1].clone(),
        products[3].to_string(),
        products[4].to_string(),
    ];
    // One page each: the top `limit`, saying whether more products sold.
    for (query, expected) in [
        ("by=units", &by_units),
        ("by=revenue&currency=EUR", &by_euros),
    ] {
        for limit in [5, 2, 1] {
            let top = sales
                .ok(&format!("/sales/top?{query}&limit={limit}"))
                .await?;
            assert_eq!(ids(&top), expected[..limit], "{query}, top {limit}");
            assert_eq!(top["truncated"], json!(limit < 5), "{query}, top {limit}");
            assert!(top.get("next_cursor").is_none(), "{top}");
        }
    }
    let dollars_only = sales.ok("/sales/top?by=revenue&currency=USD").await?;
    assert_eq!(ids(&dollars_only), [products[4].to_string()]);
    assert_eq!(
        dollars_only["items"][0]["revenue"],
        revenue(&[("USD", 450)])
    );
    // 1 May sold in euros alone: its ranking by revenue needs no currency.
    let may_first = sales.ok("/sales/top?from=2024-05-01&to=2024-05-01").await?;
    assert_eq!(may_first["currency"], "EUR");
    assert_eq!(ids(&may_first), by_euros.to_vec());

    let product = products[0];
    let bad = [
        ("/sales/daily?from=May".to_owned(), "from"),
        ("/sales/daily?to=2024-02-30".to_owned(), "to"),
        (
            "/sales/daily?from=2024-05-02&to=2024-05-01".to_owned(),
            "from",
        ),
        ("/sales/daily?day=2024-05-01".to_owned(), "day"),
        ("/sales/daily?position=nope".to_owned(), "position"),
        (format!("/sales/products/{product}?from=2024-5-1"), "from"),
        (format!("/sales/products/{product}?to=tomorrow"), "to"),
        (
            format!("/sales/products/{product}?position=nope"),
            "position",
        ),
        (format!("/sales/products/{product}?by=units"), "by"),
        ("/sales/products/book".to_owned(), "product_id"),
        ("/sales/top".to_owned(), "currency"),
        ("/sales/top?by=orders".to_owned(), "by"),
        ("/sales/top?currency=eur".to_owned(), "currency"),
        ("/sales/top?limit=0".to_owned(), "limit"),
        ("/sales/top?limit=101".to_owned(), "limit"),
        ("/sales/top?limit=ten".to_owned(), "limit"),
        ("/sales/top?cursor=nope".to_owned(), "cursor"),
        (
            "/sales/top?to=2024-05-01&from=2024-05-02".to_owned(),
            "from",
        ),
        ("/sales/top?page=2".to_owned(), "page"),
        ("/sales/top?position=nope".to_owned(), "position"),
    ];
    for (path, field) in bad {
        let (status, body) = sales.get(&path).await?;
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

    let document = sales.ok("/openapi.json").await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0")),
        "{document}"
    );
    for path in ["/sales/daily", "/sales/products/{product_id}", "/sales/top"] {
        assert!(
            document["paths"][path]["get"].is_object(),
            "{path} in {document}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_a_position_wait_until_the_model_has_caught_up_with_it() -> anyhow::Result<()> {
    // The default wait (5 s).
    let sales = TestComponent::start("sales", Engine::Sqlite, &[]).await?;
    let product = Uuid::now_v7();

    // Once the consumer is up, a sale takes moments to show.
    let warm = Uuid::now_v7();
    sales
        .produce(&[
            &created(warm, &[(product, 1, 100, Currency::EUR)]),
            &confirmed(warm, may(1, 10)),
        ])
        .await?;
    let path = format!("/sales/products/{product}");
    wait_for("the model to show a sale", PATIENCE, || async {
        matches!(sales.get(&path).await, Ok((StatusCode::OK, _))).then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", sales.process.log()))?;

    // A position whose event does not exist yet: the read waits, then gives up.
    let order = Uuid::now_v7();
    let placed = created(order, &[(product, 2, 100, Currency::EUR)]);
    let paid = confirmed(order, may(1, 11));
    let token = position(&[&placed, &paid]);
    let read = format!("/sales/products/{product}?position={token}");
    let started = Instant::now();
    let (status, body) = sales.get(&read).await?;
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
    for other in ["/sales/daily", "/sales/top"] {
        let (status, body) = sales.get(&format!("{other}?position={token}")).await?;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{other}: {body}");
        assert_eq!(body["error"], "not_caught_up");
    }

    // The same read while the events are produced: it answers once the model has them.
    let sold = [&placed, &paid];
    let (answer, produced) = tokio::join!(sales.get(&read), sales.produce(&sold));
    produced?;
    let (status, figures) = answer?;
    assert_eq!(status, StatusCode::OK, "{figures}\n{}", sales.process.log());
    assert_eq!(
        figures["total"],
        json!({"orders": 2, "units": 3, "revenue": revenue(&[("EUR", 300)])})
    );
    Ok(())
}
