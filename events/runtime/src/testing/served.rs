//! A read model's query API served in-process on a free port over a fresh database, with that
//! database as its projector writes it: what a client reads while the model changes, without
//! a broker or a binary (those are [`super::TestComponent`]'s).

use anyhow::Context;
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;

use super::TestDatabase;
use crate::db::{self, Db, Engine, Migrations};
use crate::projection::{Current, LiveDb};

/// The query API on `base`, and the database under it; everything stops when it is dropped.
#[derive(Debug)]
pub struct ServedQueries {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    /// The database, opened for writing as the projector does.
    pub writer: Db,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
}

impl ServedQueries {
    /// Serves the router `api` builds over a fresh `engine` database migrated with
    /// `migrations`, read as the live version of consumer group `group`.
    pub async fn start(
        engine: Engine,
        migrations: Migrations,
        group: &str,
        api: impl FnOnce(LiveDb) -> Router,
    ) -> anyhow::Result<Self> {
        let database = TestDatabase::create(engine).await?;
        let writer = db::connect_component(&database.url, migrations).await?;
        let live = LiveDb::new(Current {
            db: db::readers(&writer, &database.url).await?,
            group: group.to_owned(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = api(live);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base,
            writer,
            client: reqwest::Client::new(),
            server,
            _database: database,
        })
    }

    /// `GET path`: the status and the JSON body.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        let status = response.status();
        let body = response
            .json()
            .await
            .with_context(|| format!("{path}: {status}, not JSON"))?;
        Ok((status, body))
    }

    /// The body of a read that must succeed.
    pub async fn ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        anyhow::ensure!(status == StatusCode::OK, "{path}: {status} {body}");
        Ok(body)
    }
}

impl Drop for ServedQueries {
    fn drop(&mut self) {
        self.server.abort();
    }
}
