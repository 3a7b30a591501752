//! The whole system as real processes, for end-to-end tests and benchmarks: a Tansu broker,
//! the schema registry and the five services, each on a random port with its own fresh
//! database and one topic prefix for the run.
//!
//! - [`System::start`] starts everything and waits until every service is ready.
//! - [`System::kill`] / [`System::restart`] crash and restart one service on the same port
//!   and database, as `kill -9` and a supervisor would; [`System::stop`] stops one as an
//!   operator would.
//! - The shop helpers ([`System::register_user`], [`System::create_product`],
//!   [`System::restock`], [`System::place_order`], …) go through the public HTTP APIs only,
//!   and wait where the system is eventually consistent (a new product reaches inventory's
//!   and orders' replicas through Kafka).
//! - [`Ledger`] reads every service's state back and checks the saga's invariants.
//! - [`faults`] runs a shop's traffic while the system's parts fail; [`flows`] reads how
//!   long each order's saga took.
//!
//! Not here: assertions about particular scenarios (those are the tests in `tests/`).

mod agreement;
pub mod faults;
pub mod flows;
mod invariants;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use eventmart_events::{Topic, Topics};
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, free_port, unique_prefix, wait_for,
};
pub use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

pub use self::agreement::read_models_agree;
pub use self::invariants::{Ledger, Violations};

/// The five services, in start order.
pub const SERVICES: [&str; 5] = ["users", "catalog", "inventory", "orders", "payments"];

/// The read models' query APIs, in start order (each with its projector).
pub const READ_MODELS: [&str; 4] = [
    "order-view",
    "product-availability",
    "sales",
    "saga-tracker",
];

/// How a system is started.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The engine of every service's database.
    pub engine: Engine,
    /// How long an order may stay PENDING (orders' `ORDERS_DEADLINE`).
    pub order_deadline: Duration,
    /// How long a charge takes at the simulated provider.
    pub provider_latency: Duration,
    /// The read models that run too (of [`READ_MODELS`]).
    pub read_models: &'static [&'static str],
    /// How long an event waiting for a fact stays parked (`EVENTMART_PARK_BUDGET`).
    pub park_budget: Duration,
    /// The most a user may owe at once, in cents (payments' `PAYMENTS_CREDIT_LIMIT_CENTS`).
    pub credit_limit_cents: i64,
    /// How long processed event ids and idempotency keys are kept, if not the defaults
    /// (`EVENTMART_DEDUP_RETENTION`, `EVENTMART_IDEMPOTENCY_RETENTION`).
    pub retention: Option<Duration>,
}

impl Settings {
    /// Defaults for tests on `engine`: a 60 s deadline and an instant provider.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            order_deadline: Duration::from_secs(60),
            provider_latency: Duration::ZERO,
            read_models: &[],
            park_budget: Duration::from_secs(600),
            credit_limit_cents: 1_000_000,
            retention: None,
        }
    }
}

/// The components `settings` runs: the services, then the read models if asked for.
fn components(settings: &Settings) -> Vec<&'static str> {
    let mut out = SERVICES.to_vec();
    out.extend(settings.read_models);
    out
}

/// One service: its process while it runs, and its database.
#[derive(Debug)]
struct Running {
    process: Option<TestProcess>,
    database: TestDatabase,
}

/// The running system; every process stops when it is dropped.
#[derive(Debug)]
pub struct System {
    /// The broker.
    pub broker: TestBroker,
    /// The schema registry.
    pub registry: TestRegistry,
    /// The topic names of this run.
    pub topics: Topics,
    prefix: String,
    settings: Settings,
    ports: BTreeMap<&'static str, u16>,
    services: tokio::sync::Mutex<BTreeMap<&'static str, Running>>,
    /// Further instances of components, beside the first: name, port and process.
    extras: tokio::sync::Mutex<Vec<(String, u16, TestProcess)>>,
    http: reqwest::Client,
}

/// An HTTP answer: status and JSON body (`Value::Null` when the body is not JSON).
pub type Answer = (StatusCode, Value);

