//! The `inventory` binary against a real broker, schema registry and database: its HTTP
//! commands and queries, the events it publishes, and its part of the order saga, driven by
//! events produced the way kcat does.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, ensure};
use eventmart_events::catalog::ProductCreated;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::{
    Currency, Decoded, Envelope, Event, Money, Topic, Topics, derived_event_id, timestamp,
};
use eventmart_runtime::db::Engine;
use eventmart_runtime::dlq::{self, DeadLetter, Selection};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, topics, unique_prefix, wait_for,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// A product's (received, available, reserved, sold).
type Counts = (i64, i64, i64, i64);

/// The running service and what it runs on.
struct Inventory {
    process: TestProcess,
    env: Vec<(&'static str, String)>,
    broker: TestBroker,
    registry: TestRegistry,
    _db: TestDatabase,
    topics: Topics,
    url: String,
    http: reqwest::Client,
}

impl Inventory {
    async fn start(engine: Engine) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let url = format!("http://127.0.0.1:{}", free_port()?);
        let env = vec![
            ("EVENTMART_BOOTSTRAP_SERVERS", broker.bootstrap.clone()),
            ("EVENTMART_REGISTRY_URL", registry.url.clone()),
            ("EVENTMART_TOPIC_PREFIX", prefix.clone()),
            ("DATABASE_URL", db.url.clone()),
            (
                "EVENTMART_LISTEN",
                url.trim_start_matches("http://").to_owned(),
            ),
        ];
        let process = spawn(&env, &url).await?;
        Ok(Self {
            process,
            env,
            broker,
            registry,
            _db: db,
            topics: Topics::new(prefix),
            url,
            http: reqwest::Client::new(),
        })
    }

    /// Stops the service with SIGTERM, as a rolling update does.
    async fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.process.terminate(DEADLINE).await?;
        ensure!(status.success(), "inventory exited with {status}");
        Ok(())
    }

    /// Starts the service again on the same database and topics.
    async fn restart(&mut self) -> anyhow::Result<()> {
        self.process = spawn(&self.env, &self.url).await?;
        Ok(())
    }

    /// Produces `event` on its topic as kcat would, with a new envelope, and returns it.
    async fn produce(&self, event: &Event) -> anyhow::Result<Envelope> {
        let envelope = Envelope::new(event);
        self.produce_with(event, &envelope).await?;
        Ok(envelope)
    }

    async fn produce_with(&self, event: &Event, envelope: &Envelope) -> anyhow::Result<()> {
        let topic = self.topics.name(event.topic());
        topics::produce_json(&self.broker.bootstrap, &topic, event, envelope).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok((response.status(), response.json().await?))
    }

    /// Asserts that `POST path` with `body` is refused with 400 naming `field`.
    async fn refuses_field(&self, path: &str, body: Value, field: &str) -> anyhow::Result<()> {
        let (status, answer) = self.post(path, body.clone()).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && answer["field"] == field,
            "POST {path} {body} answered {status} {answer}; expected 400 naming {field}"
        );
        Ok(())
    }

    async fn counts(&self, product_id: Uuid) -> anyhow::Result<Option<Counts>> {
        let (status, body) = self.get(&format!("/stock/{product_id}")).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        ensure!(
            status == StatusCode::OK,
            "GET stock answered {status} {body}"
        );
        Ok(Some(counts(&body)?))
    }

    async fn wait_counts(&self, product_id: Uuid, expected: Counts) -> anyhow::Result<()> {
        wait_for(
            &format!("product {product_id} to hold {expected:?}"),
            DEADLINE,
            || async move { (self.counts(product_id).await.ok()?? == expected).then_some(()) },
        )
        .await
        .with_context(|| format!("service log:\n{}", self.process.log()))
    }

    /// Everything on the inventory topic. The first record of a fresh reader takes about a
    /// second to arrive: a shorter quiet period reads nothing.
    async fn published(&self) -> anyhow::Result<Vec<Decoded>> {
        let topic = self.topics.name(Topic::Inventory);
        topics::read_all(
            &self.broker.bootstrap,
            &self.registry.url,
            &topic,
            Duration::from_secs(3),
        )
        .await
    }

    /// The stock changes of `aggregate` on the inventory topic, once `done` holds for them.
    async fn wait_published(
        &self,
        aggregate: Uuid,
        done: impl Fn(&[(Envelope, InventoryUpdated)]) -> bool,
    ) -> anyhow::Result<Vec<(Envelope, InventoryUpdated)>> {
        let (done, last_read) = (&done, &Mutex::new(String::new()));
        wait_for(
            &format!("the stock changes of {aggregate} on the inventory topic"),
            DEADLINE,
            || async move {
                let read = self.published().await;
                let changes = changes_of(read.as_deref().unwrap_or_default(), aggregate);
                *last_read.lock().ok()? = match &read {
                    Ok(records) => format!("{} records, {:?}", records.len(), kinds(&changes)),
                    Err(error) => format!("{error:#}"),
                };
                done(&changes).then_some(changes)
            },
        )
        .await
        .with_context(|| {
            format!(
                "last read: {}\nservice log:\n{}",
                last_read.lock().map(|s| s.clone()).unwrap_or_default(),
                self.process.log()
            )
        })
    }

    async fn dead_letters(&self) -> anyhow::Result<Vec<DeadLetter>> {
        let config = eventmart_runtime::kafka::client_config(&self.broker.bootstrap, &[]);
        let topic = self.topics.dlq(Topic::Inventory);
        Ok(dlq::list(&config, &topic, &Selection::default()).await?)
    }
}

