//! `POST /subjects/{subject}`: which version of a subject a schema is.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::json;

use crate::helpers::{CENTS, ID, NOTE_WITH_DEFAULT, TestApp, order};

on_both_engines!(looking_up_a_schema_finds_its_version_under_the_subject);

async fn looking_up_a_schema_finds_its_version_under_the_subject(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let second = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    let relaid = r#"{"type":"record","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long"}],"name":"com.example.Order"}"#;
    // when
    let found = app
        .post("/subjects/orders-value", &json!({"schema": relaid}))
        .await?;
    let found_second = app
        .post(
            "/subjects/orders-value",
            &json!({"schema": order(&[ID, CENTS, NOTE_WITH_DEFAULT])}),
        )
        .await?;
    let not_under_it = app
        .post("/subjects/orders-value", &json!({"schema": order(&[ID])}))
        .await?;
    let no_subject = app
        .post("/subjects/audit-value", &json!({"schema": relaid}))
        .await?;
    // then
    assert_eq!(found.body["subject"], "orders-value");
    assert_eq!(found.body["version"], 1);
    assert_eq!(found.body["id"], first);
    let latest_one = app.get("/subjects/orders-value/versions/1").await?;
    assert_eq!(found.body["schema"], latest_one.body["schema"]);
    assert_eq!(found_second.body["version"], 2);
    assert_eq!(found_second.body["id"], second);
    not_under_it.error(404, 40403)?;
    no_subject.error(404, 40401)?;

    // when: its version is soft-deleted
    app.delete("/subjects/orders-value/versions/2").await?;
    let hidden = app
        .post(
            "/subjects/orders-value",
            &json!({"schema": order(&[ID, CENTS, NOTE_WITH_DEFAULT])}),
        )
        .await?;
    let asked_for = app
        .post(
            "/subjects/orders-value?deleted=true",
            &json!({"schema": order(&[ID, CENTS, NOTE_WITH_DEFAULT])}),
        )
        .await?;
    // then
    hidden.error(404, 40403)?;
    assert_eq!(asked_for.body["version"], 2);
    Ok(())
}