impl System {
    /// Starts the broker, the registry and the five services, and waits until each is ready.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await?;
        let registry = TestRegistry::start().await?;
        let prefix = unique_prefix();
        let mut ports = BTreeMap::new();
        let mut services = BTreeMap::new();
        let components = components(&settings);
        for &name in &components {
            ports.insert(name, free_port()?);
            let database = TestDatabase::create(settings.engine).await?;
            services.insert(
                name,
                Running {
                    process: None,
                    database,
                },
            );
        }
        let system = Self {
            broker,
            registry,
            topics: Topics::new(&prefix),
            prefix,
            settings,
            ports,
            services: tokio::sync::Mutex::new(services),
            extras: tokio::sync::Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(64)
                .build()?,
        };
        // Start them all, then wait: they provision topics and join groups concurrently.
        for &name in &components {
            system.spawn(name).await?;
        }
        for &name in &components {
            system.wait_ready(name).await?;
        }
        Ok(system)
    }

    /// The `DATABASE_URL` component `name` runs with.
    pub async fn database_url(&self, name: &str) -> anyhow::Result<String> {
        let services = self.services.lock().await;
        let running = services.get(name).context("no such component")?;
        Ok(running.database.url.clone())
    }

    /// Runs the `eventmart` tool with `args` against this system and returns its output;
    /// fails, with the output, unless it exits successfully.
    pub async fn eventmart(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.eventmart_command(args).output().await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            bail!(
                "eventmart {} failed ({}):\n{text}",
                args.join(" "),
                output.status
            );
        }
        Ok(text)
    }

    /// The `eventmart` tool with `args`, set up to run against this system.
    pub fn eventmart_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(
            eventmart_runtime::testing::binary("eventmart").unwrap_or_else(|_| "eventmart".into()),
        );
        command
            .args(args)
            .env("EVENTMART_BOOTSTRAP_SERVERS", &self.broker.bootstrap)
            .env("EVENTMART_REGISTRY_URL", &self.registry.url)
            .env("EVENTMART_TOPIC_PREFIX", &self.prefix)
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        command
    }

    /// The topic prefix of this run.
    pub fn prefix(&self) -> String {
        self.topics
            .name(Topic::Users)
            .trim_end_matches("users")
            .to_owned()
    }

    fn environment(&self, name: &str, database: &str) -> Vec<(String, String)> {
        let mut environment = self.common_environment(name, database);
        if let Some(retention) = self.settings.retention {
            for key in [
                "EVENTMART_DEDUP_RETENTION",
                "EVENTMART_IDEMPOTENCY_RETENTION",
            ] {
                environment.push((key.into(), format!("{}ms", retention.as_millis())));
            }
        }
        environment
    }

    fn common_environment(&self, name: &str, database: &str) -> Vec<(String, String)> {
        vec![
            (
                "EVENTMART_BOOTSTRAP_SERVERS".into(),
                self.broker.bootstrap.clone(),
            ),
            ("EVENTMART_REGISTRY_URL".into(), self.registry.url.clone()),
            ("EVENTMART_TOPIC_PREFIX".into(), self.prefix.clone()),
            ("DATABASE_URL".into(), database.to_owned()),
            (
                "EVENTMART_LISTEN".into(),
                format!("127.0.0.1:{}", self.ports[name]),
            ),
            ("EVENTMART_GRACE".into(), "5s".into()),
            // Read models fetch less eagerly: every fetch costs the local broker, and nine
            // processes polling every 20 ms would keep it busy.
            (
                "EVENTMART_FETCH_WAIT".into(),
                if READ_MODELS.contains(&name) {
                    "100ms"
                } else {
                    "20ms"
                }
                .into(),
            ),
            (
                "ORDERS_DEADLINE".into(),
                format!("{}ms", self.settings.order_deadline.as_millis()),
            ),
            (
                "PAYMENTS_PROVIDER_LATENCY".into(),
                format!("{}ms", self.settings.provider_latency.as_millis()),
            ),
            (
                "EVENTMART_PARK_BUDGET".into(),
                format!("{}ms", self.settings.park_budget.as_millis()),
            ),
            (
                "PAYMENTS_CREDIT_LIMIT_CENTS".into(),
                self.settings.credit_limit_cents.to_string(),
            ),
            ("RUST_LOG".into(), "info".into()),
        ]
    }

    async fn spawn(&self, name: &str) -> anyhow::Result<()> {
        let mut services = self.services.lock().await;
        let running = services.get_mut(name).context("no such service")?;
        let environment = self.environment(name, &running.database.url);
        let envs: Vec<(&str, &str)> = environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        running.process = Some(TestProcess::spawn(name, &[], &envs)?);
        Ok(())
    }

    async fn wait_ready(&self, name: &str) -> anyhow::Result<()> {
        let url = self.url(name, "/health/ready");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            {
                let mut services = self.services.lock().await;
                let running = services.get_mut(name).context("no such service")?;
                let process = running.process.as_mut().context("not running")?;
                if process.exited_successfully()? {
                    bail!("{name} exited:\n{}", process.log());
                }
                if tokio::time::Instant::now() >= deadline {
                    bail!("{name} not ready after 90s:\n{}", process.log());
                }
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts one more instance of component `name` on its own port and the first one's
    /// database (PostgreSQL: a SQLite database serves one instance), in the same consumer
    /// group, and waits until it is ready. Returns its base URL.
    pub async fn add_instance(&self, name: &str) -> anyhow::Result<String> {
        let port = free_port()?;
        let process = self.spawn_instance(name, port).await?;
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/health/ready");
        self.extras
            .lock()
            .await
            .push((name.to_owned(), port, process));
        wait_for(
            &format!("a second {name} to be ready"),
            Duration::from_secs(90),
            || async {
                let response = self.http.get(&ready).send().await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await?;
        Ok(base)
    }

    /// Starts an instance of `name` listening on `port`, on the first one's database.
    async fn spawn_instance(&self, name: &str, port: u16) -> anyhow::Result<TestProcess> {
        let url = self.database_url(name).await?;
        let mut environment = self.environment(name, &url);
        for (key, value) in &mut environment {
            if key == "EVENTMART_LISTEN" {
                *value = format!("127.0.0.1:{port}");
            }
        }
        let envs: Vec<(&str, &str)> = environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        TestProcess::spawn(name, &[], &envs)
    }

    /// Stops the instances of `name` that [`System::add_instance`] started, as an operator
    /// would (they leave their groups), and starts them again on their ports, without
    /// waiting for them to be ready (they may not be: a restarted instance knows no schema
    /// until the registry answers).
    pub async fn restart_instances(&self, name: &str) -> anyhow::Result<()> {
        let mut extras = self.extras.lock().await;
        for (extra, port, process) in extras.iter_mut() {
            if extra.as_str() == name {
                process.terminate(Duration::from_secs(20)).await?;
                *process = self.spawn_instance(name, *port).await?;
            }
        }
        Ok(())
    }

    /// Rows of processed event ids and of idempotency keys, over every component's database
    /// (what pruning keeps bounded).
    pub async fn stored_ids(&self) -> anyhow::Result<(i64, i64)> {
        let urls: Vec<(&'static str, String)> = self
            .services
            .lock()
            .await
            .iter()
            .map(|(name, running)| (*name, running.database.url.clone()))
            .collect();
        let (mut processed, mut keys) = (0, 0);
        for (name, url) in urls {
            let db = eventmart_runtime::db::open_as_is(&url).await?;
            let rows: anyhow::Result<(i64, i64)> = async {
                let p = sqlx::query_scalar("SELECT COUNT(*) FROM consumer_processed")
                    .fetch_one(&db.pool)
                    .await?;
                let k = if SERVICES.contains(&name) {
                    sqlx::query_scalar("SELECT COUNT(*) FROM idempotency_keys")
                        .fetch_one(&db.pool)
                        .await?
                } else {
                    0
                };
                Ok((p, k))
            }
            .await;
            db.pool.close().await;
            let (p, k) = rows?;
            processed += p;
            keys += k;
        }
        Ok((processed, keys))
    }

    /// How many events the components' consumer groups have parked, over every database.
    pub async fn parked(&self) -> anyhow::Result<i64> {
        let urls: Vec<String> = self
            .services
            .lock()
            .await
            .values()
            .map(|running| running.database.url.clone())
            .collect();
        let mut total = 0;
        for url in urls {
            let db = eventmart_runtime::db::open_as_is(&url).await?;
            let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM consumer_parked")
                .fetch_one(&db.pool)
                .await?;
            db.pool.close().await;
            total += parked;
        }
        Ok(total)
    }

    /// The URL of `path` on service `name`.
    pub fn url(&self, name: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[name])
    }

    /// Kills service `name` with SIGKILL, as a crash would.
    pub async fn kill(&self, name: &str) {
        let process = self
            .services
            .lock()
            .await
            .get_mut(name)
            .and_then(|running| running.process.take());
        if let Some(mut process) = process {
            process.kill().await;
        }
    }

    /// Stops service `name` with SIGTERM, as an operator would, and waits until it has exited
    /// (having finished its work in hand and published what it appended).
    pub async fn stop(&self, name: &str) -> anyhow::Result<()> {
        let process = self
            .services
            .lock()
            .await
            .get_mut(name)
            .and_then(|running| running.process.take());
        let mut process = process.with_context(|| format!("{name} is not running"))?;
        let status = process.terminate(Duration::from_secs(30)).await?;
        if !status.success() {
            bail!(
                "{name} exited with {status} after SIGTERM:\n{}",
                process.log()
            );
        }
        Ok(())
    }

    /// Starts service `name` again (after [`System::kill`] or [`System::stop`]) on its port and database, and
    /// waits until it is ready.
    pub async fn restart(&self, name: &str) -> anyhow::Result<()> {
        self.kill(name).await;
        self.spawn(name).await?;
        self.wait_ready(name).await
    }

    /// The log of service `name` so far (empty while it is killed).
    pub async fn log(&self, name: &str) -> String {
        self.services
            .lock()
            .await
            .get(name)
            .and_then(|running| running.process.as_ref().map(TestProcess::log))
            .unwrap_or_default()
    }

    /// What the further instances of `name` ([`System::add_instance`]) have printed so far,
    /// by base URL.
    pub async fn instance_logs(&self, name: &str) -> Vec<(String, String)> {
        self.extras
            .lock()
            .await
            .iter()
            .filter(|(extra, _, _)| extra.as_str() == name)
            .map(|(_, port, process)| (format!("http://127.0.0.1:{port}"), process.log()))
            .collect()
    }

    /// Waits until every instance of `name` owns partitions: its group has been rebalanced
    /// over the instances [`System::add_instance`] started.
    pub async fn wait_spread(&self, name: &str) -> anyhow::Result<()> {
        wait_for(
            &format!("every instance of {name} to own partitions"),
            Duration::from_secs(60),
            || async {
                let mut logs = vec![self.log(name).await];
                logs.extend(self.instance_logs(name).await.into_iter().map(|(_, l)| l));
                logs.iter().all(|log| owns_partitions(log)).then_some(())
            },
        )
        .await
    }

    /// `GET path` on service `name`.
    pub async fn get(&self, name: &str, path: &str) -> anyhow::Result<Answer> {
        let response = self.http.get(self.url(name, path)).send().await?;
        answer(response).await
    }

    /// `POST path` with a JSON `body` on service `name`.
    pub async fn post(&self, name: &str, path: &str, body: &Value) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(self.url(name, path))
            .json(body)
            .send()
            .await?;
        answer(response).await
    }

    /// `GET url`, a full URL (of an instance [`System::add_instance`] started).
    pub async fn get_url(&self, url: &str) -> anyhow::Result<Answer> {
        answer(self.http.get(url).send().await?).await
    }

    /// `POST url` with a JSON `body`, a full URL (of an instance [`System::add_instance`]
    /// started).
    pub async fn post_url(&self, url: &str, body: &Value) -> anyhow::Result<Answer> {
        answer(self.http.post(url).json(body).send().await?).await
    }

    /// The value of the metric series `series` (name and labels, as rendered) at `base`.
    pub async fn metric(&self, base: &str, series: &str) -> anyhow::Result<f64> {
        let text = self
            .http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0.0))
    }

    /// `POST path` with a JSON `body` and an `Idempotency-Key`.
    pub async fn post_with_key(
        &self,
        name: &str,
        path: &str,
        body: &Value,
        key: &str,
    ) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(self.url(name, path))
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await?;
        answer(response).await
    }

    /// `POST path` with a raw body (for malformed-input checks).
    pub async fn post_raw(&self, name: &str, path: &str, body: &str) -> anyhow::Result<Answer> {
        let response = self
            .http
            .post(self.url(name, path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await?;
        answer(response).await
    }

    /// Registers a user; returns its id.
    pub async fn register_user(&self, email: &str) -> anyhow::Result<Uuid> {
        let (status, body) = self
            .post(
                "users",
                "/users",
                &json!({"email": email, "name": "Test User"}),
            )
            .await?;
        expect(status, StatusCode::CREATED, &body, "registering a user")?;
        id(&body, "user_id")
    }

    /// Creates a product at `cents` EUR; returns its id.
    pub async fn create_product(&self, sku: &str, cents: i64) -> anyhow::Result<Uuid> {
        let body = json!({"sku": sku, "name": format!("Product {sku}"),
                          "price": {"cents": cents, "currency": "EUR"}});
        let (status, body) = self.post("catalog", "/products", &body).await?;
        expect(status, StatusCode::CREATED, &body, "creating a product")?;
        id(&body, "product_id")
    }

    /// Restocks `quantity` units of `product`, waiting until inventory has learned of the
    /// product from the catalog topic.
    pub async fn restock(&self, product: Uuid, quantity: i64) -> anyhow::Result<Value> {
        let path = format!("/stock/{product}/restock");
        let body = json!({"quantity": quantity});
        wait_for(
            "inventory to accept a restock",
            Duration::from_secs(30),
            || async {
                match self.post("inventory", &path, &body).await {
                    Ok((StatusCode::OK, body)) => Some(Ok(body)),
                    Ok((StatusCode::NOT_FOUND, _)) | Err(_) => None,
                    Ok((status, body)) => {
                        Some(Err(anyhow::anyhow!("restock answered {status}: {body}")))
                    }
                }
            },
        )
        .await?
    }

    /// Places an order of `lines` (product, quantity) for `user`, waiting until orders has
    /// learned of the user and products; returns the order id.
    pub async fn place_order(
        &self,
        user: Uuid,
        lines: &[(Uuid, i64)],
        payment_token: Option<&str>,
    ) -> anyhow::Result<Uuid> {
        Ok(self.place_order_at(user, lines, payment_token).await?.0)
    }

    /// [`System::place_order`], also returning the command's position token (what a read
    /// model query passes as `position` to read its own write).
    pub async fn place_order_at(
        &self,
        user: Uuid,
        lines: &[(Uuid, i64)],
        payment_token: Option<&str>,
    ) -> anyhow::Result<(Uuid, String)> {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(product, quantity)| json!({"product_id": product, "quantity": quantity}))
            .collect();
        let mut body = json!({"user_id": user, "lines": lines});
        if let Some(token) = payment_token {
            body["payment_token"] = json!(token);
        }
        // One key for every attempt: a retry after a crash or a timeout places one order.
        let key = Uuid::new_v4().to_string();
        let created = wait_for(
            "orders to accept the order",
            Duration::from_secs(120),
            || async {
                match self.post_with_key("orders", "/orders", &body, &key).await {
                    Ok((StatusCode::CREATED, body)) => Some(Ok(body)),
                    Ok((status, _)) if status.is_server_error() => None,
                    Ok((StatusCode::UNPROCESSABLE_ENTITY, answer))
                        if answer["error"]
                            .as_str()
                            .is_some_and(|e| e.starts_with("unknown_")) =>
                    {
                        None
                    }
                    Err(_) => None,
                    Ok((status, body)) => Some(Err(anyhow::anyhow!(
                        "placing an order answered {status}: {body}"
                    ))),
                }
            },
        )
        .await??;
        let position = created["position"]
            .as_str()
            .with_context(|| format!("no position in {created}"))?
            .to_owned();
        Ok((id(&created, "order_id")?, position))
    }

    /// Waits until `order` is CONFIRMED or CANCELLED; returns it as orders shows it.
    pub async fn wait_final(&self, order: Uuid, deadline: Duration) -> anyhow::Result<Value> {
        let path = format!("/orders/{order}");
        wait_for("the order to end", deadline, || async {
            match self.get("orders", &path).await {
                Ok((StatusCode::OK, body)) if body["status"] != "PENDING" => Some(body),
                _ => None,
            }
        })
        .await
    }

    /// Waits until `check` holds for `GET path` on `name`; returns the body.
    pub async fn wait_until(
        &self,
        name: &str,
        path: &str,
        what: &str,
        deadline: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        wait_for(what, deadline, || async {
            match self.get(name, path).await {
                Ok((StatusCode::OK, body)) if check(&body) => Some(body),
                _ => None,
            }
        })
        .await
    }

    /// Every item of a paginated list (`{"items": [...], "next": …}`) on `name`.
    pub async fn all(&self, name: &str, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = match &after {
                None => format!("{path}?limit=500"),
                Some(after) => format!("{path}?limit=500&after={after}"),
            };
            let (status, body) = self.get(name, &page).await?;
            expect(status, StatusCode::OK, &body, &format!("listing {path}"))?;
            let batch = body["items"].as_array().cloned().unwrap_or_default();
            let done = batch.is_empty() || body["next"].is_null();
            items.extend(batch);
            if done {
                return Ok(items);
            }
            after = body["next"].as_str().map(str::to_owned);
        }
    }
}