/// Starts the binary with `env` and waits until it is ready at `url`.
async fn spawn(env: &[(&str, String)], url: &str) -> anyhow::Result<TestProcess> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut process = TestProcess::spawn("inventory", &[], &env)?;
    process
        .wait_http_ok(&format!("{url}/health/ready"), DEADLINE)
        .await?;
    Ok(process)
}

fn counts(body: &Value) -> anyhow::Result<Counts> {
    let field = |name: &str| {
        body[name]
            .as_i64()
            .with_context(|| format!("{name} missing from {body}"))
    };
    Ok((
        field("received")?,
        field("available")?,
        field("reserved")?,
        field("sold")?,
    ))
}

fn changes_of(records: &[Decoded], aggregate: Uuid) -> Vec<(Envelope, InventoryUpdated)> {
    records
        .iter()
        .filter(|d| d.envelope.aggregate_id == aggregate.to_string())
        .filter_map(|d| match &d.event {
            Event::InventoryUpdated(update) => Some((d.envelope.clone(), update.clone())),
            _ => None,
        })
        .collect()
}

fn kinds(changes: &[(Envelope, InventoryUpdated)]) -> Vec<InventoryChange> {
    changes.iter().map(|(_, u)| u.change).collect()
}

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::EUR)
}

fn product_created(product_id: Uuid) -> Event {
    ProductCreated {
        product_id,
        sku: format!("SKU-{}", &product_id.simple().to_string()[..8]),
        name: "Teapot".to_owned(),
        price: eur(1999),
        created_at: timestamp::now(),
    }
    .into()
}

fn restocked(product_id: Uuid, quantity: i32) -> Event {
    InventoryUpdated {
        change: InventoryChange::Restocked,
        order_id: None,
        lines: vec![StockLine {
            product_id,
            quantity,
        }],
        reason: None,
        updated_at: timestamp::now(),
    }
    .into()
}

fn order_created(order_id: Uuid, lines: &[(Uuid, i32)]) -> Event {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|&(product_id, quantity)| OrderLine {
            product_id,
            quantity,
            unit_price: eur(1999),
        })
        .collect();
    let total = lines.iter().map(|l| 1999 * i64::from(l.quantity)).sum();
    OrderCreated {
        order_id,
        user_id: Uuid::now_v7(),
        lines,
        total: eur(total),
        payment_token: None,
        created_at: timestamp::now(),
    }
    .into()
}

fn order_cancelled(order_id: Uuid) -> Event {
    OrderCancelled {
        order_id,
        reason: CancellationReason::PaymentDeclined,
        detail: None,
        cancelled_at: timestamp::now(),
    }
    .into()
}

