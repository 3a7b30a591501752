//! The payments binary against a real broker, schema registry and database: orders and
//! reservations produced the way kcat does are charged, declined, refunded, and shown over
//! HTTP; bad requests are refused naming what is wrong.

use std::time::Duration;

use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderCreated, OrderLine};
use eventmart_events::payments::PaymentCompleted;
use eventmart_events::{Cause, Currency, Decoded, Envelope, Event, Money, Topic, Topics};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, topics, unique_prefix, wait_for,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// The payments binary with everything it needs, each part its own.
struct System {
    broker: TestBroker,
    registry: TestRegistry,
    _db: TestDatabase,
    service: TestProcess,
    base: String,
    topics: Topics,
    http: reqwest::Client,
}

impl System {
    /// Starts the service on `engine` with extra environment `env`, and waits until it is ready.
    async fn start(engine: Engine, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut vars = vec![
            ("EVENTMART_BOOTSTRAP_SERVERS", broker.bootstrap.as_str()),
            ("EVENTMART_REGISTRY_URL", registry.url.as_str()),
            ("EVENTMART_TOPIC_PREFIX", prefix.as_str()),
            ("DATABASE_URL", db.url.as_str()),
            ("EVENTMART_LISTEN", listen.as_str()),
        ];
        vars.extend_from_slice(env);
        let mut service = TestProcess::spawn("payments", &[], &vars)?;
        let base = format!("http://{listen}");
        service
            .wait_http_ok(&format!("{base}/health/ready"), DEADLINE)
            .await?;
        Ok(Self {
            broker,
            registry,
            _db: db,
            service,
            base,
            topics: Topics::new(&prefix),
            http: reqwest::Client::new(),
        })
    }

    /// Produces `event` to its topic as JSON, as a kcat user does.
    async fn produce(&self, (event, envelope): &(Event, Envelope)) -> anyhow::Result<()> {
        let topic = self.topics.name(event.topic());
        topics::produce_json(&self.broker.bootstrap, &topic, event, envelope).await
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.json().await?))
    }

    /// Waits until the payment of `order_id` has `status`, and returns it.
    async fn wait_for_status(&self, order_id: Uuid, status: &str) -> anyhow::Result<Value> {
        let path = format!("/payments/{order_id}");
        wait_for(
            &format!("payment {order_id} {status}"),
            DEADLINE,
            || async {
                match self.get(&path).await {
                    Ok((200, body)) if body["status"] == status => Some(body),
                    _ => None,
                }
            },
        )
        .await
        .map_err(|e| self.with_log(e))
    }

    /// `error` with the service's output, to see why.
    fn with_log(&self, error: anyhow::Error) -> anyhow::Error {
        error.context(format!("payments printed:\n{}", self.service.log()))
    }

    /// Waits until the payments topic holds `count` events of `order_id`, and returns them in
    /// order.
    async fn payment_events(&self, order_id: Uuid, count: usize) -> anyhow::Result<Vec<Decoded>> {
        let topic = self.topics.name(Topic::Payments);
        let order = order_id.to_string();
        wait_for(
            &format!("{count} payment events of {order_id}"),
            DEADLINE,
            || async {
                let all = topics::read_all(
                    &self.broker.bootstrap,
                    &self.registry.url,
                    &topic,
                    Duration::from_secs(2),
                )
                .await
                .ok()?;
                let mine: Vec<Decoded> = all
                    .into_iter()
                    .filter(|d| d.envelope.aggregate_id == order)
                    .collect();
                (mine.len() >= count).then_some(mine)
            },
        )
        .await
        .map_err(|e| self.with_log(e))
    }
}

/// An order as `orders` would announce it: `order.created`, starting its flow.
struct Order {
    order_id: Uuid,
    user_id: Uuid,
    created: (Event, Envelope),
}

impl Order {
    fn new(payment_token: Option<&str>, total_cents: i64) -> Self {
        let (order_id, user_id) = (Uuid::now_v7(), Uuid::now_v7());
        let event: Event = OrderCreated {
            order_id,
            user_id,
            lines: vec![OrderLine {
                product_id: Uuid::now_v7(),
                quantity: 1,
                unit_price: Money::new(total_cents, Currency::EUR),
            }],
            total: Money::new(total_cents, Currency::EUR),
            payment_token: payment_token.map(str::to_owned),
            created_at: eventmart_events::timestamp::now(),
        }
        .into();
        let envelope = Envelope::new(&event);
        Self {
            order_id,
            user_id,
            created: (event, envelope),
        }
    }

    fn correlation_id(&self) -> Uuid {
        self.created.1.correlation_id
    }

