//! Real parts for integration tests: a Tansu broker on a random port, a fresh SQLite or
//! PostgreSQL database, unique topic names, and polling with a deadline; and, built from
//! them, a [`TestComponent`] (a binary running against all of these) and [`schemathesis`].
//! For handlers' unit tests, [`apply_in_order`] feeds events as the consumer would.
//!
//! Nothing here is a mock. The broker is the `tansu` binary (0.6.0, installed by
//! `scripts/test`); PostgreSQL is the server at `EVENTMART_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). A test that cannot reach either fails.

mod apply;
mod component;
mod served;

use std::future::Future;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

use crate::db::Engine;

pub use self::apply::apply_in_order;
pub use self::component::{TestComponent, schemathesis};
pub use self::served::{Reads, ServedQueries};

/// Where the PostgreSQL test databases are created.
pub fn postgres_admin_url() -> String {
    std::env::var("EVENTMART_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A free TCP port on 127.0.0.1 (bound, then released for the caller to use), below the
/// kernel's ephemeral range (32768 and up on Linux): a port from that range, released, can
/// be taken as the source port of any outgoing connection (a Kafka or database client)
/// before the process it was meant for binds it.
pub fn free_port() -> anyhow::Result<u16> {
    const LOW: u32 = 10_000;
    const HIGH: u32 = 32_000;
    // Spread over the range by a fresh random number each try, so that parallel tests
    // rarely try the same port.
    for _ in 0..200 {
        let draw = uuid::Uuid::new_v4().as_u128() as u32;
        let port = u16::try_from(LOW + draw % (HIGH - LOW)).unwrap_or(20_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A short unique prefix (`t1a2b3c4d.`) that gives a test its own set of topics.
pub fn unique_prefix() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Polls `check` until it yields `Some`, or fails naming `what` once `deadline` has passed.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= until {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// A Tansu broker on SQLite in a temporary folder, stopped when dropped.
#[derive(Debug)]
pub struct TestBroker {
    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub bootstrap: String,
    child: tokio::sync::Mutex<Option<Child>>,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker and waits until it answers metadata requests.
    pub async fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let broker = Self {
            bootstrap: format!("127.0.0.1:{port}"),
            child: tokio::sync::Mutex::new(None),
            port,
            dir,
        };
        broker.spawn().await?;
        Ok(broker)
    }

    /// The folder holding the broker's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the broker with SIGKILL (as a crash would), then starts it again on the same
    /// port and data, and waits until it answers.
    pub async fn restart(&self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn().await
    }

    /// Kills the broker with SIGKILL and waits for it to be gone.
    pub async fn kill(&self) {
        if let Some(mut child) = self.child.lock().await.take() {
            let _ = child.kill().await;
        }
    }

    async fn spawn(&self) -> anyhow::Result<()> {
        let url = format!("tcp://{}", self.bootstrap);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("broker.log"))?;
        let child = Command::new("tansu")
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            // Tansu reads a sqlite:// path relative to its working directory.
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context(
                "starting `tansu broker` (is tansu 0.6.0 installed? scripts/test installs it)",
            )?;
        *self.child.lock().await = Some(child);
        let port = self.port;
        wait_for(
            "the broker to listen",
            Duration::from_secs(30),
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
            },
        )
        .await?;
        crate::kafka::wait_for_broker(&self.bootstrap, &[], Duration::from_secs(30)).await?;
        index_broker_headers(&self.dir.path().join("broker.db")).await
    }
}

/// Adds the index the local broker's SQLite storage lacks on record headers. Without it every
/// header lookup scans the whole table, so reading a topic slows down with its size until a
/// fetch outlasts the consumer's session. `scripts/up` adds the same index.
async fn index_broker_headers(broker_db: &Path) -> anyhow::Result<()> {
    let url = format!("sqlite://{}", broker_db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .with_context(|| format!("opening the broker's database {}", broker_db.display()))?;
    sqlx::query(
        "CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}

/// A fresh, empty database for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// The `DATABASE_URL` to hand to the component under test.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Creates an empty database on `engine`: a SQLite file in a temporary folder, or a new
    /// PostgreSQL database named `em_test_<random>` (left behind for inspection; the test
    /// script drops old ones).
    pub async fn create(engine: Engine) -> anyhow::Result<Self> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Ok(Self {
                    url,
                    _dir: Some(dir),
                })
            }
            Engine::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("em_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {admin}"))?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                let base = admin
                    .rsplit_once('/')
                    .map_or(admin.as_str(), |(base, _)| base);
                Ok(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                })
            }
        }
    }
}

