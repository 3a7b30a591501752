//! A read model's query API served in-process on a free port over a fresh database, with that
//! database as its projector writes it: what a client reads while the model changes, without
//! a broker or a binary (those are [`super::TestComponent`]'s).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;

use super::TestDatabase;
use crate::db::{self, Db, Engine};
use crate::projection::{Current, LiveDb, Projection};

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
    /// Serves the router `api` builds over a fresh `engine` database of read model `P` (its
    /// migrations run), read as its live version.
    pub async fn start<P: Projection>(
        engine: Engine,
        api: impl FnOnce(LiveDb) -> Router,
    ) -> anyhow::Result<Self> {
        let database = TestDatabase::create(engine).await?;
        let writer = db::connect_component(&database.url, P::migrations()).await?;
        let live = LiveDb::new(Current {
            db: db::readers(&writer, &database.url).await?,
            group: P::NAME.to_owned(),
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

/// What readers found while a writer changed the model.
#[derive(Debug, Default)]
pub struct Reads {
    /// Successful answers read.
    pub answers: usize,
    /// What was wrong with them, one line each.
    pub wrong: Vec<String>,
}

impl ServedQueries {
    /// Reads with `readers` clients at once, over and over, while `write(i)` runs for each `i`
    /// of `0..steps` in turn: each reader reads `path(i)` of the step being written, where the
    /// commits land, and `wrong` says what is wrong with an answer it got (a 200).
    pub async fn read_while_writing<P, C, I, W, Fut>(
        &self,
        steps: usize,
        readers: usize,
        path: P,
        wrong: C,
        mut write: W,
    ) -> anyhow::Result<Reads>
    where
        P: Fn(usize) -> String + Send + Sync + 'static,
        C: Fn(&Value) -> I + Send + Sync + 'static,
        I: IntoIterator<Item = String>,
        W: FnMut(usize) -> Fut,
        Fut: Future<Output = anyhow::Result<()>>,
    {
        let (path, wrong) = (Arc::new(path), Arc::new(wrong));
        let writing = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..readers {
            let (client, base) = (self.client.clone(), self.base.clone());
            let (path, wrong) = (Arc::clone(&path), Arc::clone(&wrong));
            let (writing, done) = (Arc::clone(&writing), Arc::clone(&done));
            tasks.push(tokio::spawn(async move {
                let mut reads = Reads::default();
                while !done.load(Ordering::Acquire) {
                    let url = format!("{base}{}", path(writing.load(Ordering::Acquire)));
                    let response = client.get(url).send().await?;
                    if response.status() == StatusCode::OK {
                        reads.answers += 1;
                        reads.wrong.extend(wrong(&response.json().await?));
                    }
                }
                anyhow::Ok(reads)
            }));
        }
        let mut written = Ok(());
        for step in 0..steps {
            writing.store(step, Ordering::Release);
            written = write(step).await;
            if written.is_err() {
                break;
            }
        }
        done.store(true, Ordering::Release);
        let mut reads = Reads::default();
        for task in tasks {
            let read = task.await??;
            reads.answers += read.answers;
            reads.wrong.extend(read.wrong);
        }
        written.map(|()| reads)
    }
}

impl Drop for ServedQueries {
    fn drop(&mut self) {
        self.server.abort();
    }
}
