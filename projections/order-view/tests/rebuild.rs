//! Rebuilding the order view with `eventmart projection` while the order-view binary serves:
//! a rebuild killed with SIGKILL half-way leaves the live version serving and resumes where it
//! stopped; the promoted version is served without a failed read; the rebuilt version, the
//! version it replaced and a second fresh rebuild have the same checksums.

use std::time::Duration;

use anyhow::Context;
use chrono::{TimeZone, Utc};
use eventmart_events::{Topics, samples};
use eventmart_runtime::db::{self, Engine};
use eventmart_runtime::kafka;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::projection::versions;
use eventmart_runtime::testing::topics::produce_many_json;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, binary, free_port, unique_prefix, wait_for,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How long anything asynchronous may take.
const PATIENCE: Duration = Duration::from_secs(120);

/// Sagas written before the rebuild: five events each.
const SAGAS: u32 = 3_000;

struct Setup {
    broker: TestBroker,
    registry: TestRegistry,
    database: TestDatabase,
    prefix: String,
    base: String,
    process: TestProcess,
}

impl Setup {
    async fn start(engine: Engine) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let database = TestDatabase::create(engine).await?;
        let prefix = unique_prefix();
        let topics = Topics::new(&prefix);
        let start = Utc.timestamp_opt(1_750_000_000, 0).unwrap();
        let events: Vec<_> = samples::sagas(SAGAS, 25, 10, start)
            .into_iter()
            .map(|(event, envelope)| (topics.name(event.topic()), event, envelope))
            .collect();
        kafka::provision_topics(
            &broker.bootstrap,
            &[],
            &topics.all(),
            &kafka::TopicLayout::default(),
        )
        .await?;
        produce_many_json(&broker.bootstrap, &events).await?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let mut process = TestProcess::spawn(
            "order-view",
            &[],
            &[
                ("EVENTMART_BOOTSTRAP_SERVERS", broker.bootstrap.as_str()),
                ("EVENTMART_REGISTRY_URL", registry.url.as_str()),
                ("EVENTMART_TOPIC_PREFIX", prefix.as_str()),
                ("DATABASE_URL", database.url.as_str()),
                ("EVENTMART_LISTEN", listen.as_str()),
                ("EVENTMART_FETCH_WAIT", "50ms"),
            ],
        )?;
        let base = format!("http://{listen}");
        process
            .wait_http_ok(&format!("{base}/health/ready"), PATIENCE)
            .await?;
        Ok(Self {
            broker,
            registry,
            database,
            prefix,
            base,
            process,
        })
    }

    /// `eventmart projection <subcommand> order-view <rest> --database-url …` as a command,
    /// for `args` = `[subcommand, rest…]`.
    fn eventmart(&self, args: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(binary("eventmart")?);
        command
            .arg("projection")
            .args(&args[..1])
            .arg("order-view")
            .args(&args[1..])
            .args(["--database-url", &self.database.url])
            .env("EVENTMART_BOOTSTRAP_SERVERS", &self.broker.bootstrap)
            .env("EVENTMART_REGISTRY_URL", &self.registry.url)
            .env("EVENTMART_TOPIC_PREFIX", &self.prefix)
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        Ok(command)
    }

    /// Runs [`Setup::eventmart`]; its output, or an error with it.
    async fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.eventmart(args)?.output().await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::ensure!(
            output.status.success(),
            "eventmart projection {args:?}: {}\n{text}\n{}",
            output.status,
            self.process.log()
        );
        Ok(text)
    }

    /// GET `path`, expecting 200.
    async fn ok(&self, path: &str) -> anyhow::Result<Value> {
        let response = reqwest::get(format!("{}{path}", self.base)).await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }
}

/// The order id of saga `n` (as `samples::sagas` makes them).
fn order(n: u32) -> String {
    let start = Utc.timestamp_opt(1_750_000_000, 0).unwrap();
    let events = samples::sagas(n + 1, 25, 10, start);
    events[n as usize * 5].1.aggregate_id.to_string()
}

