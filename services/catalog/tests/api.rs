//! The catalog service as its clients see it: the real binary against a real broker, schema
//! registry and database, driven over HTTP and through its topic (as kcat users do).

use std::time::Duration;

use eventmart_events::catalog::ProductCreated;
use eventmart_events::codec::RawRecord;
use eventmart_events::{
    Codec, Currency, Decoded, Envelope, Event, Money, Topic, Topics, samples, timestamp,
};
use eventmart_runtime::db::Engine;
use eventmart_runtime::dlq::{self, Selection};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, topics, unique_prefix, wait_for,
};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a test waits for something to happen.
const PATIENCE: Duration = Duration::from_secs(30);

/// The catalog service running with everything it needs, each part on a random port.
struct Catalog {
    broker: TestBroker,
    registry: TestRegistry,
    _db: TestDatabase,
    _service: TestProcess,
    base: String,
    topics: Topics,
    http: reqwest::Client,
}

/// A record as a consumer reads it: its key and what it decodes to.
struct Record {
    key: Option<String>,
    decoded: Decoded,
}

impl Catalog {
    async fn start(engine: Engine) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut service = TestProcess::spawn(
            "catalog",
            &[],
            &[
                ("EVENTMART_BOOTSTRAP_SERVERS", &broker.bootstrap),
                ("EVENTMART_REGISTRY_URL", &registry.url),
                ("EVENTMART_TOPIC_PREFIX", &prefix),
                ("DATABASE_URL", &db.url),
                ("EVENTMART_LISTEN", &listen),
            ],
        )?;
        let base = format!("http://{listen}");
        service
            .wait_http_ok(&format!("{base}/health/ready"), Duration::from_secs(60))
            .await?;
        Ok(Self {
            broker,
            registry,
            _db: db,
            _service: service,
            base,
            topics: Topics::new(prefix),
            http: reqwest::Client::new(),
        })
    }

    /// Sends `body` (none for `Value::Null`) and returns the status and JSON answer.
    async fn send(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        (status, response.json().await.expect("a JSON answer"))
    }

    async fn create(&self, sku: &str, cents: i64) -> (StatusCode, Value) {
        let price = json!({ "cents": cents, "currency": "EUR" });
        let body = json!({ "sku": sku, "name": "T-shirt", "price": price });
        self.send(Method::POST, "/products", body).await
    }

    /// The records of the catalog topic, in partition and offset order, once there are at
    /// least `count` (the relay publishes shortly after a command commits).
    async fn published(&self, count: usize) -> anyhow::Result<Vec<Record>> {
        let topic = self.topics.name(Topic::Catalog);
        wait_for("records on the catalog topic", PATIENCE, || async {
            let records = read_with_keys(&self.broker.bootstrap, &self.registry.url, &topic)
                .await
                .ok()?;
            (records.len() >= count).then_some(records)
        })
        .await
    }
}

/// The field a 400 answer names.
fn field(answer: &Value) -> &str {
    answer["field"].as_str().unwrap_or_default()
}

async fn creating_publishes_product_created_keyed_by_the_product(
    engine: Engine,
) -> anyhow::Result<()> {
    let catalog = Catalog::start(engine).await?;

    let (status, answer) = catalog.create(" tee-m ", 1999).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["sku"], "TEE-M");
    assert_eq!(answer["name"], "T-shirt");
    assert_eq!(answer["price"], json!({ "cents": 1999, "currency": "EUR" }));
    let product_id = answer["product_id"]
        .as_str()
        .expect("a product id")
        .to_owned();

    let path = format!("/products/{product_id}");
    let (status, shown) = catalog.send(Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["sku"], "TEE-M");
    assert!(shown["created_at"].is_string(), "{shown}");

    let records = catalog.published(1).await?;
    let [record] = records.as_slice() else {
        panic!("one record expected, got {}", records.len());
    };
    assert_eq!(record.key.as_deref(), Some(product_id.as_str()));
    assert_eq!(record.decoded.envelope.event_type, "product.created");
    assert_eq!(
        answer["event_ids"],
        json!([record.decoded.envelope.event_id])
    );
    let Event::ProductCreated(created) = &record.decoded.event else {
        panic!("{:?}", record.decoded.event);
    };
    assert_eq!(created.product_id.to_string(), product_id);
    assert_eq!(created.price, Money::new(1999, Currency::EUR));
    Ok(())
}

