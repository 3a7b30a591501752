//! `TestApp`: the registry on `127.0.0.1:0` over a fresh database, plus HTTP shorthands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::{TestDatabase, wait_for};
use reqwest::header::CONTENT_TYPE;
use schema_registry::{CompatibilityLevel, Config, RunError};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The media type Confluent's clients send and the registry answers with.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The registry under test, over its own database; stopped when dropped.
#[derive(Debug)]
pub(crate) struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub(crate) address: String,
    /// A plain HTTP client.
    pub(crate) client: reqwest::Client,
    /// Shared by the instances started with [`TestApp::beside`].
    database: Arc<TestDatabase>,
    server: Option<Server>,
}

#[derive(Debug)]
struct Server {
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RunError>>,
}

/// An HTTP answer: status, JSON body (`Null` if empty or not JSON) and content type.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The HTTP status code.
    pub(crate) status: u16,
    /// The body as JSON, `Null` when empty or not JSON.
    pub(crate) body: Value,
    /// The `Content-Type` header.
    pub(crate) content_type: Option<String>,
}

impl Answer {
    /// The `id` of a successful registration.
    pub(crate) fn id(&self) -> Result<i64> {
        ensure!(self.status == 200, "expected 200, got {self:?}");
        self.body["id"].as_i64().context("no id in the answer")
    }

    /// Asserts a Confluent error with `status` and `error_code`, and returns its message.
    pub(crate) fn error(&self, status: u16, error_code: i64) -> Result<String> {
        ensure!(
            self.status == status && self.body["error_code"] == json!(error_code),
            "expected {status}/{error_code}, got {self:?}"
        );
        Ok(self.body["message"].as_str().unwrap_or_default().to_owned())
    }
}

impl TestApp {
    /// Starts a registry over a fresh database on `engine`.
    pub(crate) async fn spawn(engine: Engine) -> Result<Self> {
        Self::spawn_on(Arc::new(TestDatabase::create(engine).await?)).await
    }

    /// Starts a second registry on this one's database, as a second process would be.
    pub(crate) async fn beside(&self) -> Result<Self> {
        Self::spawn_on(Arc::clone(&self.database)).await
    }

    async fn spawn_on(database: Arc<TestDatabase>) -> Result<Self> {
        let mut app = Self {
            address: String::new(),
            client: reqwest::Client::new(),
            database,
            server: None,
        };
        app.start().await?;
        Ok(app)
    }

    /// Stops the registry, then starts it again on the same database (and a new port).
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.start().await
    }

    /// Cancels the registry and waits until it has stopped.
    pub(crate) async fn stop(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.shutdown.cancel();
            tokio::time::timeout(Duration::from_secs(30), server.task)
                .await
                .context("the registry did not stop within 30s")???;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        self.address = format!("http://{}", listener.local_addr()?);
        let config = Config {
            listen: "127.0.0.1:0".to_owned(),
            database_url: self.database.url.clone(),
            default_compatibility: CompatibilityLevel::Backward,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(schema_registry::run(listener, config, shutdown.clone()));
        let server = Server { shutdown, task };
        let ready_url = self.url("/health/ready");
        let ready = wait_for("the registry to be ready", Duration::from_secs(30), || {
            let (client, url, task) = (&self.client, &ready_url, &server.task);
            async move {
                if task.is_finished() {
                    return Some(false);
                }
                let response = client.get(url).send().await.ok()?;
                response.status().is_success().then_some(true)
            }
        })
        .await?;
        if !ready {
            let outcome = server.task.await?;
            bail!("the registry stopped while starting: {outcome:?}");
        }
        self.server = Some(server);
        Ok(())
    }

    /// The `DATABASE_URL` the registry runs on.
    pub(crate) fn database_url(&self) -> &str {
        &self.database.url
    }

    /// The absolute URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends `request` and reads the answer.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            content_type,
        })
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Answer> {
        self.send(self.client.get(self.url(path))).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Result<Answer> {
        self.send(self.client.delete(self.url(path))).await
    }

    /// `POST path` with a JSON body, as Confluent's clients send it.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Answer> {
        let request = self
            .client
            .post(self.url(path))
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .body(body.to_string());
        self.send(request).await
    }

    /// `PUT path` with a JSON body.
    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Answer> {
        let request = self
            .client
            .put(self.url(path))
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .body(body.to_string());
        self.send(request).await
    }

    /// Registers `schema` under `subject` (given as in a URL, `%2F` for `/`).
    pub(crate) async fn register(&self, subject: &str, schema: &str) -> Result<Answer> {
        let path = format!("/subjects/{subject}/versions");
        self.post(&path, &json!({ "schema": schema })).await
    }

    /// Registers `schema` under `subject`, expecting success, and returns its id.
    pub(crate) async fn register_ok(&self, subject: &str, schema: &str) -> Result<i64> {
        self.register(subject, schema)
            .await?
            .id()
            .with_context(|| format!("registering under {subject}"))
    }

    /// Sets the compatibility level of `subject`.
    pub(crate) async fn set_level(&self, subject: &str, level: &str) -> Result<()> {
        let answer = self
            .put(
                &format!("/config/{subject}"),
                &json!({ "compatibility": level }),
            )
            .await?;
        ensure!(answer.status == 200, "setting {level}: {answer:?}");
        Ok(())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.shutdown.cancel();
        }
    }
}

/// The field `id: string` of the `Order` records below.
pub(crate) const ID: &str = r#"{"name":"id","type":"string"}"#;
/// The field `cents: long`.
pub(crate) const CENTS: &str = r#"{"name":"cents","type":"long"}"#;
/// The field `note: string` with a default.
pub(crate) const NOTE_WITH_DEFAULT: &str = r#"{"name":"note","type":"string","default":""}"#;
/// The field `note: string` without a default.
pub(crate) const NOTE: &str = r#"{"name":"note","type":"string"}"#;

/// A `com.example.Order` record schema with `fields`.
pub(crate) fn order(fields: &[&str]) -> String {
    format!(
        r#"{{"type":"record","name":"Order","namespace":"com.example","fields":[{}]}}"#,
        fields.join(",")
    )
}