/// The checksum lines of `eventmart projection checksum` (without the header line).
fn sums(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::to_owned)
        .collect()
}

async fn an_interrupted_rebuild_resumes_and_the_promoted_version_matches_the_live_one(
    engine: Engine,
) -> anyhow::Result<()> {
    let setup = Setup::start(engine).await?;
    let last = order(SAGAS - 1);
    // The last saga is a declined one: cancelled, with five steps once all have arrived.
    wait_for("the live version to catch up", PATIENCE, || async {
        let order = setup.ok(&format!("/orders/{last}")).await.ok()?;
        (order["timeline"].as_array()?.len() == 5).then_some(())
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", setup.process.log()))?;
    let first = order(0);
    let before = setup.ok(&format!("/orders/{first}")).await?;

    // A rebuild applying one record per transaction, killed once its progress lines (what
    // a user sees) say it is well under way.
    let mut rebuild = setup
        .eventmart(&["rebuild", "--plain", "--batch", "1"])?
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = rebuild.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let under_way = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await? {
            let done = line
                .split_once("v2: ")
                .and_then(|(_, rest)| rest.split_once('/'))
                .and_then(|(done, _)| done.parse::<u64>().ok());
            seen.push(line);
            if done.is_some_and(|done| done >= 600) {
                return Ok(());
            }
        }
        anyhow::bail!("the rebuild ended before it was under way")
    })
    .await;
    if !matches!(under_way, Ok(Ok(()))) {
        anyhow::bail!("{under_way:?}:\n{}", seen.join("\n"));
    }
    let control = db::connect_component(&setup.database.url, order_view::migrations()).await?;
    rebuild.start_kill()?;
    rebuild.wait().await?;
    let v2 = versions::get(&control.pool, "order-view", 2).await?;
    assert_eq!(v2.state, versions::VersionState::Building, "{v2:?}");
    assert_eq!(versions::live(&control.pool, "order-view").await?.number, 1);
    // The live version served throughout and still does, unchanged.
    assert_eq!(setup.ok(&format!("/orders/{first}")).await?, before);

    let resumed = setup.run(&["rebuild", "--plain"]).await?;
    assert!(resumed.contains("version 2: resumed"), "{resumed}");
    assert!(resumed.contains("now serves version 2"), "{resumed}");
    assert_eq!(
        versions::served(&control.pool, "order-view").await?,
        Some(2)
    );
    assert_eq!(setup.ok(&format!("/orders/{first}")).await?, before);
    assert_eq!(
        setup.ok(&format!("/orders/{last}")).await?["status"],
        "CANCELLED"
    );

    // The rebuilt version equals the one it replaced, row for row.
    let verified = setup
        .run(&["verify", "--left", "1", "--right", "2"])
        .await?;
    assert!(verified.contains("identical"), "{verified}");
    // A second, fresh rebuild (left building) has the same checksums.
    let again = setup.run(&["rebuild", "--plain", "--no-promote"]).await?;
    assert!(again.contains("version 3: built"), "{again}");
    let (two, three) = (
        setup.run(&["checksum", "--version", "2"]).await?,
        setup.run(&["checksum", "--version", "3"]).await?,
    );
    assert_eq!(sums(&two), sums(&three), "{two}\n{three}");
    assert_eq!(sums(&two).len(), 2, "{two}");

    // The live version cannot be dropped; the retired one can, and the API keeps serving.
    let refused = setup.eventmart(&["drop", "2"])?.output().await?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("is live"),
        "{refused:?}"
    );
    setup.run(&["drop", "1"]).await?;
    setup.run(&["drop", "3"]).await?;
    assert_eq!(setup.ok(&format!("/orders/{first}")).await?, before);
    let list = setup.run(&["list"]).await?;
    assert!(list.contains("dropped"), "{list}");
    Ok(())
}

on_both_engines!(an_interrupted_rebuild_resumes_and_the_promoted_version_matches_the_live_one);