    /// `inventory.updated` RESERVED for the order, as `inventory` would react.
    fn reserved(&self) -> (Event, Envelope) {
        let event: Event = InventoryUpdated {
            change: InventoryChange::Reserved,
            order_id: Some(self.order_id),
            lines: vec![StockLine {
                product_id: Uuid::now_v7(),
                quantity: 1,
            }],
            reason: None,
            updated_at: eventmart_events::timestamp::now(),
        }
        .into();
        let envelope = Envelope::reacting_to(&event, &Cause::from(&self.created.1), "reserve");
        (event, envelope)
    }

    /// `order.cancelled` for the order, in its flow.
    fn cancelled(&self) -> (Event, Envelope) {
        let event: Event = OrderCancelled {
            order_id: self.order_id,
            reason: CancellationReason::Timeout,
            detail: None,
            cancelled_at: eventmart_events::timestamp::now(),
        }
        .into();
        let envelope = Envelope::new(&event).caused_by(&self.created.1);
        (event, envelope)
    }
}

/// Asserts `decoded` is a `event_type` of `order`'s flow caused by `cause`.
fn assert_reacts(decoded: &Decoded, event_type: &str, order: &Order, cause: &Envelope) {
    let envelope = &decoded.envelope;
    assert_eq!(envelope.event_type, event_type, "{decoded:?}");
    assert_eq!(envelope.aggregate_id, order.order_id.to_string());
    assert_eq!(
        envelope.correlation_id,
        order.correlation_id(),
        "{decoded:?}"
    );
    assert_eq!(envelope.causation_id, Some(cause.event_id), "{decoded:?}");
}

async fn reserved_orders_are_charged_declined_and_refunded(engine: Engine) -> anyhow::Result<()> {
    let system = System::start(engine, &[]).await?;
    let paid = Order::new(Some("tok_visa"), 4_498);
    let declined = Order::new(Some("tok_decline"), 1_000);
    let kept = Order::new(None, 2_500);
    let (paid_reserved, declined_reserved, kept_reserved) =
        (paid.reserved(), declined.reserved(), kept.reserved());

    // Either fact may come first.
    system.produce(&paid.created).await?;
    system.produce(&paid_reserved).await?;
    system.produce(&declined_reserved).await?;
    system.produce(&declined.created).await?;
    system.produce(&kept.created).await?;
    system.produce(&kept_reserved).await?;

    let body = system.wait_for_status(paid.order_id, "COMPLETED").await?;
    assert_eq!(body["user_id"], json!(paid.user_id));
    assert_eq!(body["amount"], json!({"cents": 4_498, "currency": "EUR"}));
    assert_eq!(body["charges"], 1);
    assert_eq!(body["cancelled"], false);
    let events = system.payment_events(paid.order_id, 1).await?;
    assert_reacts(&events[0], "payment.completed", &paid, &paid_reserved.1);
    let Event::PaymentCompleted(completed) = &events[0].event else {
        panic!("{events:?}");
    };
    assert_eq!(completed.amount.cents, 4_498);
    assert_eq!(body["payment_id"], json!(completed.payment_id));

    let body = system.wait_for_status(declined.order_id, "FAILED").await?;
    assert_eq!(body["reason"], "card_declined");
    let events = system.payment_events(declined.order_id, 1).await?;
    assert_reacts(
        &events[0],
        "payment.failed",
        &declined,
        &declined_reserved.1,
    );

    let credit = format!("/users/{}/credit", paid.user_id);
    let (status, body) = system.get(&credit).await?;
    assert_eq!(status, 200);
    assert_eq!(body["outstanding_cents"], 4_498);
    assert_eq!(body["limit_cents"], 1_000_000);

    // Cancelling the paid order refunds it.
    let paid_cancelled = paid.cancelled();
    system.produce(&paid_cancelled).await?;
    let body = system.wait_for_status(paid.order_id, "REFUNDED").await?;
    assert_eq!(body["reason"], "order_cancelled");
    assert_eq!(body["cancelled"], true);
    let events = system.payment_events(paid.order_id, 2).await?;
    assert_reacts(&events[1], "payment.refunded", &paid, &paid_cancelled.1);
    assert_eq!(system.get(&credit).await?.1["outstanding_cents"], 0);

    // A manual refund pays back a completed payment, once.
    system.wait_for_status(kept.order_id, "COMPLETED").await?;
    let refund = format!("/payments/{}/refund", kept.order_id);
    let (status, body) = system.post(&refund, &json!({"reason": "goodwill"})).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "REFUNDED");
    assert_eq!(body["reason"], "goodwill");
    let events = system.payment_events(kept.order_id, 2).await?;
    assert_reacts(&events[1], "payment.refunded", &kept, &kept_reserved.1);
    let (status, body) = system.post(&refund, &json!({"reason": "again"})).await?;
    assert_eq!((status, &body["error"]), (409, &json!("not_refundable")));
    let declined_refund = format!("/payments/{}/refund", declined.order_id);
    let (status, body) = system
        .post(&declined_refund, &json!({"reason": "goodwill"}))
        .await?;
    assert_eq!((status, &body["error"]), (409, &json!("not_refundable")));

    // Pages of payments in order id order.
    let mut ids = [paid.order_id, declined.order_id, kept.order_id].map(|id| id.to_string());
    ids.sort();
    let (status, first) = system.get("/payments?limit=2").await?;
    assert_eq!(status, 200);
    assert_eq!(first["items"][0]["order_id"], ids[0]);
    assert_eq!(first["items"][1]["order_id"], ids[1]);
    assert_eq!(first["next"], ids[1]);
    let (_, second) = system.get(&format!("/payments?after={}", ids[1])).await?;
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["items"][0]["order_id"], ids[2]);
    assert_eq!(second["next"], Value::Null);
    Ok(())
}

