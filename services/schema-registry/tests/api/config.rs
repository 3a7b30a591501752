//! Compatibility levels: global, per subject, and falling back to the global one.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::json;

use crate::helpers::{CENTS, ID, TestApp, order};

on_both_engines!(
    the_global_level_defaults_to_backward_and_can_be_changed,
    a_subject_level_overrides_the_global_one_until_deleted,
);

async fn the_global_level_defaults_to_backward_and_can_be_changed(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let initial = app.get("/config").await?;
    // when
    let set = app
        .put("/config", &json!({"compatibility": "FULL"}))
        .await?;
    let invalid = app
        .put("/config", &json!({"compatibility": "SIDEWAYS"}))
        .await?;
    let missing = app.put("/config", &json!({})).await?;
    // then
    assert_eq!(initial.body, json!({"compatibilityLevel": "BACKWARD"}));
    assert_eq!(set.body, json!({"compatibility": "FULL"}));
    let message = invalid.error(422, 42203)?;
    assert!(message.contains("SIDEWAYS"), "{message}");
    missing.error(422, 42203)?;
    let now = app.get("/config").await?;
    assert_eq!(now.body, json!({"compatibilityLevel": "FULL"}));
    Ok(())
}

async fn a_subject_level_overrides_the_global_one_until_deleted(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.put("/config", &json!({"compatibility": "FULL"}))
        .await?;
    // when
    let set = app
        .put("/config/orders-value", &json!({"compatibility": "NONE"}))
        .await?;
    // then: the subject's own level applies, and NONE accepts anything
    assert_eq!(set.body, json!({"compatibility": "NONE"}));
    let own = app.get("/config/orders-value").await?;
    assert_eq!(own.body, json!({"compatibilityLevel": "NONE"}));
    app.register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    app.register_ok("orders-value", &order(&[r#"{"name":"id","type":"int"}"#]))
        .await?;
    let other = app.get("/config/audit-value").await?;
    let message = other.error(404, 40408)?;
    assert!(message.contains("'audit-value'"), "{message}");
    let defaulted = app.get("/config/audit-value?defaultToGlobal=true").await?;
    assert_eq!(defaulted.body, json!({"compatibilityLevel": "FULL"}));

    // when
    let deleted = app.delete("/config/orders-value").await?;
    // then: the global FULL applies again
    assert_eq!(deleted.body, json!({"compatibilityLevel": "NONE"}));
    app.get("/config/orders-value").await?.error(404, 40408)?;
    app.delete("/config/orders-value")
        .await?
        .error(404, 40401)?;
    let breaking = app.register("orders-value", &order(&[ID])).await?;
    breaking.error(409, 409)?;
    Ok(())
}