async fn a_sku_another_product_holds_is_refused_with_409(engine: Engine) -> anyhow::Result<()> {
    let catalog = Catalog::start(engine).await?;
    let (status, _) = catalog.create("TEE-M", 1999).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = catalog.create(" tee-m", 2999).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "sku_taken");
    Ok(())
}

on_both_engines!(
    creating_publishes_product_created_keyed_by_the_product,
    a_sku_another_product_holds_is_refused_with_409,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_refused_naming_the_field() -> anyhow::Result<()> {
    let catalog = Catalog::start(Engine::Sqlite).await?;
    let eur = json!({ "cents": 1999, "currency": "EUR" });
    let cases = [
        (json!({ "sku": "TEE M", "name": "T", "price": eur }), "sku"),
        (json!({ "sku": "TEE-M", "price": eur }), "name"),
        (json!({ "sku": "TEE-M", "name": " ", "price": eur }), "name"),
        (json!({ "sku": "TEE-M", "name": "T" }), "price"),
        (
            json!({ "sku": "TEE-M", "name": "T", "price": { "cents": 0, "currency": "EUR" } }),
            "price.cents",
        ),
        (
            json!({ "sku": "TEE-M", "name": "T", "price": { "cents": 19.99, "currency": "EUR" } }),
            "price.cents",
        ),
        (
            json!({ "sku": "TEE-M", "name": "T", "price": { "cents": 1, "currency": "euro" } }),
            "price.currency",
        ),
        (
            json!({ "sku": "TEE-M", "name": "T", "price": eur, "colour": "red" }),
            "colour",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = catalog.send(Method::POST, "/products", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(field(&answer), expected, "{body}: {answer}");
    }

    let (status, answer) = catalog
        .send(Method::GET, "/products/nope", Value::Null)
        .await;
    assert_eq!(
        (status, field(&answer)),
        (StatusCode::BAD_REQUEST, "product_id")
    );
    let body = json!({ "price": eur });
    let (status, answer) = catalog
        .send(Method::PUT, "/products/nope/price", body)
        .await;
    assert_eq!(
        (status, field(&answer)),
        (StatusCode::BAD_REQUEST, "product_id")
    );

    let (_, tee) = catalog.create("TEE-M", 1999).await;
    let path = format!(
        "/products/{}/price",
        tee["product_id"].as_str().expect("an id")
    );
    let (status, answer) = catalog.send(Method::PUT, &path, json!({})).await;
    assert_eq!((status, field(&answer)), (StatusCode::BAD_REQUEST, "price"));
    let negative = json!({ "price": { "cents": -1, "currency": "EUR" } });
    let (status, answer) = catalog.send(Method::PUT, &path, negative).await;
    assert_eq!(
        (status, field(&answer)),
        (StatusCode::BAD_REQUEST, "price.cents")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_is_not_found() -> anyhow::Result<()> {
    let catalog = Catalog::start(Engine::Sqlite).await?;
    let path = format!("/products/{}", Uuid::now_v7());
    let (status, answer) = catalog.send(Method::GET, &path, Value::Null).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let body = json!({ "price": { "cents": 100, "currency": "EUR" } });
    let (status, answer) = catalog
        .send(Method::PUT, &format!("{path}/price"), body)
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_price_publishes_product_price_changed() -> anyhow::Result<()> {
    let catalog = Catalog::start(Engine::Sqlite).await?;
    let (_, tee) = catalog.create("TEE-M", 1999).await;
    let product_id = tee["product_id"].as_str().expect("an id").to_owned();
    let path = format!("/products/{product_id}/price");

    let higher = json!({ "price": { "cents": 2499, "currency": "EUR" } });
    let (status, answer) = catalog.send(Method::PUT, &path, higher.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["product_id"], product_id.as_str());
    assert_eq!(answer["price"], higher["price"]);
    assert_eq!(answer["event_ids"].as_array().map(Vec::len), Some(1));
    let (status, answer) = catalog.send(Method::PUT, &path, higher).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["event_ids"],
        json!([]),
        "same price, nothing published"
    );
    let dollars = json!({ "price": { "cents": 2499, "currency": "USD" } });
    let (status, answer) = catalog.send(Method::PUT, &path, dollars.clone()).await;
    assert_eq!(
        (status, &answer["price"]),
        (StatusCode::OK, &dollars["price"])
    );

    let (_, shown) = catalog
        .send(Method::GET, &format!("/products/{product_id}"), Value::Null)
        .await;
    assert_eq!(shown["price"], dollars["price"]);
    let records = catalog.published(3).await?;
    let prices: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.decoded.event {
            Event::ProductPriceChanged(c) => Some((r.key.clone(), c.price)),
            _ => None,
        })
        .collect();
    let key = Some(product_id);
    assert_eq!(
        prices,
        [
            (key.clone(), Money::new(2499, Currency::EUR)),
            (key, Money::new(2499, Currency::USD)),
        ]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_created_with_kcat_is_shown_and_holds_its_sku() -> anyhow::Result<()> {
    let catalog = Catalog::start(Engine::Sqlite).await?;
    let product_id = Uuid::now_v7();
    let event: Event = ProductCreated {
        product_id,
        sku: "MUG-1".into(),
        name: "Mug".into(),
        price: Money::new(899, Currency::EUR),
        created_at: timestamp::now(),
    }
    .into();
    let topic = catalog.topics.name(Topic::Catalog);
    topics::produce_json(
        &catalog.broker.bootstrap,
        &topic,
        &event,
        &Envelope::new(&event),
    )
    .await?;

    let path = format!("/products/{product_id}");
    let shown = wait_for("the created product to be shown", PATIENCE, || async {
        let (status, body) = catalog.send(Method::GET, &path, Value::Null).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await?;
    assert_eq!(shown["name"], "Mug");
    assert_eq!(shown["price"], json!({ "cents": 899, "currency": "EUR" }));

    let (status, answer) = catalog.create("mug-1", 999).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_another_type_on_the_catalog_topic_is_dead_lettered() -> anyhow::Result<()> {
    let catalog = Catalog::start(Engine::Sqlite).await?;
    let event = samples::order_created();
    let topic = catalog.topics.name(Topic::Catalog);
    topics::produce_json(
        &catalog.broker.bootstrap,
        &topic,
        &event,
        &Envelope::new(&event),
    )
    .await?;

    let kafka = eventmart_runtime::kafka::client_config(&catalog.broker.bootstrap, &[]);
    let dlq_topic = catalog.topics.dlq(Topic::Catalog);
    let letter = wait_for(
        "the foreign event to be dead-lettered",
        PATIENCE,
        || async {
            let letters = dlq::list(&kafka, &dlq_topic, &Selection::default())
                .await
                .ok()?;
            letters.into_iter().next()
        },
    )
    .await?;
    assert_eq!(letter.error_kind, dlq::HANDLER_FAILED);
    assert!(
        letter.error_message.contains("order.created"),
        "{}",
        letter.error_message
    );
    Ok(())
}

/// Every record of `topic` (3 partitions) from the beginning with its key, read until none
/// arrives for two seconds; records that do not decode are left out.
async fn read_with_keys(
    bootstrap: &str,
    registry: &str,
    topic: &str,
) -> anyhow::Result<Vec<Record>> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let codec = Codec::new(registry);
    let mut records = Vec::new();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
        let message = message?;
        let headers: Vec<(String, Option<Vec<u8>>)> = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let raw = RawRecord::new(
            topic,
            message.partition(),
            message.offset(),
            message.payload(),
        )
        .with_headers(&headers);
        if let Ok(decoded) = codec.decode(&raw).await {
            let key = message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned());
            records.push((
                (message.partition(), message.offset()),
                Record { key, decoded },
            ));
        }
    }
    records.sort_by_key(|(at, _)| *at);
    Ok(records.into_iter().map(|(_, record)| record).collect())
}
