//! Every component as two instances on one PostgreSQL database each: the partitions are
//! spread across them, and the rules that span aggregates hold under their concurrency (one
//! user per email, one product per SKU, no stock sold twice, no user charged past the credit
//! limit). On SQLite a second instance is refused with an error that says why.

use std::time::Duration;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::TestProcess;
use eventmart_system::{Ledger, Settings, StatusCode, System, read_models_agree};
use futures::future::join_all;
use serde_json::{Value, json};

const SAGA: Duration = Duration::from_secs(60);

/// The credit limit of the run: three orders of [`PRICE`] fit, a fourth does not.
const LIMIT: i64 = 10_000;
const PRICE: i64 = 3_000;

/// `POST path` with `body` through each of `bases` in turn, `n` times at once.
async fn at_once(
    system: &System,
    bases: &[String],
    path: &str,
    body: &Value,
    n: usize,
) -> Vec<StatusCode> {
    let posts = (0..n).map(|i| {
        let url = format!("{}{path}", bases[i % bases.len()]);
        async move { system.post_url(&url, body).await.map(|(status, _)| status) }
    });
    join_all(posts)
        .await
        .into_iter()
        .map(|answer| answer.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .collect()
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_every_component_keep_every_rule_on_postgres() -> anyhow::Result<()> {
    let mut settings = Settings::new(Engine::Postgres);
    settings.credit_limit_cents = LIMIT;
    settings.read_models = &["order-view"];
    let system = System::start(settings).await?;
    let mut second = std::collections::BTreeMap::new();
    for name in [
        "users",
        "catalog",
        "inventory",
        "orders",
        "payments",
        "order-view",
    ] {
        second.insert(name, system.add_instance(name).await?);
    }
    for name in second.keys() {
        system.wait_spread(name).await?;
    }
    let both = |name: &str| vec![system.url(name, ""), second[name].clone()];

    // One email, registered through both users instances at once: one user.
    let body = json!({"email": "twice@example.com", "name": "Twice"});
    let statuses = at_once(&system, &both("users"), "/users", &body, 8).await;
    assert_eq!(count(&statuses, StatusCode::CREATED), 1, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 7, "{statuses:?}");
    // (each instance counted what it answered, by route and status)
    let mut counted = 0.0;
    for base in both("users") {
        for status in [201, 409] {
            let series = format!(
                "eventmart_http_requests_total{{method=\"POST\",route=\"/users\",status=\"{status}\"}}"
            );
            counted += system.metric(&base, &series).await?;
        }
    }
    assert_eq!(counted, 8.0);

    // One SKU, created through both catalog instances at once: one product.
    let body = json!({"sku": "TWICE-1", "name": "Twice",
                      "price": {"cents": 100, "currency": "EUR"}});
    let statuses = at_once(&system, &both("catalog"), "/products", &body, 8).await;
    assert_eq!(count(&statuses, StatusCode::CREATED), 1, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 7, "{statuses:?}");

    // Thirty customers after five units, reserved by two inventory instances: five sold.
    let scarce = system.create_product("SCARCE-2", 100).await?;
    system.restock(scarce, 5).await?;
    let mut customers = Vec::new();
    for i in 0..30 {
        customers.push(system.register_user(&format!("c{i}@example.com")).await?);
    }
    let orders = join_all(
        customers
            .iter()
            .map(|user| async { system.place_order(*user, &[(scarce, 1)], None).await }),
    )
    .await;
    let mut ended = Vec::new();
    for order in orders {
        ended.push(system.wait_final(order?, SAGA).await?);
    }
    let confirmed = ended.iter().filter(|o| o["status"] == "CONFIRMED").count();
    assert_eq!(confirmed, 5, "{ended:#?}");
    let stock = system
        .wait_until(
            "inventory",
            &format!("/stock/{scarce}"),
            "5 sold",
            SAGA,
            |s| s["sold"] == 5,
        )
        .await?;
    assert_eq!(
        (stock["available"].as_i64(), stock["reserved"].as_i64()),
        (Some(0), Some(0))
    );

    // Eight orders of one customer, charged by two payments instances at once: as many as
    // the credit limit allows, and no more.
    let big = system.create_product("BIG-1", PRICE).await?;
    system.restock(big, 100).await?;
    let spender = system.register_user("spender@example.com").await?;
    let orders =
        join_all((0..8).map(|_| async { system.place_order(spender, &[(big, 1)], None).await }))
            .await;
    let mut ended = Vec::new();
    for order in orders {
        ended.push(system.wait_final(order?, SAGA).await?);
    }
    let confirmed = ended.iter().filter(|o| o["status"] == "CONFIRMED").count();
    assert_eq!(confirmed as i64, LIMIT / PRICE, "{ended:#?}");
    for order in ended.iter().filter(|o| o["status"] == "CANCELLED") {
        assert_eq!(order["reason"], "payment_declined", "{order}");
    }

    // Every instance took part: each applied events of the partitions it was given.
    for (name, topic) in [
        ("inventory", Topic::Orders),
        ("payments", Topic::Inventory),
        ("orders", Topic::Payments),
        ("order-view", Topic::Orders),
    ] {
        let series = format!(
            "eventmart_events_consumed_total{{topic=\"{}\"}}",
            system.topics.name(topic)
        );
        for base in both(name) {
            let consumed = system.metric(&base, &series).await?;
            assert!(
                consumed > 0.0,
                "{name} at {base} applied nothing of {topic:?}"
            );
        }
    }

    // The read model agrees with the services through either instance.
    read_models_agree(&system, &["order-view"], SAGA).await?;
    for order in &ended {
        let id = order["order_id"].as_str().unwrap_or_default();
        let (status, view) = system
            .get_url(&format!("{}/orders/{id}", second["order-view"]))
            .await?;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert_eq!(view["status"], order["status"], "{view}");
    }
    let ledger = Ledger::read(&system).await?;
    assert!(ledger.violations.0.is_empty(), "{}", ledger.violations);
    Ok(())
}

/// A second instance of a service or a read model on the first one's SQLite file is
/// refused at start, saying what to do instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_one_sqlite_file_is_refused() -> anyhow::Result<()> {
    let mut settings = Settings::new(Engine::Sqlite);
    settings.read_models = &["order-view"];
    let system = System::start(settings).await?;
    for name in ["orders", "order-view"] {
        let url = system.database_url(name).await?;
        let port = eventmart_runtime::testing::free_port()?.to_string();
        let listen = format!("127.0.0.1:{port}");
        let mut process = TestProcess::spawn(
            name,
            &[],
            &[
                ("DATABASE_URL", url.as_str()),
                ("EVENTMART_LISTEN", listen.as_str()),
                (
                    "EVENTMART_BOOTSTRAP_SERVERS",
                    system.broker.bootstrap.as_str(),
                ),
                ("EVENTMART_REGISTRY_URL", system.registry.url.as_str()),
                ("EVENTMART_TOPIC_PREFIX", system.prefix().as_str()),
            ],
        )?;
        let exited = eventmart_runtime::testing::wait_for(
            &format!("a second {name} to give up"),
            Duration::from_secs(30),
            || {
                let done = !matches!(process.exited_successfully(), Ok(false));
                async move { done.then_some(()) }
            },
        )
        .await;
        let log = process.log();
        assert!(exited.is_ok(), "a second {name} still runs:\n{log}");
        assert!(log.contains("serves one instance"), "{name}:\n{log}");
    }
    // The first instances go on serving.
    let user = system.register_user("still@example.com").await?;
    assert!(!user.is_nil());
    let (status, _) = system.get("order-view", "/health/ready").await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

/// The lines of `log` about the group: assignments, revocations, rejoins, waits.
fn group_lines(log: &str) -> String {
    log.lines()
        .filter(|l| {
            ["partitions", "rejoin", "cannot decode", "heartbeat"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many rebalances gave `log`'s instance partitions.
fn assignments(log: &str) -> usize {
    log.matches("partitions assigned").count()
}

/// More than a minute without the schema registry, with two instances in every group of the saga and
/// the second ones restarted in it (they know no schema, so they cannot decode what they are
/// given): they wait, visibly alive, and nobody rejoins its group over them; once the registry
/// is back, every order placed in the outage ends. (The instances are restarted as an
/// operator would; one killed outright may leave the local broker with a partition assigned
/// to nobody, which the watchdog mends with one rejoin: that is not a storm, but it would
/// blur the count.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_causes_no_rebalance_storm_on_postgres() -> anyhow::Result<()> {
    const GROUPS: [&str; 3] = ["inventory", "orders", "payments"];
    const OUTAGE: Duration = Duration::from_secs(100);
    let mut settings = Settings::new(Engine::Postgres);
    // Orders wait out the outage rather than time out in it.
    settings.order_deadline = Duration::from_secs(300);
    let mut system = System::start(settings).await?;
    let mut second = std::collections::BTreeMap::new();
    for name in GROUPS {
        second.insert(name, system.add_instance(name).await?);
    }
    for name in GROUPS {
        system.wait_spread(name).await?;
    }
    let user = system.register_user("outage@example.com").await?;
    let product = system.create_product("OUTAGE-1", 100).await?;
    system.restock(product, 1_000).await?;
    // Every instance has decoded what it was given, and every schema of the saga is known.
    let warm =
        join_all((0..6).map(|_| async { system.place_order(user, &[(product, 1)], None).await }))
            .await;
    for order in warm {
        system.wait_final(order?, SAGA).await?;
    }
    let mut before = std::collections::BTreeMap::new();
    for name in GROUPS {
        before.insert(name, assignments(&system.log(name).await));
    }

    system.registry.kill().await;
    for name in GROUPS {
        system.restart_instances(name).await?;
    }
    let mut placed = Vec::new();
    for _ in 0..6 {
        placed.push(system.place_order(user, &[(product, 1)], None).await?);
    }
    // The outage itself, in which the restarted instances cannot decode: long enough for
    // their retries to back off to the longest wait (30 s), more than twice the watchdog's
    // patience (12 s): a waiting member must say it is alive through the wait, not only
    // before it.
    tokio::time::sleep(OUTAGE).await;

    for name in GROUPS {
        let series = format!("eventmart_consumer_rejoins_total{{group=\"{name}\"}}");
        for base in [system.url(name, ""), second[name].clone()] {
            let rejoins = system.metric(&base, &series).await?;
            if rejoins > 0.0 {
                let mut logs = vec![("first".to_owned(), system.log(name).await)];
                logs.extend(system.instance_logs(name).await);
                let logs: Vec<String> = logs
                    .iter()
                    .map(|(at, log)| format!("{at}:\n{}", group_lines(log)))
                    .collect();
                panic!("{name} at {base} rejoined its group:\n{}", logs.join("\n"));
            }
        }
        // The restarted instance's leaving and joining again, and nothing more.
        let log = system.log(name).await;
        let rebalances = assignments(&log) - before[name];
        assert!(
            rebalances <= 3,
            "{name}: {rebalances} rebalances in the outage:\n{log}"
        );
    }

    system.registry.start_again().await?;
    for order in placed {
        let ended = system.wait_final(order, SAGA).await?;
        assert_eq!(ended["status"], "CONFIRMED", "{ended}");
    }
    Ok(())
}
