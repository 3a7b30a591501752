//! Schema evolution under the subject's compatibility level.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::{Value, json};

use crate::helpers::{CENTS, ID, NOTE, NOTE_WITH_DEFAULT, TestApp, order};

on_both_engines!(
    adding_a_field_with_a_default_makes_a_new_version_under_backward,
    adding_a_field_without_a_default_is_rejected_under_backward,
    changing_a_field_from_string_to_int_is_rejected_under_backward,
    removing_a_field_is_accepted_under_backward_but_rejected_under_forward,
    a_transitive_level_checks_every_earlier_version,
);

async fn adding_a_field_with_a_default_makes_a_new_version_under_backward(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    // when
    let second = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    // then
    assert_ne!(first, second);
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1, 2]));
    let latest = app.get("/subjects/orders-value/versions/latest").await?;
    assert_eq!(latest.body["subject"], "orders-value");
    assert_eq!(latest.body["version"], 2);
    assert_eq!(latest.body["id"], second);
    let schema: Value = serde_json::from_str(latest.body["schema"].as_str().unwrap_or_default())?;
    assert_eq!(schema["fields"][2]["name"], "note");
    assert_eq!(schema["fields"][2]["default"], "");
    let by_number = app.get("/subjects/orders-value/versions/1").await?;
    assert_eq!(by_number.body["id"], first);
    let minus_one = app.get("/subjects/orders-value/versions/-1").await?;
    assert_eq!(minus_one.body["version"], 2);
    Ok(())
}

async fn adding_a_field_without_a_default_is_rejected_under_backward(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    // when
    let answer = app
        .register("orders-value", &order(&[ID, CENTS, NOTE]))
        .await?;
    // then
    let message = answer.error(409, 409)?;
    assert!(message.contains("incompatible"), "{message}");
    assert!(message.contains("'note'"), "{message}");
    assert!(message.contains("no default"), "{message}");
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1]));
    Ok(())
}

async fn changing_a_field_from_string_to_int_is_rejected_under_backward(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    // when
    let answer = app
        .register(
            "orders-value",
            &order(&[r#"{"name":"id","type":"int"}"#, CENTS]),
        )
        .await?;
    // then
    let message = answer.error(409, 409)?;
    assert!(message.contains("field 'id'"), "{message}");
    assert!(
        message.contains("written as string, read as int"),
        "{message}"
    );
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1]));
    Ok(())
}

async fn removing_a_field_is_accepted_under_backward_but_rejected_under_forward(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.set_level("forward-value", "FORWARD").await?;
    for subject in ["backward-value", "forward-value"] {
        app.register_ok(subject, &order(&[ID, CENTS, NOTE])).await?;
    }
    // when
    let backward = app.register("backward-value", &order(&[ID, CENTS])).await?;
    let forward = app.register("forward-value", &order(&[ID, CENTS])).await?;
    // then
    backward.id()?;
    let message = forward.error(409, 409)?;
    assert!(message.contains("FORWARD"), "{message}");
    assert!(message.contains("'note'"), "{message}");
    let backward_versions = app.get("/subjects/backward-value/versions").await?;
    let forward_versions = app.get("/subjects/forward-value/versions").await?;
    assert_eq!(backward_versions.body, json!([1, 2]));
    assert_eq!(forward_versions.body, json!([1]));
    Ok(())
}

async fn a_transitive_level_checks_every_earlier_version(engine: Engine) -> Result<()> {
    // given: v1 lacks `note`, v2 adds it with a default
    let app = TestApp::spawn(engine).await?;
    app.set_level("transitive-value", "BACKWARD_TRANSITIVE")
        .await?;
    for subject in ["latest-only-value", "transitive-value"] {
        app.register_ok(subject, &order(&[ID])).await?;
        app.register_ok(subject, &order(&[ID, NOTE_WITH_DEFAULT]))
            .await?;
    }
    // when: v3 drops the default, so it can read v2's data but not v1's
    let latest_only = app
        .register("latest-only-value", &order(&[ID, NOTE]))
        .await?;
    let transitive = app
        .register("transitive-value", &order(&[ID, NOTE]))
        .await?;
    // then
    latest_only.id()?;
    let message = transitive.error(409, 409)?;
    assert!(message.contains("version 1"), "{message}");
    assert!(!message.contains("version 2"), "{message}");
    Ok(())
}
