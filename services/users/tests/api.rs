//! The users service as its clients see it: the real binary against a real broker, schema
//! registry and database, driven over HTTP and through its topic (as kcat users do).

use std::time::Duration;

use eventmart_events::codec::RawRecord;
use eventmart_events::users::UserRegistered;
use eventmart_events::{Codec, Decoded, Envelope, Event, Topic, Topics, samples, timestamp};
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

/// The users service running with everything it needs, each part on a random port.
struct Users {
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

impl Users {
    async fn start(engine: Engine) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut service = TestProcess::spawn(
            "users",
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

    async fn register(&self, email: &str, name: &str) -> (StatusCode, Value) {
        let body = json!({ "email": email, "name": name });
        self.send(Method::POST, "/users", body).await
    }

    /// The records of the users topic, in partition and offset order, once there are at
    /// least `count` (the relay publishes shortly after a command commits).
    async fn published(&self, count: usize) -> anyhow::Result<Vec<Record>> {
        let topic = self.topics.name(Topic::Users);
        wait_for("records on the users topic", PATIENCE, || async {
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

async fn registering_publishes_user_registered_keyed_by_the_user(
    engine: Engine,
) -> anyhow::Result<()> {
    let users = Users::start(engine).await?;

    let (status, answer) = users.register(" Ada@Example.COM ", " Ada Lovelace ").await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["email"], "ada@example.com");
    assert_eq!(answer["name"], "Ada Lovelace");
    let user_id = answer["user_id"].as_str().expect("a user id").to_owned();
    assert_eq!(Uuid::parse_str(&user_id)?.get_version_num(), 7);
    assert!(answer["position"].is_string(), "{answer}");

    let (status, shown) = users
        .send(Method::GET, &format!("/users/{user_id}"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["email"], "ada@example.com");
    assert!(shown["registered_at"].is_string(), "{shown}");

    let records = users.published(1).await?;
    let [record] = records.as_slice() else {
        panic!("one record expected, got {}", records.len());
    };
    assert_eq!(record.key.as_deref(), Some(user_id.as_str()));
    assert_eq!(record.decoded.envelope.event_type, "user.registered");
    assert_eq!(
        answer["event_ids"],
        json!([record.decoded.envelope.event_id])
    );
    let Event::UserRegistered(registered) = &record.decoded.event else {
        panic!("{:?}", record.decoded.event);
    };
    assert_eq!(registered.user_id.to_string(), user_id);
    assert_eq!(registered.email, "ada@example.com");
    Ok(())
}

async fn an_email_another_user_holds_is_refused_with_409(engine: Engine) -> anyhow::Result<()> {
    let users = Users::start(engine).await?;
    let (status, _) = users.register("ada@example.com", "Ada").await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, answer) = users.register("ADA@example.com", "Another Ada").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "email_taken");

    let (_, bob) = users.register("bob@example.com", "Bob").await;
    let bob = format!("/users/{}", bob["user_id"].as_str().expect("bob's id"));
    let (status, answer) = users
        .send(Method::PATCH, &bob, json!({ "email": "ada@example.com" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "email_taken");
    let (_, shown) = users.send(Method::GET, &bob, Value::Null).await;
    assert_eq!(shown["email"], "bob@example.com");
    Ok(())
}

on_both_engines!(
    registering_publishes_user_registered_keyed_by_the_user,
    an_email_another_user_holds_is_refused_with_409,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_refused_naming_the_field() -> anyhow::Result<()> {
    let users = Users::start(Engine::Sqlite).await?;
    let cases = [
        (json!({ "email": "nope", "name": "x" }), "email"),
        (json!({ "email": "ada@example.com" }), "name"),
        (json!({ "email": "ada@example.com", "name": "  " }), "name"),
        (json!({ "email": 7, "name": "Ada" }), "email"),
        (
            json!({ "email": "ada@example.com", "name": "Ada", "admin": true }),
            "admin",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = users.send(Method::POST, "/users", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(field(&answer), expected, "{body}: {answer}");
    }

    let (status, answer) = users
        .send(Method::GET, "/users/not-a-uuid", Value::Null)
        .await;
    assert_eq!(
        (status, field(&answer)),
        (StatusCode::BAD_REQUEST, "user_id")
    );
    let body = json!({ "name": "Ada" });
    let (status, answer) = users.send(Method::PATCH, "/users/42", body).await;
    assert_eq!(
        (status, field(&answer)),
        (StatusCode::BAD_REQUEST, "user_id")
    );

    let (_, ada) = users.register("ada@example.com", "Ada").await;
    let ada = format!("/users/{}", ada["user_id"].as_str().expect("ada's id"));
    let (status, answer) = users.send(Method::PATCH, &ada, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = users
        .send(Method::PATCH, &ada, json!({ "email": "ada@" }))
        .await;
    assert_eq!((status, field(&answer)), (StatusCode::BAD_REQUEST, "email"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_is_not_found() -> anyhow::Result<()> {
    let users = Users::start(Engine::Sqlite).await?;
    let path = format!("/users/{}", Uuid::now_v7());
    let (status, answer) = users.send(Method::GET, &path, Value::Null).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, answer) = users
        .send(Method::PATCH, &path, json!({ "name": "Ada" }))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_publishes_only_what_changed_and_frees_the_old_email() -> anyhow::Result<()> {
    let users = Users::start(Engine::Sqlite).await?;
    let (_, ada) = users.register("ada@example.com", "Ada").await;
    let user_id = ada["user_id"].as_str().expect("ada's id").to_owned();
    let path = format!("/users/{user_id}");

    let (status, answer) = users
        .send(Method::PATCH, &path, json!({ "name": "Countess" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["name"], "Countess");
    assert_eq!(answer["event_ids"].as_array().map(Vec::len), Some(1));
    let unchanged = json!({ "name": " Countess ", "email": "ADA@example.com" });
    let (status, answer) = users.send(Method::PATCH, &path, unchanged).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer["event_ids"],
        json!([]),
        "nothing changed, nothing published"
    );

    let moved = json!({ "email": "ada@lovelace.org" });
    let (status, answer) = users.send(Method::PATCH, &path, moved).await;
    assert_eq!(
        (status, &answer["email"]),
        (StatusCode::OK, &json!("ada@lovelace.org"))
    );
    let (status, answer) = users.register("ada@example.com", "Another Ada").await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the old address is free: {answer}"
    );

    let records = users.published(4).await?;
    let updates: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.decoded.event {
            Event::UserUpdated(u) if u.user_id.to_string() == user_id => Some(u),
            _ => None,
        })
        .map(|u| (u.email.as_deref(), u.name.as_deref()))
        .collect();
    assert_eq!(
        updates,
        [(None, Some("Countess")), (Some("ada@lovelace.org"), None)]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_registered_with_kcat_is_shown_and_holds_its_email() -> anyhow::Result<()> {
    let users = Users::start(Engine::Sqlite).await?;
    let user_id = Uuid::now_v7();
    let event: Event = UserRegistered {
        user_id,
        email: "grace@example.com".into(),
        name: "Grace Hopper".into(),
        registered_at: timestamp::now(),
    }
    .into();
    let topic = users.topics.name(Topic::Users);
    topics::produce_json(
        &users.broker.bootstrap,
        &topic,
        &event,
        &Envelope::new(&event),
    )
    .await?;

    let path = format!("/users/{user_id}");
    let shown = wait_for("the registered user to be shown", PATIENCE, || async {
        let (status, body) = users.send(Method::GET, &path, Value::Null).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await?;
    assert_eq!(shown["name"], "Grace Hopper");
    assert_eq!(shown["email"], "grace@example.com");

    let (status, answer) = users.register("Grace@example.com", "Another Grace").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_another_type_on_the_users_topic_is_dead_lettered() -> anyhow::Result<()> {
    let users = Users::start(Engine::Sqlite).await?;
    let event = samples::order_created();
    let topic = users.topics.name(Topic::Users);
    topics::produce_json(
        &users.broker.bootstrap,
        &topic,
        &event,
        &Envelope::new(&event),
    )
    .await?;

    let kafka = eventmart_runtime::kafka::client_config(&users.broker.bootstrap, &[]);
    let dlq_topic = users.topics.dlq(Topic::Users);
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
