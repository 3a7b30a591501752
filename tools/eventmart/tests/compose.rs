//! `docker-compose.yml` cannot be started here (no container engine), so its shape is checked
//! instead: a KRaft Kafka cluster with no ZooKeeper, a schema registry pointed at it, and
//! PostgreSQL with a database per component.

use serde_yaml::Value;

fn compose() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docker-compose.yml");
    let text = std::fs::read_to_string(path).expect("docker-compose.yml is readable");
    let mut value: Value = serde_yaml::from_str(&text).expect("docker-compose.yml is valid YAML");
    value.apply_merge().expect("YAML merge keys resolve");
    value
}

fn env<'a>(service: &'a Value, key: &str) -> Option<&'a str> {
    service["environment"][key].as_str()
}

#[test]
fn kafka_runs_as_a_kraft_quorum_without_zookeeper() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let kafka: Vec<&Value> = services
        .iter()
        .filter(|(name, _)| name.as_str().is_some_and(|n| n.starts_with("kafka-")))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(kafka.len(), 3, "three Kafka nodes");
    assert!(!services.keys().any(|k| k.as_str() == Some("zookeeper")));
    let voters = env(kafka[0], "KAFKA_CONTROLLER_QUORUM_VOTERS").expect("quorum voters");
    let mut ids = Vec::new();
    for node in &kafka {
        assert!(
            node["image"]
                .as_str()
                .expect("image")
                .starts_with("apache/kafka:")
        );
        assert_eq!(env(node, "KAFKA_PROCESS_ROLES"), Some("broker,controller"));
        assert_eq!(env(node, "KAFKA_CONTROLLER_QUORUM_VOTERS"), Some(voters));
        assert_eq!(env(node, "KAFKA_AUTO_CREATE_TOPICS_ENABLE"), Some("false"));
        let id = env(node, "KAFKA_NODE_ID").expect("node id");
        assert!(voters.contains(&format!("{id}@")), "node {id} votes");
        ids.push(id.to_owned());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "node ids are distinct");
}

#[test]
fn the_schema_registry_stores_in_the_kafka_cluster() {
    let compose = compose();
    let registry = &compose["services"]["schema-registry"];
    let bootstrap =
        env(registry, "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS").expect("bootstrap");
    for node in ["kafka-1", "kafka-2", "kafka-3"] {
        assert!(bootstrap.contains(node), "{node} in {bootstrap}");
        assert!(compose["services"][node].is_mapping());
    }
    assert_eq!(
        env(registry, "SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL"),
        Some("BACKWARD")
    );
}

#[test]
fn postgres_gets_one_database_per_component() {
    let compose = compose();
    let postgres = &compose["services"]["postgres"];
    assert!(
        postgres["image"]
            .as_str()
            .expect("image")
            .starts_with("postgres:")
    );
    let mount = postgres["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .find(|v| v.contains("docker-entrypoint-initdb.d"))
        .expect("an init script is mounted");
    let host_path = mount.split(':').next().expect("host path");
    let script =
        std::fs::read_to_string(format!("{}/../../{host_path}", env!("CARGO_MANIFEST_DIR")))
            .expect("init script exists");
    for db in [
        "schema_registry",
        "users",
        "catalog",
        "inventory",
        "orders",
        "payments",
    ] {
        assert!(
            script.contains(&format!("CREATE DATABASE {db};")),
            "database {db}"
        );
    }
}

#[test]
fn each_service_runs_on_its_own_database_and_port_after_provisioning() {
    let compose = compose();
    let services = &compose["services"];
    let mut databases = std::collections::BTreeSet::new();
    for (name, port) in [
        ("users", 8101),
        ("catalog", 8102),
        ("inventory", 8103),
        ("orders", 8104),
        ("payments", 8105),
    ] {
        let service = &services[name];
        let url = env(service, "DATABASE_URL").expect("DATABASE_URL");
        assert!(
            url.ends_with(&format!("@postgres:5432/{name}")),
            "{name}: {url}"
        );
        assert!(databases.insert(url.to_owned()), "{name} shares a database");
        assert_eq!(
            env(service, "EVENTMART_LISTEN"),
            Some(format!("0.0.0.0:{port}").as_str())
        );
        assert!(
            env(service, "EVENTMART_BOOTSTRAP_SERVERS").is_some_and(|b| b.contains("kafka-1")),
            "{name} reaches the Kafka cluster"
        );
        assert_eq!(
            service["depends_on"]["provision"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{name} starts once topics and schemas exist"
        );
    }
}