fn order_confirmed(order_id: Uuid) -> Event {
    OrderConfirmed {
        order_id,
        payment_id: Uuid::now_v7(),
        confirmed_at: timestamp::now(),
    }
    .into()
}

/// A product the catalog announced, restocked with `units` over HTTP.
async fn stocked_product(inventory: &Inventory, units: i64) -> anyhow::Result<Uuid> {
    let product = Uuid::now_v7();
    inventory.produce(&product_created(product)).await?;
    inventory.wait_counts(product, (0, 0, 0, 0)).await?;
    let (status, body) = inventory
        .post(
            &format!("/stock/{product}/restock"),
            json!({ "quantity": units }),
        )
        .await?;
    ensure!(status == StatusCode::OK, "restock answered {status} {body}");
    Ok(product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_is_restocked_adjusted_and_listed() -> anyhow::Result<()> {
    let inventory = Inventory::start(Engine::Sqlite).await?;
    let product = Uuid::now_v7();
    let restock = format!("/stock/{product}/restock");
    let adjust = format!("/stock/{product}/adjust");

    // A product the catalog has not announced has no stock.
    let (status, body) = inventory.post(&restock, json!({ "quantity": 5 })).await?;
    ensure!(
        status == StatusCode::NOT_FOUND && body["error"] == "not_found",
        "{status} {body}"
    );
    let (status, _) = inventory.get(&format!("/stock/{product}")).await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");

    // The catalog announces it: it has an empty stock row.
    inventory.produce(&product_created(product)).await?;
    inventory.wait_counts(product, (0, 0, 0, 0)).await?;

    let (status, body) = inventory.post(&restock, json!({ "quantity": 5 })).await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(body["product_id"] == product.to_string(), "{body}");
    ensure!(counts(&body)? == (5, 5, 0, 0), "{body}");
    let restock_event = body["event_ids"][0]
        .as_str()
        .context("event id")?
        .to_owned();

    let (status, body) = inventory
        .post(&adjust, json!({ "delta": -2, "reason": "damaged" }))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(counts(&body)? == (3, 3, 0, 0), "{body}");
    let adjust_event = body["event_ids"][0]
        .as_str()
        .context("event id")?
        .to_owned();

    let (status, body) = inventory
        .post(&adjust, json!({ "delta": -4, "reason": "counted" }))
        .await?;
    ensure!(
        status == StatusCode::UNPROCESSABLE_ENTITY && body["error"] == "insufficient_stock",
        "{status} {body}"
    );

    // Malformed requests are refused naming the field.
    let refused = [
        (
            "/stock/not-a-uuid/restock",
            json!({ "quantity": 1 }),
            "product_id",
        ),
        (restock.as_str(), json!({ "quantity": 0 }), "quantity"),
        (
            restock.as_str(),
            json!({ "quantity": 1_000_001 }),
            "quantity",
        ),
        (restock.as_str(), json!({ "quantity": "5" }), "quantity"),
        (
            restock.as_str(),
            json!({ "quantity": 1, "sku": "x" }),
            "sku",
        ),
        (
            adjust.as_str(),
            json!({ "delta": 0, "reason": "x" }),
            "delta",
        ),
        (
            adjust.as_str(),
            json!({ "delta": 1, "reason": " " }),
            "reason",
        ),
        (adjust.as_str(), json!({ "delta": 1 }), "reason"),
    ];
    for (path, body, field) in refused {
        inventory.refuses_field(path, body, field).await?;
    }

    // Both commands' events are on the topic, keyed by the product, each starting a flow.
    let changes = inventory
        .wait_published(product, |changes| changes.len() >= 2)
        .await?;
    ensure!(
        kinds(&changes) == [InventoryChange::Restocked, InventoryChange::Adjusted],
        "{changes:?}"
    );
    let (restocked_envelope, restocked_change) = &changes[0];
    ensure!(restocked_envelope.event_id.to_string() == restock_event);
    ensure!(restocked_envelope.correlation_id == restocked_envelope.event_id);
    ensure!(restocked_envelope.causation_id.is_none());
    ensure!(
        restocked_change.lines
            == [StockLine {
                product_id: product,
                quantity: 5
            }]
    );
    let (adjusted_envelope, adjusted_change) = &changes[1];
    ensure!(adjusted_envelope.event_id.to_string() == adjust_event);
    ensure!(
        adjusted_change.lines
            == [StockLine {
                product_id: product,
                quantity: -2
            }]
    );
    ensure!(adjusted_change.reason.as_deref() == Some("damaged"));

    // A restock typed into kcat is a fact: the stock rises, even of a product not announced.
    inventory.produce(&restocked(product, 4)).await?;
    inventory.wait_counts(product, (7, 7, 0, 0)).await?;
    let unannounced = Uuid::now_v7();
    inventory.produce(&restocked(unannounced, 2)).await?;
    inventory.wait_counts(unannounced, (2, 2, 0, 0)).await?;

    // One that cannot be true goes to the dead-letter topic with the reason; nothing moves.
    let bad = inventory.produce(&restocked(product, 0)).await?;
    let letter = wait_for("the bad restock to be dead-lettered", DEADLINE, || async {
        let letters = inventory.dead_letters().await.ok()?;
        // kcat puts the envelope in the value, not in headers.
        let id = bad.event_id.to_string();
        letters.into_iter().find(|l| {
            l.value
                .as_deref()
                .is_some_and(|v| String::from_utf8_lossy(v).contains(&id))
        })
    })
    .await?;
    ensure!(letter.error_kind == dlq::HANDLER_FAILED, "{letter:?}");
    ensure!(letter.error_message.contains("quantity 0"), "{letter:?}");
    ensure!(inventory.counts(product).await? == Some((7, 7, 0, 0)));

    // The stock lists in product id order, a page at a time.
    let mut ids = [product.to_string(), unannounced.to_string()];
    ids.sort();
    let (status, page) = inventory.get("/stock?limit=1").await?;
    ensure!(status == StatusCode::OK, "{status} {page}");
    ensure!(page["items"].as_array().map(Vec::len) == Some(1), "{page}");
    ensure!(
        page["items"][0]["product_id"] == ids[0] && page["next"] == ids[0],
        "{page}"
    );
    let (_, page) = inventory.get(&format!("/stock?after={}", ids[0])).await?;
    ensure!(page["items"].as_array().map(Vec::len) == Some(1), "{page}");
    ensure!(
        page["items"][0]["product_id"] == ids[1] && page["next"].is_null(),
        "{page}"
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("after=nope", "after"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = inventory.get(&format!("/stock?{query}")).await?;
        ensure!(
            status == StatusCode::BAD_REQUEST && body["field"] == field,
            "{query}: {status} {body}"
        );
    }
    let (status, body) = inventory.get("/reservations/nope").await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["field"] == "order_id",
        "{status} {body}"
    );
    let (status, _) = inventory
        .get(&format!("/reservations/{}", Uuid::now_v7()))
        .await?;
    ensure!(status == StatusCode::NOT_FOUND, "{status}");
    Ok(())
}

on_both_engines!(
    an_order_is_reserved_released_rejected_and_sold,
    concurrent_orders_reserve_exactly_the_stock_there_is,
);

async fn an_order_is_reserved_released_rejected_and_sold(engine: Engine) -> anyhow::Result<()> {
    let inventory = Inventory::start(engine).await?;
    let product = stocked_product(&inventory, 10).await?;

    // order.created reserves the order's lines, continuing the order's flow.
    let order = Uuid::now_v7();
    let created = order_created(order, &[(product, 2), (product, 1)]);
    let created_envelope = inventory.produce(&created).await?;
    inventory.wait_counts(product, (10, 7, 3, 0)).await?;
    let changes = inventory.wait_published(order, |c| !c.is_empty()).await?;
    let (envelope, change) = &changes[0];
    ensure!(change.change == InventoryChange::Reserved, "{change:?}");
    ensure!(change.order_id == Some(order));
    ensure!(change.lines.len() == 2, "{change:?}");
    ensure!(envelope.correlation_id == created_envelope.correlation_id);
    ensure!(envelope.causation_id == Some(created_envelope.event_id));
    ensure!(envelope.event_id == derived_event_id(created_envelope.event_id, "reserve"));
    let (_, reservation) = inventory.get(&format!("/reservations/{order}")).await?;
    ensure!(reservation["status"] == "RESERVED", "{reservation}");

    // The same order.created again (same event id, then another) reserves nothing more.
    inventory.produce_with(&created, &created_envelope).await?;
    inventory.produce(&created).await?;

    // order.cancelled releases what it holds.
    let cancelled = order_cancelled(order);
    let cancelled_envelope = Envelope::new(&cancelled).caused_by(&created_envelope);
    inventory
        .produce_with(&cancelled, &cancelled_envelope)
        .await?;
    inventory.wait_counts(product, (10, 10, 0, 0)).await?;
    let changes = inventory.wait_published(order, |c| c.len() >= 2).await?;
    ensure!(
        kinds(&changes) == [InventoryChange::Reserved, InventoryChange::Released],
        "{changes:?}"
    );
    let (envelope, _) = &changes[1];
    ensure!(envelope.correlation_id == created_envelope.correlation_id);
    ensure!(envelope.causation_id == Some(cancelled_envelope.event_id));
    let (_, reservation) = inventory.get(&format!("/reservations/{order}")).await?;
    ensure!(reservation["status"] == "RELEASED", "{reservation}");

    // An order for more than is available is rejected; nothing moves.
    let greedy = Uuid::now_v7();
    inventory
        .produce(&order_created(greedy, &[(product, 11)]))
        .await?;
    let changes = inventory.wait_published(greedy, |c| !c.is_empty()).await?;
    let (_, change) = &changes[0];
    ensure!(change.change == InventoryChange::Rejected, "{change:?}");
    ensure!(
        change.reason.as_deref() == Some("out_of_stock"),
        "{change:?}"
    );
    ensure!(
        change.lines
            == [StockLine {
                product_id: product,
                quantity: 11
            }]
    );
    ensure!(inventory.counts(product).await? == Some((10, 10, 0, 0)));

    // A confirmed order's reservation is sold.
    let bought = Uuid::now_v7();
    let envelope = inventory
        .produce(&order_created(bought, &[(product, 4)]))
        .await?;
    inventory.wait_counts(product, (10, 6, 4, 0)).await?;
    let confirmed = order_confirmed(bought);
    inventory
        .produce_with(&confirmed, &Envelope::new(&confirmed).caused_by(&envelope))
        .await?;
    inventory.wait_counts(product, (10, 6, 0, 4)).await?;
    let changes = inventory.wait_published(bought, |c| c.len() >= 2).await?;
    ensure!(
        kinds(&changes) == [InventoryChange::Reserved, InventoryChange::Sold],
        "{changes:?}"
    );

    // Every decision is on the topic once.
    let changes = inventory.wait_published(order, |c| c.len() >= 2).await?;
    ensure!(changes.len() == 2, "{changes:?}");
    Ok(())
}

async fn concurrent_orders_reserve_exactly_the_stock_there_is(
    engine: Engine,
) -> anyhow::Result<()> {
    let mut inventory = Inventory::start(engine).await?;
    let product = stocked_product(&inventory, 10).await?;
    let orders: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    // Fifty orders for one unit each wait in every partition when the service starts, so
    // its partition workers decide on the same stock at the same time.
    inventory.stop().await?;
    for &order in &orders {
        inventory
            .produce(&order_created(order, &[(product, 1)]))
            .await?;
    }
    inventory.restart().await?;
    let statuses = wait_for("every order to be decided", DEADLINE, || async {
        let mut statuses = Vec::new();
        for order in &orders {
            let (status, body) = inventory
                .get(&format!("/reservations/{order}"))
                .await
                .ok()?;
            if status != StatusCode::OK {
                return None;
            }
            statuses.push(body["status"].as_str()?.to_owned());
        }
        Some(statuses)
    })
    .await?;
    let reserved = statuses.iter().filter(|s| *s == "RESERVED").count();
    let rejected = statuses.iter().filter(|s| *s == "REJECTED").count();
    ensure!((reserved, rejected) == (10, 40), "{statuses:?}");
    ensure!(inventory.counts(product).await? == Some((10, 0, 10, 0)));
    Ok(())
}
