//! One of this workspace's binaries that reads topics and serves HTTP (a read model), running
//! as a real process against a broker, a schema registry and a fresh database of its own,
//! with the calls its integration tests make: GET answered in JSON, events typed into its
//! topics as kcat would; and [`schemathesis`], which holds a running API to its own OpenAPI
//! document.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use eventmart_events::{Envelope, Event, Topics};
use reqwest::StatusCode;
use serde_json::Value;

use super::topics::produce_json;
use super::{TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, unique_prefix};
use crate::db::Engine;

/// How long the binary may take to answer `/health/ready`.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A binary and everything it runs against, stopped when dropped (the binary first).
#[derive(Debug)]
pub struct TestComponent {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its topics, under a prefix of its own ([`Topics::prefix`]).
    pub topics: Topics,
    /// The running binary.
    pub process: TestProcess,
    /// Its database.
    pub db: TestDatabase,
    /// The schema registry it uses.
    pub registry: TestRegistry,
    /// The broker it reads from.
    pub broker: TestBroker,
    http: reqwest::Client,
}

impl TestComponent {
    /// Starts a broker, a registry, a fresh database on `engine` and binary `name` with
    /// `EVENTMART_BOOTSTRAP_SERVERS`, `EVENTMART_REGISTRY_URL`, `EVENTMART_TOPIC_PREFIX`,
    /// `DATABASE_URL` and `EVENTMART_LISTEN` pointing at them, and `extra_env`; waits until
    /// it is ready.
    pub async fn start(
        name: &str,
        engine: Engine,
        extra_env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let db = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut envs = vec![
            ("EVENTMART_BOOTSTRAP_SERVERS", broker.bootstrap.as_str()),
            ("EVENTMART_REGISTRY_URL", registry.url.as_str()),
            ("EVENTMART_TOPIC_PREFIX", prefix.as_str()),
            ("DATABASE_URL", db.url.as_str()),
            ("EVENTMART_LISTEN", listen.as_str()),
        ];
        envs.extend_from_slice(extra_env);
        let mut process = TestProcess::spawn(name, &[], &envs)?;
        let base = format!("http://{listen}");
        process
            .wait_http_ok(&format!("{base}/health/ready"), READY_WITHIN)
            .await?;
        Ok(Self {
            base,
            topics: Topics::new(prefix),
            process,
            db,
            registry,
            broker,
            http: reqwest::Client::new(),
        })
    }

    /// GET `path`: the status and the JSON body; an error if the body is not JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{path}: {status} {text:?} is not JSON: {e}"))?;
        Ok((status, body))
    }

    /// GET `path`, expecting 200; fails with the process's log otherwise.
    pub async fn ok(&self, path: &str) -> anyhow::Result<Value> {
        let (status, body) = self.get(path).await?;
        if status != StatusCode::OK {
            bail!("{path}: {status} {body}\n{}", self.process.log());
        }
        Ok(body)
    }

    /// Produces each event onto its topic as kcat does, in order.
    pub async fn produce(&self, events: &[&(Event, Envelope)]) -> anyhow::Result<()> {
        for (event, envelope) in events {
            let topic = self.topics.name(event.topic());
            produce_json(&self.broker.bootstrap, &topic, event, envelope).await?;
        }
        Ok(())
    }
}

/// Runs schemathesis (from PyPI; `scripts/test` installs it and names its `st` in
/// `EVENTMART_SCHEMATHESIS`) against the API at `base_url`: it generates requests from
/// `/openapi.json`, valid and not, and checks every answer: no server error, and every
/// response matching its documented status and schema. Only `positive_data_acceptance` is
/// left out: cursors and position tokens are opaque strings that a schema cannot describe,
/// so a made-up one is rightly refused with 400. Fails with schemathesis' report.
pub async fn schemathesis(base_url: &str) -> anyhow::Result<()> {
    let st = std::env::var("EVENTMART_SCHEMATHESIS")
        .context("EVENTMART_SCHEMATHESIS names schemathesis' `st` (scripts/test sets it)")?;
    let output = tokio::process::Command::new(&st)
        .args(["run", &format!("{base_url}/openapi.json")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "100", "--no-color"])
        // It keeps a cache folder where it runs: not in the source tree.
        .current_dir(std::env::temp_dir())
        .output()
        .await
        .with_context(|| format!("running {st}"))?;
    let report = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(report.contains("passed"), "{report}");
    Ok(())
}