on_both_engines!(reserved_orders_are_charged_declined_and_refunded);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_completing_after_the_orders_cancellation_is_refunded_right_after_it()
-> anyhow::Result<()> {
    let system = System::start(Engine::Sqlite, &[("PAYMENTS_PROVIDER_LATENCY", "2s")]).await?;
    let order = Order::new(Some("tok_visa"), 1_999);
    let (reserved, cancelled) = (order.reserved(), order.cancelled());
    system.produce(&order.created).await?;
    system.produce(&reserved).await?;
    // The orders and inventory topics are read independently, so a cancellation produced with
    // the reservation may be read before it (and then nothing is ever charged): cancel once
    // the charge is at the provider.
    system.wait_for_status(order.order_id, "CHARGING").await?;
    system.produce(&cancelled).await?;

    let body = system.wait_for_status(order.order_id, "REFUNDED").await?;
    assert_eq!(body["charges"], 1, "{body}");
    assert_eq!(body["cancelled"], true, "{body}");
    assert_eq!(body["reason"], "order_cancelled", "{body}");
    let events = system.payment_events(order.order_id, 2).await?;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_reacts(&events[0], "payment.completed", &order, &reserved.1);
    assert_reacts(&events[1], "payment.refunded", &order, &cancelled.1);
    // Both were decided in the one step that charged, at the same instant.
    let (Event::PaymentCompleted(completed), Event::PaymentRefunded(refunded)) =
        (&events[0].event, &events[1].event)
    else {
        panic!("{events:?}");
    };
    assert_eq!(completed.completed_at, refunded.refunded_at);
    assert_eq!(completed.amount, refunded.amount);
    let (_, credit) = system
        .get(&format!("/users/{}/credit", order.user_id))
        .await?;
    assert_eq!(credit["outstanding_cents"], 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_their_field_and_unknown_payments_are_not_found() -> anyhow::Result<()> {
    let system = System::start(Engine::Sqlite, &[]).await?;
    let unknown = Uuid::now_v7();

    let invalid = [
        ("/payments/not-a-uuid", "order_id"),
        ("/payments?limit=0", "limit"),
        ("/payments?limit=501", "limit"),
        ("/payments?limit=ten", "limit"),
        ("/payments?after=nope", "after"),
        ("/users/nobody/credit", "user_id"),
    ];
    for (path, field) in invalid {
        let (status, body) = system.get(path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"], "invalid", "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    let (status, body) = system.get(&format!("/payments/{unknown}")).await?;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));

    let refund = format!("/payments/{unknown}/refund");
    for (body, field) in [
        (json!({"reason": ""}), "reason"),
        (json!({"reason": "x".repeat(201)}), "reason"),
        (json!({}), "reason"),
        (json!({"reason": "ok", "amount": 1}), "amount"),
    ] {
        let (status, answer) = system.post(&refund, &body).await?;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, body) = system.post(&refund, &json!({"reason": "ok"})).await?;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
    let (status, body) = system
        .post("/payments/not-a-uuid/refund", &json!({"reason": "ok"}))
        .await?;
    assert_eq!((status, &body["field"]), (400, &json!("order_id")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_typed_into_its_topic_is_taken_as_a_fact() -> anyhow::Result<()> {
    let system = System::start(Engine::Sqlite, &[]).await?;
    let (order_id, user_id) = (Uuid::now_v7(), Uuid::now_v7());
    let completed: Event = PaymentCompleted {
        payment_id: Uuid::now_v7(),
        order_id,
        user_id,
        amount: Money::new(700, Currency::EUR),
        completed_at: eventmart_events::timestamp::now(),
    }
    .into();
    let envelope = Envelope::new(&completed);
    system.produce(&(completed, envelope)).await?;
    let body = system.wait_for_status(order_id, "COMPLETED").await?;
    assert_eq!(body["charges"], 1);
    let (_, credit) = system.get(&format!("/users/{user_id}/credit")).await?;
    assert_eq!(credit["outstanding_cents"], 700);
    Ok(())
}
