//! Several registries on one PostgreSQL database, as several replicas behind one address:
//! registrations through both at once must still give one id per schema and gapless versions.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, ensure};
use eventmart_runtime::db::Engine;
use serde_json::json;
use tokio::task::JoinSet;

use crate::helpers::TestApp;

/// Subjects registered under at once.
const SUBJECTS: usize = 40;

/// A record schema named `name`, distinct from every other name's.
fn record(name: &str) -> String {
    format!(r#"{{"type":"record","name":"{name}","fields":[{{"name":"id","type":"string"}}]}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_give_one_id_per_schema_and_gapless_versions() -> Result<()> {
    // given: two registries on one database, accepting any schema as a next version, so that
    // only the allocation of ids and versions is under test
    let first = TestApp::spawn(Engine::Postgres).await?;
    let second = first.beside().await?;
    let level = first
        .put("/config", &json!({"compatibility": "NONE"}))
        .await?;
    ensure!(level.status == 200, "setting NONE: {level:?}");
    // Per subject: one schema through each instance alone, one through both (the same
    // schema at once), and one schema shared by every subject, also through both.
    let mut registrations = Vec::new();
    for n in 0..SUBJECTS {
        let subject = format!("subject{n}-value");
        for (app, schema) in [
            (&first, record(&format!("First{n}"))),
            (&second, record(&format!("Second{n}"))),
            (&first, record(&format!("Both{n}"))),
            (&second, record(&format!("Both{n}"))),
            (&first, record("Everywhere")),
            (&second, record("Everywhere")),
        ] {
            registrations.push((app.url(&format!("/subjects/{subject}/versions")), schema));
        }
    }
    // when: every registration at once
    let mut requests = JoinSet::new();
    for (url, schema) in registrations {
        let client = first.client.clone();
        requests.spawn(async move {
            let response = client
                .post(&url)
                .header("content-type", "application/vnd.schemaregistry.v1+json")
                .body(json!({ "schema": schema }).to_string())
                .send()
                .await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await?;
            ensure!(status.is_success(), "{url}: {status} {body}");
            let id = body["id"].as_i64().context("no id")?;
            anyhow::Ok((schema, id))
        });
    }
    let mut ids_of: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    while let Some(answer) = requests.join_next().await {
        let (schema, id) = answer??;
        ids_of.entry(schema).or_default().insert(id);
    }
    // then: one id per schema, a different one for each schema
    let mut schema_of: BTreeMap<i64, &str> = BTreeMap::new();
    for (schema, ids) in &ids_of {
        ensure!(ids.len() == 1, "{schema} got ids {ids:?}");
        let id = *ids.first().context("an id")?;
        if let Some(other) = schema_of.insert(id, schema) {
            anyhow::bail!("id {id} went to both {other} and {schema}");
        }
    }
    // and: each subject holds its four schemas as versions 1 to 4, each once
    for n in 0..SUBJECTS {
        let subject = format!("subject{n}-value");
        let versions = first.get(&format!("/subjects/{subject}/versions")).await?;
        assert_eq!(versions.body, json!([1, 2, 3, 4]), "{subject}");
        let mut registered = BTreeSet::new();
        for version in 1..=4 {
            let answer = second
                .get(&format!("/subjects/{subject}/versions/{version}"))
                .await?;
            registered.insert(answer.body["id"].as_i64().context("an id")?);
        }
        let expected: BTreeSet<i64> = [
            format!("First{n}"),
            format!("Second{n}"),
            format!("Both{n}"),
            "Everywhere".to_owned(),
        ]
        .iter()
        .map(|name| ids_of[&record(name)].first().copied().unwrap_or_default())
        .collect();
        assert_eq!(registered, expected, "{subject}");
    }
    Ok(())
}
