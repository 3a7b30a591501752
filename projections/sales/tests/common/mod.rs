//! What the sales binary's integration tests share: the binary running against a real broker,
//! schema registry and database, and the orders events they type into the topic. Each test
//! binary uses part of it.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::{Currency, Envelope, Event, Money, Topics};
use eventmart_runtime::command::PositionToken;
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::topics::produce_json;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, unique_prefix,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// How long reads with a position wait in the tests that expect them to succeed: long
/// enough for the consumer group to form on a busy machine.
pub(crate) const LONG_WAIT: (&str, &str) = ("SALES_WAIT_MAX", "60s");

/// The sales binary and everything it runs against.
pub(crate) struct Sales {
    pub(crate) base: String,
    topics: Topics,
    http: reqwest::Client,
    pub(crate) process: TestProcess,
    _db: TestDatabase,
    _registry: TestRegistry,
    broker: TestBroker,
}

impl Sales {
    /// Starts a broker, a registry, a fresh database on `engine` and the binary with `env`.
    pub(crate) async fn start(engine: Engine, env: &[(&str, &str)]) -> anyhow::Result<Self> {
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
        let mut process = TestProcess::spawn("sales", &[], &envs)?;
        let base = format!("http://{listen}");
        process
            .wait_http_ok(&format!("{base}/health/ready"), PATIENCE)
            .await?;
        Ok(Self {
            base,
            topics: Topics::new(&prefix),
            http: reqwest::Client::new(),
            process,
            _db: db,
            _registry: registry,
            broker,
        })
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{path}: {status} {text:?} is not JSON: {e}"))?;
        Ok((status, body))
    }

    /// GET `path`, expecting 200; fails with the process's log otherwise.
    pub(crate) async fn ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        if status != StatusCode::OK {
            anyhow::bail!("{path}: {status} {body}\n{}", self.process.log());
        }
        Ok(body)
    }

    /// Produces each event onto its topic as kcat does.
    pub(crate) async fn produce(&self, events: &[&(Event, Envelope)]) -> anyhow::Result<()> {
        for (event, envelope) in events {
            let topic = self.topics.name(event.topic());
            produce_json(&self.broker.bootstrap, &topic, event, envelope).await?;
        }
        Ok(())
    }
}

/// The position token of `events`, as a command that appended them would answer.
pub(crate) fn position(events: &[&(Event, Envelope)]) -> String {
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
    PositionToken::encode(&ids)
}

/// May 2024, day `day` at `hour`:00 UTC.
pub(crate) fn may(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, day, hour, 0, 0).unwrap()
}

/// An event with an envelope of its own.
pub(crate) fn enveloped(event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// `order.created` of `lines`: (product, quantity, unit price in cents, currency).
pub(crate) fn created(order_id: Uuid, lines: &[(Uuid, i32, i64, Currency)]) -> (Event, Envelope) {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|&(product_id, quantity, cents, currency)| OrderLine {
            product_id,
            quantity,
            unit_price: Money::new(cents, currency),
        })
        .collect();
    let total = lines
        .iter()
        .map(|l| i64::from(l.quantity) * l.unit_price.cents)
        .sum();
    let currency = lines
        .first()
        .map_or(Currency::EUR, |l| l.unit_price.currency);
    enveloped(OrderCreated {
        order_id,
        user_id: Uuid::now_v7(),
        lines,
        total: Money::new(total, currency),
        payment_token: None,
        created_at: may(1, 0),
    })
}

pub(crate) fn confirmed(order_id: Uuid, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(OrderConfirmed {
        order_id,
        payment_id: Uuid::now_v7(),
        confirmed_at: at,
    })
}

pub(crate) fn cancelled(order_id: Uuid, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(OrderCancelled {
        order_id,
        reason: CancellationReason::OutOfStock,
        detail: None,
        cancelled_at: at,
    })
}

/// `[{currency, cents}]` as answered.
pub(crate) fn revenue(of: &[(&str, i64)]) -> Value {
    of.iter()
        .map(|(currency, cents)| json!({"currency": currency, "cents": cents}))
        .collect()
}

/// The `product_id`s of a ranking's items.
pub(crate) fn ids(page: &Value) -> Vec<String> {
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
