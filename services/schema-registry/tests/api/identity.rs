//! Global ids: one per canonical schema, shared across subjects, never reused, durable.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::{Value, json};

use crate::helpers::{CENTS, ID, NOTE_WITH_DEFAULT, TestApp, order};

on_both_engines!(
    the_same_schema_twice_gets_the_same_id_and_no_new_version,
    the_same_schema_in_another_subject_gets_the_same_id,
    ids_versions_and_levels_survive_a_restart,
);

async fn the_same_schema_twice_gets_the_same_id_and_no_new_version(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let relaid = r#"{
        "namespace": "com.example",
        "name": "Order",
        "fields": [ {"type": {"type": "string"}, "name": "id"}, {"name": "cents", "type": "long"} ],
        "type": "record"
    }"#;
    // when
    let again = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let relaid = app.register_ok("orders-value", relaid).await?;
    // then
    assert_eq!(again, first);
    assert_eq!(relaid, first);
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1]));
    let by_id = app.get(&format!("/schemas/ids/{first}")).await?;
    let latest = app.get("/subjects/orders-value/versions/latest").await?;
    assert_eq!(by_id.body["schema"], latest.body["schema"]);
    assert!(by_id.body.get("schemaType").is_none(), "{:?}", by_id.body);
    assert!(by_id.body.get("references").is_none(), "{:?}", by_id.body);
    let text = app.get(&format!("/schemas/ids/{first}/schema")).await?;
    let version_text = app.get("/subjects/orders-value/versions/1/schema").await?;
    assert_eq!(text.body["fields"][0], serde_json::from_str::<Value>(ID)?);
    assert_eq!(version_text.body, text.body);
    Ok(())
}

async fn the_same_schema_in_another_subject_gets_the_same_id(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let in_orders = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    // when
    let in_audit = app.register_ok("audit-value", &order(&[ID, CENTS])).await?;
    let different = app
        .register_ok("audit-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    // then
    assert_eq!(in_audit, in_orders);
    assert!(different > in_orders, "{different} after {in_orders}");
    let subjects = app
        .get(&format!("/schemas/ids/{in_orders}/subjects"))
        .await?;
    assert_eq!(subjects.body, json!(["audit-value", "orders-value"]));
    let versions = app
        .get(&format!("/schemas/ids/{in_orders}/versions"))
        .await?;
    assert_eq!(
        versions.body,
        json!([
            {"subject": "audit-value", "version": 1},
            {"subject": "orders-value", "version": 1},
        ])
    );
    let audit = app.get("/subjects/audit-value/versions").await?;
    assert_eq!(audit.body, json!([1, 2]));
    Ok(())
}

async fn ids_versions_and_levels_survive_a_restart(engine: Engine) -> Result<()> {
    // given
    let mut app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let second = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    app.set_level("orders-value", "FULL").await?;
    // when
    app.restart().await?;
    // then
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1, 2]));
    let latest = app.get("/subjects/orders-value/versions/latest").await?;
    assert_eq!(latest.body["id"], second);
    let by_id = app.get(&format!("/schemas/ids/{first}")).await?;
    assert_eq!(by_id.status, 200);
    let level = app.get("/config/orders-value").await?;
    assert_eq!(level.body, json!({"compatibilityLevel": "FULL"}));
    let again = app.register_ok("audit-value", &order(&[ID, CENTS])).await?;
    assert_eq!(again, first);
    let new = app.register_ok("audit-value", &order(&[ID])).await?;
    assert!(new > second, "id {new} was handed out after {second}");
    Ok(())
}
