//! The orders binary against a real broker, schema registry and database: users and
//! products typed into their topics become known, orders are placed, priced from them and
//! refused when malformed, and inventory's, payments' and the clock's verdicts end them.

use std::time::Duration;

use eventmart_events::catalog::ProductCreated;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{CancellationReason, OrderCreated, OrderLine};
use eventmart_events::payments::PaymentCompleted;
use eventmart_events::users::UserRegistered;
use eventmart_events::{Currency, Decoded, Envelope, Event, Money, Topic, Topics, timestamp};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::topics::{produce_json, read_all};
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, unique_prefix, wait_for,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
const PATIENCE: Duration = Duration::from_secs(60);

/// A deadline no test waits for, so that only the deadline's own test sees orders time out.
const NO_DEADLINE: (&str, &str) = ("ORDERS_DEADLINE", "1h");

/// The orders binary and everything it runs against.
struct Orders {
    base: String,
    topics: Topics,
    http: reqwest::Client,
    service: TestProcess,
    _db: TestDatabase,
    registry: TestRegistry,
    broker: TestBroker,
}

impl Orders {
    /// Starts a broker, a registry, a fresh database on `engine` and the binary with `env`.
    async fn start(engine: Engine, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut envs = vec![
            ("EVENTMART_BOOTSTRAP_SERVERS", broker.bootstrap.as_str()),
            ("EVENTMART_REGISTRY_URL", registry.url.as_str()),
            ("EVENTMART_TOPIC_PREFIX", prefix.as_str()),
            ("DATABASE_URL", db.url.as_str()),
            ("EVENTMART_LISTEN", listen.as_str()),
        ];
        envs.extend_from_slice(env);
        let mut service = TestProcess::spawn("orders", &[], &envs)?;
        let base = format!("http://{listen}");
        service
            .wait_http_ok(&format!("{base}/health/ready"), PATIENCE)
            .await?;
        Ok(Self {
            base,
            topics: Topics::new(&prefix),
            http: reqwest::Client::new(),
            service,
            _db: db,
            registry,
            broker,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((response.status(), response.json().await?))
    }

    /// Produces `event` onto its topic as kcat does, with `envelope`.
    async fn produce(&self, event: &Event, envelope: &Envelope) -> anyhow::Result<()> {
        let topic = self.topics.name(event.topic());
        produce_json(&self.broker.bootstrap, &topic, event, envelope).await
    }

    /// Registers a user and creates a product priced `cents` EUR on their topics.
    async fn seed(&self, cents: i64) -> anyhow::Result<(Uuid, Uuid)> {
        let (user, product) = (Uuid::now_v7(), Uuid::now_v7());
        let registered: Event = UserRegistered {
            user_id: user,
            email: format!("{user}@example.com"),
            name: "Ada".into(),
            registered_at: timestamp::now(),
        }
        .into();
        self.produce(&registered, &Envelope::new(&registered))
            .await?;
        let created: Event = ProductCreated {
            product_id: product,
            sku: format!("SKU-{}", &product.simple().to_string()[..8]),
            name: "A book".into(),
            price: Money::new(cents, Currency::EUR),
            created_at: timestamp::now(),
        }
        .into();
        self.produce(&created, &Envelope::new(&created)).await?;
        Ok((user, product))
    }

    /// Places an order, waiting until the user and products are known; returns the body.
    async fn place(&self, body: &Value) -> anyhow::Result<Value> {
        wait_for("orders to accept the order", PATIENCE, || async {
            match self.post("/orders", body).await {
                Ok((StatusCode::CREATED, created)) => Some(Ok(created)),
                Ok((StatusCode::UNPROCESSABLE_ENTITY, _)) | Err(_) => None,
                Ok((status, answer)) => Some(Err(anyhow::anyhow!("{status}: {answer}"))),
            }
        })
        .await?
    }

    /// Waits until order `id` is `status`; returns it as GET shows it.
    async fn wait_status(&self, id: &str, status: &str) -> anyhow::Result<Value> {
        let path = format!("/orders/{id}");
        wait_for(&format!("order {id} to be {status}"), PATIENCE, || async {
            match self.get(&path).await {
                Ok((StatusCode::OK, order)) if order["status"] == status => Some(order),
                _ => None,
            }
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", self.service.log()))
    }

    /// Waits for the `event_type` of order `id` on the orders topic.
    async fn wait_event(&self, id: &str, event_type: &str) -> anyhow::Result<Decoded> {
        let topic = self.topics.name(Topic::Orders);
        wait_for(&format!("{event_type} of {id}"), PATIENCE, || async {
            read_all(
                &self.broker.bootstrap,
                &self.registry.url,
                &topic,
                Duration::from_secs(2),
            )
            .await
            .ok()?
            .into_iter()
            .find(|d| d.envelope.event_type == event_type && d.envelope.aggregate_id == id)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", self.service.log()))
    }
}

fn order_body(user: Uuid, lines: &[(Uuid, i64)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
        .collect();
    json!({"user_id": user, "lines": lines, "payment_token": "tok_visa"})
}

fn order_id(body: &Value) -> anyhow::Result<Uuid> {
    let id = body["order_id"].as_str().unwrap_or_default();
    Ok(Uuid::parse_str(id)?)
}

/// The envelope payments or inventory would give an effect of `cause`.
fn caused_by(event: &Event, cause: &Envelope) -> Envelope {
    Envelope::new(event).caused_by(cause)
}

async fn an_order_is_priced_from_the_replicas_and_confirmed_when_paid(
    engine: Engine,
) -> anyhow::Result<()> {
    let orders = Orders::start(engine, &[NO_DEADLINE]).await?;
    let (user, product) = orders.seed(1999).await?;

    let placed = orders.place(&order_body(user, &[(product, 3)])).await?;
    assert_eq!(placed["status"], "PENDING", "{placed}");
    assert_eq!(placed["total"], json!({"cents": 5997, "currency": "EUR"}));
    assert_eq!(placed["lines"][0]["unit_price"]["cents"], 1999);
    let id = order_id(&placed)?;

    let created = orders.wait_event(&id.to_string(), "order.created").await?;
    let Event::OrderCreated(event) = &created.event else {
        anyhow::bail!("{created:?}");
    };
    assert_eq!(event.user_id, user);
    assert_eq!(event.lines[0].unit_price, Money::new(1999, Currency::EUR));
    assert_eq!(event.total, Money::new(5997, Currency::EUR));
    assert_eq!(event.payment_token.as_deref(), Some("tok_visa"));
    assert_eq!(created.envelope.correlation_id, created.envelope.event_id);
    assert_eq!(created.envelope.causation_id, None);

    let paid: Event = PaymentCompleted {
        payment_id: Uuid::now_v7(),
        order_id: id,
        user_id: user,
        amount: event.total,
        completed_at: timestamp::now(),
    }
    .into();
    let payment = caused_by(&paid, &created.envelope);
    orders.produce(&paid, &payment).await?;
    let confirmed = orders.wait_status(&id.to_string(), "CONFIRMED").await?;
    let Event::PaymentCompleted(paid) = &paid else {
        unreachable!()
    };
    assert_eq!(confirmed["payment_id"], paid.payment_id.to_string());

    let event = orders
        .wait_event(&id.to_string(), "order.confirmed")
        .await?;
    assert_eq!(
        event.envelope.correlation_id,
        created.envelope.correlation_id
    );
    assert_eq!(event.envelope.causation_id, Some(payment.event_id));

    let (status, body) = orders
        .post(&format!("/orders/{id}/cancel"), &json!(null))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "order_confirmed");
    Ok(())
}

on_both_engines!(an_order_is_priced_from_the_replicas_and_confirmed_when_paid);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_unknown_users_products_and_orders_are_refused() -> anyhow::Result<()>
{
    let orders = Orders::start(Engine::Sqlite, &[NO_DEADLINE]).await?;
    let (user, product) = orders.seed(500).await?;
    orders.place(&order_body(user, &[(product, 1)])).await?;

    let stranger = Uuid::now_v7();
    let (status, body) = orders
        .post("/orders", &order_body(stranger, &[(product, 1)]))
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "unknown_user");
    assert_eq!(body["field"], "user_id", "{body}");
    let unheard_of = Uuid::now_v7();
    let (status, body) = orders
        .post(
            "/orders",
            &order_body(user, &[(product, 1), (unheard_of, 1)]),
        )
        .await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "unknown_product");
    assert_eq!(body["field"], "lines[1].product_id", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&unheard_of.to_string()),
        "{body}"
    );

    let cases = [
        (
            json!({"user_id": "bob", "lines": [{"product_id": product, "quantity": 1}]}),
            "user_id",
        ),
        (json!({"user_id": user, "lines": []}), "lines"),
        (order_body(user, &[(product, 0)]), "lines[0].quantity"),
        (
            order_body(user, &[(product, 1), (product, 2)]),
            "lines[1].product_id",
        ),
        (
            json!({"user_id": user, "lines": [{"product_id": "p", "quantity": 1}]}),
            "lines[0].product_id",
        ),
        (
            json!({"user_id": user, "lines": [{"product_id": product}]}),
            "lines[0].quantity",
        ),
        (
            json!({"user_id": user, "lines": [{"product_id": product, "quantity": 1}],
                   "payment_token": "t".repeat(101)}),
            "payment_token",
        ),
        (
            json!({"user_id": user, "lines": [], "coupon": "FREE"}),
            "coupon",
        ),
    ];
    for (request, field) in cases {
        let (status, body) = orders.post("/orders", &request).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert_eq!(body["field"], field, "{request}: {body}");
    }

    let unknown = Uuid::now_v7();
    let (status, body) = orders.get(&format!("/orders/{unknown}")).await?;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (status, body) = orders
        .post(&format!("/orders/{unknown}/cancel"), &json!(null))
        .await?;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::NOT_FOUND, &json!("not_found"))
    );
    let (status, body) = orders.get("/orders/nope").await?;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("order_id"))
    );
    let (status, body) = orders.get("/orders?limit=0").await?;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("limit"))
    );
    let (status, body) = orders.get("/orders?after=x").await?;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("after"))
    );
    let (status, body) = orders.get("/orders?limit=500").await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["next"], Value::Null);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_cancelled_out_of_stock_or_once_by_the_customer() -> anyhow::Result<()> {
    let orders = Orders::start(Engine::Sqlite, &[NO_DEADLINE]).await?;
    let (user, product) = orders.seed(800).await?;

    let rejected = order_id(&orders.place(&order_body(user, &[(product, 7)])).await?)?;
    let created = orders
        .wait_event(&rejected.to_string(), "order.created")
        .await?;
    let update: Event = InventoryUpdated {
        change: InventoryChange::Rejected,
        order_id: Some(rejected),
        lines: vec![StockLine {
            product_id: product,
            quantity: 7,
        }],
        reason: Some("out_of_stock".into()),
        updated_at: timestamp::now(),
    }
    .into();
    let rejection = caused_by(&update, &created.envelope);
    orders.produce(&update, &rejection).await?;
    let cancelled = orders
        .wait_status(&rejected.to_string(), "CANCELLED")
        .await?;
    assert_eq!(cancelled["reason"], "out_of_stock");
    let event = orders
        .wait_event(&rejected.to_string(), "order.cancelled")
        .await?;
    assert_eq!(event.envelope.causation_id, Some(rejection.event_id));
    assert_eq!(
        event.envelope.correlation_id,
        created.envelope.correlation_id
    );

    let unwanted = order_id(&orders.place(&order_body(user, &[(product, 1)])).await?)?;
    let path = format!("/orders/{unwanted}/cancel");
    let (status, body) = orders.post(&path, &json!(null)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["order_id"], &body["status"], &body["reason"]),
        (
            &json!(unwanted),
            &json!("CANCELLED"),
            &json!("cancelled_by_customer")
        )
    );
    let (status, body) = orders.post(&path, &json!(null)).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "order_cancelled");
    let event = orders
        .wait_event(&unwanted.to_string(), "order.cancelled")
        .await?;
    let placed = orders
        .wait_event(&unwanted.to_string(), "order.created")
        .await?;
    assert_eq!(
        event.envelope.correlation_id,
        placed.envelope.correlation_id
    );
    assert_eq!(event.envelope.causation_id, Some(placed.envelope.event_id));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_left_pending_past_the_deadline_are_cancelled_even_typed_in_ones()
