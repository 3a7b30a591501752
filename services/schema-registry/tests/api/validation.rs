//! What is refused before anything is stored: invalid schemas, other schema types, bad bodies.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{ID, TestApp, order};

on_both_engines!(
    an_invalid_schema_is_rejected_with_42201,
    only_avro_schemas_are_accepted,
    a_body_that_is_not_json_is_a_400_and_a_missing_field_a_42201,
);

async fn an_invalid_schema_is_rejected_with_42201(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let invalid = [
        "",
        "{not json",
        r#"{"type":"record","name":"Order"}"#,
        r#"{"type":"money"}"#,
        r#"{"type":"record","name":"Order","fields":[{"name":"customer","type":"com.example.Customer"}]}"#,
    ];
    for schema in invalid {
        // when
        let answer = app.register("orders-value", schema).await?;
        // then
        let message = answer.error(422, 42201)?;
        assert!(
            message.starts_with("Invalid schema"),
            "{schema:?}: {message}"
        );
    }
    let subjects = app.get("/subjects").await?;
    assert_eq!(subjects.body, json!([]));
    Ok(())
}

async fn only_avro_schemas_are_accepted(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let explicit = json!({"schema": order(&[ID]), "schemaType": "AVRO"});
    let json_schema = json!({"schema": r#"{"type":"object"}"#, "schemaType": "JSON"});
    let protobuf = json!({"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"});
    // when
    let avro = app
        .post("/subjects/orders-value/versions", &explicit)
        .await?;
    let json = app
        .post("/subjects/json-value/versions", &json_schema)
        .await?;
    let proto = app
        .post("/subjects/proto-value/versions", &protobuf)
        .await?;
    // then
    avro.id()?;
    assert!(json.error(422, 42201)?.contains("JSON is not supported"));
    assert!(
        proto
            .error(422, 42201)?
            .contains("PROTOBUF is not supported")
    );
    let types = app.get("/schemas/types").await?;
    assert_eq!(types.body, json!(["AVRO"]));
    Ok(())
}

async fn a_body_that_is_not_json_is_a_400_and_a_missing_field_a_42201(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let url = app.url("/subjects/orders-value/versions");
    // when
    let truncated = app
        .send(app.client.post(&url).body(r#"{"schema": "#))
        .await?;
    let missing = app
        .post("/subjects/orders-value/versions", &json!({}))
        .await?;
    let wrong_type = app
        .post("/subjects/orders-value/versions", &json!({"schema": 42}))
        .await?;
    let form = app
        .send(
            app.client
                .post(&url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("schema=x"),
        )
        .await?;
    // then
    assert!(truncated.error(400, 400)?.contains("not valid JSON"));
    assert!(
        missing
            .error(422, 42201)?
            .contains("missing field `schema`")
    );
    assert!(wrong_type.error(422, 42201)?.contains("invalid type"));
    form.error(415, 415)?;
    let subjects = app.get("/subjects").await?;
    assert_eq!(subjects.body, json!([]));
    Ok(())
}
