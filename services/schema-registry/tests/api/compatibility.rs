//! `POST /compatibility/…`: checking a schema without registering it.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::json;

use crate::helpers::{CENTS, ID, NOTE, NOTE_WITH_DEFAULT, TestApp, order};

on_both_engines!(
    the_compatibility_check_answers_with_reasons_and_registers_nothing,
    the_compatibility_check_reports_unknown_subjects_and_versions,
);

async fn the_compatibility_check_answers_with_reasons_and_registers_nothing(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let compatible = json!({"schema": order(&[ID, CENTS, NOTE_WITH_DEFAULT])});
    let incompatible = json!({"schema": order(&[ID, CENTS, NOTE])});
    // when
    let yes = app
        .post(
            "/compatibility/subjects/orders-value/versions/latest",
            &compatible,
        )
        .await?;
    let yes_verbose = app
        .post(
            "/compatibility/subjects/orders-value/versions?verbose=true",
            &compatible,
        )
        .await?;
    let no = app
        .post(
            "/compatibility/subjects/orders-value/versions/1",
            &incompatible,
        )
        .await?;
    let no_verbose = app
        .post(
            "/compatibility/subjects/orders-value/versions?verbose=true",
            &incompatible,
        )
        .await?;
    // then
    assert_eq!(yes.body, json!({"is_compatible": true}));
    assert_eq!(
        yes_verbose.body,
        json!({"is_compatible": true, "messages": []})
    );
    assert_eq!(no.body, json!({"is_compatible": false}));
    assert_eq!(no_verbose.body["is_compatible"], false);
    let messages = no_verbose.body["messages"].to_string();
    assert!(messages.contains("'note'"), "{messages}");
    assert!(messages.contains("version 1"), "{messages}");
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1]));
    Ok(())
}

async fn the_compatibility_check_reports_unknown_subjects_and_versions(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.register_ok("orders-value", &order(&[ID])).await?;
    let body = json!({"schema": order(&[ID, CENTS])});
    // when
    let new_subject = app
        .post("/compatibility/subjects/audit-value/versions", &body)
        .await?;
    let new_subject_latest = app
        .post("/compatibility/subjects/audit-value/versions/latest", &body)
        .await?;
    let unknown_version = app
        .post("/compatibility/subjects/orders-value/versions/7", &body)
        .await?;
    let invalid_version = app
        .post("/compatibility/subjects/orders-value/versions/0", &body)
        .await?;
    let invalid_schema = app
        .post(
            "/compatibility/subjects/orders-value/versions/latest",
            &json!({"schema": "{\"type\":\"money\"}"}),
        )
        .await?;
    // then
    assert_eq!(new_subject.body, json!({"is_compatible": true}));
    new_subject_latest.error(404, 40401)?;
    assert!(
        unknown_version
            .error(404, 40402)?
            .contains("Version 7 not found")
    );
    invalid_version.error(422, 42202)?;
    invalid_schema.error(422, 42201)?;
    Ok(())
}