-> anyhow::Result<()> {
    let orders = Orders::start(Engine::Sqlite, &[("ORDERS_DEADLINE", "1s")]).await?;
    let (user, product) = orders.seed(300).await?;

    let forgotten = order_id(&orders.place(&order_body(user, &[(product, 1)])).await?)?;
    let ended = orders
        .wait_status(&forgotten.to_string(), "CANCELLED")
        .await?;
    assert_eq!(ended["reason"], "timeout");
    let created = orders
        .wait_event(&forgotten.to_string(), "order.created")
        .await?;
    let event = orders
        .wait_event(&forgotten.to_string(), "order.cancelled")
        .await?;
    let Event::OrderCancelled(cancelled) = &event.event else {
        anyhow::bail!("{event:?}");
    };
    assert_eq!(cancelled.reason, CancellationReason::Timeout);
    assert_eq!(event.envelope.causation_id, Some(created.envelope.event_id));
    assert_eq!(
        event.envelope.correlation_id,
        created.envelope.correlation_id
    );

    // An order typed into the orders topic is the service's own as much as a placed one.
    let typed: Event = OrderCreated {
        order_id: Uuid::now_v7(),
        user_id: user,
        lines: vec![OrderLine {
            product_id: product,
            quantity: 2,
            unit_price: Money::new(300, Currency::EUR),
        }],
        total: Money::new(600, Currency::EUR),
        payment_token: None,
        created_at: timestamp::now(),
    }
    .into();
    orders.produce(&typed, &Envelope::new(&typed)).await?;
    let id = typed.aggregate_id();
    let path = format!("/orders/{id}");
    let seen = wait_for("the typed-in order", PATIENCE, || async {
        match orders.get(&path).await {
            Ok((StatusCode::OK, order)) => Some(order),
            _ => None,
        }
    })
    .await?;
    assert_eq!(seen["total"], json!({"cents": 600, "currency": "EUR"}));
    assert_eq!(seen["user_id"], user.to_string());
    let ended = orders.wait_status(&id, "CANCELLED").await?;
    assert_eq!(ended["reason"], "timeout");
    Ok(())
}