/// The path of one of this workspace's binaries or examples, built next to the running test
/// (`scripts/test` builds binaries before running tests; building tests builds examples).
pub fn binary(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test>-<hash> → target/<profile>/<name> or …/examples/<name>;
    // a tool in target/<profile> finds its siblings.
    let exe_dir = exe.parent().context("executable has no folder")?;
    let profile_dir = exe_dir
        .parent()
        .context("test executable has no target folder")?;
    [
        profile_dir.join(name),
        profile_dir.join("examples").join(name),
        exe_dir.join(name),
    ]
    .into_iter()
    .find(|path| path.exists())
    .with_context(|| {
        format!(
            "{name} is not built in {}: run cargo build --bins --examples",
            profile_dir.display()
        )
    })
}

/// One of this workspace's binaries running as a real process, killed when dropped. Its
/// output goes to a log file that [`TestProcess::log`] reads back for failure messages.
#[derive(Debug)]
pub struct TestProcess {
    name: String,
    child: Option<Child>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TestProcess {
    /// Starts binary `name` with `args` and extra environment `envs`.
    pub fn spawn(name: &str, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(binary(name)?);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
            _dir: dir,
        })
    }

    /// Everything the process has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Sends SIGTERM and waits up to `deadline` for the process to exit, returning its status.
    pub async fn terminate(
        &mut self,
        deadline: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let child = self
            .child
            .as_mut()
            .context("the process was already stopped")?;
        let pid = child.id().context("the process has already exited")?;
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !sent.success() {
            bail!("could not signal {} (pid {pid})", self.name);
        }
        match tokio::time::timeout(deadline, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "{} still runs {deadline:?} after SIGTERM:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// Whether the process has exited with success; `false` while it runs; an error (with its
    /// log) if it failed.
    pub fn exited_successfully(&mut self) -> anyhow::Result<bool> {
        let Some(child) = self.child.as_mut() else {
            return Ok(false);
        };
        match child.try_wait()? {
            None => Ok(false),
            Some(status) if status.success() => Ok(true),
            Some(status) => bail!("{} exited with {status}:\n{}", self.name, self.log()),
        }
    }

    /// Waits until `url` answers with a success status, failing with the process's log if
    /// it does not within `deadline` or the process exits.
    pub async fn wait_http_ok(&mut self, url: &str, deadline: Duration) -> anyhow::Result<()> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .map(Child::try_wait)
                .transpose()?
                .flatten()
            {
                bail!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if http_get_ok(url).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                bail!(
                    "{} not ready at {url} after {deadline:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A minimal HTTP/1.1 GET on loopback, true on a 2xx answer (no client library needed).
async fn http_get_ok(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut stream) = tokio::net::TcpStream::connect(authority).await else {
        return false;
    };
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 2")
}

/// The schema registry binary on a random port over a fresh SQLite database.
#[derive(Debug)]
pub struct TestRegistry {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The running process.
    pub process: TestProcess,
    listen: String,
    db: TestDatabase,
}

impl TestRegistry {
    /// Starts it and waits until it is ready.
    pub async fn start() -> anyhow::Result<Self> {
        let db = TestDatabase::create(Engine::Sqlite).await?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let process = Self::spawn(&listen, &db.url)?;
        let mut registry = Self {
            url: format!("http://{listen}"),
            process,
            listen,
            db,
        };
        registry.wait_ready().await?;
        Ok(registry)
    }

    fn spawn(listen: &str, database: &str) -> anyhow::Result<TestProcess> {
        TestProcess::spawn(
            "schema-registry",
            &[],
            &[
                ("SCHEMA_REGISTRY_LISTEN", listen),
                ("DATABASE_URL", database),
            ],
        )
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let ready = format!("{}/health/ready", self.url);
        self.process
            .wait_http_ok(&ready, Duration::from_secs(30))
            .await
    }

    /// Kills it, as an outage would.
    pub async fn kill(&mut self) {
        self.process.kill().await;
    }

    /// Starts it again on the same port and database, and waits until it is ready.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        self.process.kill().await;
        self.process = Self::spawn(&self.listen, &self.db.url)?;
        self.wait_ready().await
    }
}

/// Given/when/then for a [`Decider`](crate::decider::Decider):
///
/// ```ignore
/// Scenario::with(Inventory::default())
///     .given([restocked(sku, 5)])
///     .when(Reserve { sku, quantity: 6 })
///     .then_expect_error(InventoryError::OutOfStock { .. });
/// ```
#[derive(Debug)]
pub struct Scenario<D: crate::decider::Decider> {
    decider: D,
    state: D::State,
}

impl<D: crate::decider::Decider> Scenario<D> {
    /// A scenario for `decider`, starting from the empty state.
    pub fn with(decider: D) -> Self {
        Self {
            decider,
            state: D::State::default(),
        }
    }

    /// These events already happened.
    pub fn given(mut self, events: impl IntoIterator<Item = D::Event>) -> Self {
        for event in events {
            self.state = self.decider.evolve(self.state, &event);
        }
        self
    }

    /// This command is decided.
    pub fn when(self, command: D::Command) -> Outcome<D> {
        let result = self.decider.decide(&self.state, &command);
        Outcome { command, result }
    }
}

/// What a [`Scenario`]'s command produced.
#[derive(Debug)]
pub struct Outcome<D: crate::decider::Decider> {
    command: D::Command,
    result: Result<Vec<D::Event>, D::Error>,
}

impl<D: crate::decider::Decider> Outcome<D> {
    /// Asserts the command produced exactly `expected`, in order.
    #[track_caller]
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = D::Event>) {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => assert_eq!(events, expected, "events of {:?}", self.command),
            Err(error) => panic!(
                "{:?} was refused with {error:?}; expected {expected:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused with `expected`.
    #[track_caller]
    pub fn then_expect_error(self, expected: D::Error) {
        match self.result {
            Ok(events) => panic!(
                "{:?} produced {events:?}; expected {expected:?}",
                self.command
            ),
            Err(error) => assert_eq!(error, expected, "error of {:?}", self.command),
        }
    }
}

/// What a scenario run by [`on_both_engines!`](crate::on_both_engines) may return: nothing,
/// or a `Result` whose error fails the test.
pub trait ScenarioOutcome {
    /// Fails the test on an error.
    fn check(self);
}

impl ScenarioOutcome for () {
    fn check(self) {}
}

impl<E: std::fmt::Debug> ScenarioOutcome for Result<(), E> {
    #[track_caller]
    fn check(self) {
        if let Err(error) = self {
            panic!("{error:?}");
        }
    }
}

/// Runs each scenario `async fn name(engine: Engine)` twice, as the tests `name::on_sqlite`
/// and `name::on_postgres`, each with its own fresh database to create.
#[macro_export]
macro_rules! on_both_engines {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $crate::testing::ScenarioOutcome::check(
                    super::$scenario($crate::db::Engine::Sqlite).await,
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $crate::testing::ScenarioOutcome::check(
                    super::$scenario($crate::db::Engine::Postgres).await,
                );
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::Scenario;
    use crate::decider::Decider;

    /// A counter that may not go below zero: the smallest decider worth testing.
    #[derive(Debug, Default)]
    struct Counter;

    #[derive(Debug)]
    enum Command {
        Take(u32),
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Event {
        Added(u32),
        Taken(u32),
    }

    impl Decider for Counter {
        type State = u32;
        type Command = Command;
        type Event = Event;
        type Error = String;

        fn decide(&self, state: &u32, command: &Command) -> Result<Vec<Event>, String> {
            match command {
                Command::Take(n) if n > state => Err(format!("only {state} left")),
                Command::Take(n) => Ok(vec![Event::Taken(*n)]),
            }
        }

        fn evolve(&self, state: u32, event: &Event) -> u32 {
            match event {
                Event::Added(n) => state + n,
                Event::Taken(n) => state - n,
            }
        }
    }

    #[test]
    fn taking_what_is_there_is_recorded() {
        Scenario::with(Counter)
            .given([Event::Added(3)])
            .when(Command::Take(2))
            .then_expect_events([Event::Taken(2)]);
    }

    #[test]
    fn taking_more_than_is_there_is_refused() {
        Scenario::with(Counter)
            .given([Event::Added(3), Event::Taken(2)])
            .when(Command::Take(2))
            .then_expect_error("only 1 left".to_owned());
    }

    #[test]
    fn replay_folds_every_event() {
        assert_eq!(Counter.replay(&[Event::Added(5), Event::Taken(1)]), 4);
    }
}

/// Topics as a user sees them from outside: producing JSON the way kcat does, and reading a
/// topic back, decoded.
pub mod topics {
    use std::time::Duration;

    use eventmart_events::codec::RawRecord;
    use eventmart_events::{Codec, Decoded, Envelope, Event, to_json};
    use rdkafka::Offset;
    use rdkafka::TopicPartitionList;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    /// Produces `value` to `topic` with `key` and no headers, as `kcat -P -K:` does.
    pub async fn produce_raw(
        bootstrap: &str,
        topic: &str,
        key: &str,
        value: &[u8],
    ) -> anyhow::Result<()> {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("message.timeout.ms", "30000")
            .create()?;
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("producing to {topic}: {e}"))?;
        Ok(())
    }

    /// Produces `event` as the flat JSON a kcat user writes (envelope fields included), keyed
    /// by its aggregate id.
    pub async fn produce_json(
        bootstrap: &str,
        topic: &str,
        event: &Event,
        envelope: &Envelope,
    ) -> anyhow::Result<()> {
        let value = to_json(event, envelope).to_string();
        produce_raw(bootstrap, topic, &event.aggregate_id(), value.as_bytes()).await
    }

    /// Produces each of `events` (topic, event, envelope) as [`produce_json`] does, through
    /// one idempotent producer (each key's records stay in order), waiting for every delivery:
    /// how a test or benchmark writes thousands of events quickly.
    pub async fn produce_many_json(
        bootstrap: &str,
        events: &[(String, Event, Envelope)],
    ) -> anyhow::Result<()> {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .create()?;
        let encoded: Vec<(&str, String, String)> = events
            .iter()
            .map(|(topic, event, envelope)| {
                (
                    topic.as_str(),
                    event.aggregate_id().to_string(),
                    to_json(event, envelope).to_string(),
                )
            })
            .collect();
        for chunk in encoded.chunks(2000) {
            let sends = chunk.iter().map(|(topic, key, value)| {
                producer.send(
                    FutureRecord::to(topic).key(key).payload(value),
                    Duration::from_secs(60),
                )
            });
            futures::future::try_join_all(sends)
                .await
                .map_err(|(e, _)| anyhow::anyhow!("producing: {e}"))?;
        }
        Ok(())
    }

    /// How long [`read_all`] waits for a topic's first record.
    const FIRST_RECORD: Duration = Duration::from_secs(10);

    /// Every record of `topic` (3 partitions) from the beginning, decoded, read until no
    /// record arrives for `quiet` (the first may take up to 10 s, an empty topic costs that
    /// long); in (partition, offset) order. Records that do not decode are left out.
    pub async fn read_all(
        bootstrap: &str,
        registry: &str,
        topic: &str,
        quiet: Duration,
    ) -> anyhow::Result<Vec<Decoded>> {
        let consumer: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("enable.auto.commit", "false")
            .set("group.id", format!("reader-{}", uuid::Uuid::new_v4()))
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..crate::kafka::TopicLayout::default().partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let codec = Codec::new(registry);
        let mut records = Vec::new();
        // A fresh reader takes a moment to get its first record: wait longer for that one.
        let mut wait = quiet.max(FIRST_RECORD);
        while let Ok(message) = tokio::time::timeout(wait, consumer.recv()).await {
            wait = quiet;
            let message = message?;
            let headers: Vec<(String, Option<Vec<u8>>)> = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            let record = RawRecord::new(
                topic,
                message.partition(),
                message.offset(),
                message.payload(),
            )
            .with_headers(&headers);
            if let Ok(decoded) = codec.decode(&record).await {
                records.push((message.partition(), message.offset(), decoded));
            }
        }
        records.sort_by_key(|(p, o, _)| (*p, *o));
        Ok(records.into_iter().map(|(_, _, d)| d).collect())
    }
}