impl System {
    /// Produces `lines` (one record each, `key:value` when `keyed`) onto `topic` with the
    /// project's kcat wrapper (`scripts/kcat`), as a user would.
    pub async fn kcat_produce(&self, topic: Topic, keyed: bool, lines: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/kcat");
        let topic = self.topics.name(topic);
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(script)
            .args(["-b", &self.broker.bootstrap, "-P", "-t", &topic])
            .stdin(std::process::Stdio::piped());
        if keyed {
            command.arg("-K:");
        }
        let mut child = command.spawn().context("running scripts/kcat")?;
        let mut stdin = child.stdin.take().context("kcat's stdin")?;
        stdin.write_all(lines.as_bytes()).await?;
        drop(stdin);
        let status = child.wait().await?;
        if !status.success() {
            bail!("kcat -P exited with {status}");
        }
        Ok(())
    }
}

impl System {
    /// Every dead letter of `topic` so far (up to where each partition of its DLQ ends now),
    /// as `eventmart dlq list` reads them.
    pub async fn dead_letters(
        &self,
        topic: Topic,
    ) -> anyhow::Result<Vec<eventmart_runtime::dlq::DeadLetter>> {
        let kafka = eventmart_runtime::kafka::client_config(&self.broker.bootstrap, &[]);
        Ok(eventmart_runtime::dlq::list(
            &kafka,
            &self.topics.dlq(topic),
            &eventmart_runtime::dlq::Selection::default(),
        )
        .await?)
    }
}

/// Whether the last rebalance in a component's `log` gave it partitions.
fn owns_partitions(log: &str) -> bool {
    log.lines()
        .rev()
        .find(|l| l.contains("partitions assigned") || l.contains("partitions revoked"))
        .is_some_and(|l| l.contains("partitions assigned") && !l.contains("partitions=[]"))
}

async fn answer(response: reqwest::Response) -> anyhow::Result<Answer> {
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Fails unless `status` is `expected`, showing the body.
pub fn expect(
    status: StatusCode,
    expected: StatusCode,
    body: &Value,
    what: &str,
) -> anyhow::Result<()> {
    if status != expected {
        bail!("{what}: expected {expected}, got {status}: {body}");
    }
    Ok(())
}

/// The UUID in field `field` of `body`.
pub fn id(body: &Value, field: &str) -> anyhow::Result<Uuid> {
    body[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no {field} in {body}"))
}
