//! The HTTP surface itself: media types, encoded subjects, unknown routes.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::helpers::{CENTS, ID, MEDIA_TYPE, TestApp, order};

on_both_engines!(
    fixed_endpoints_answer_like_confluent,
    unknown_routes_and_methods_get_json_errors,
    every_accepted_media_type_registers_a_schema,
    subjects_with_a_slash_arrive_percent_encoded,
    subjects_can_be_listed_by_prefix,
);

async fn fixed_endpoints_answer_like_confluent(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    // when
    let root = app.get("/").await?;
    let mode = app.get("/mode").await?;
    let subject_mode = app.get("/mode/orders-value").await?;
    // then
    assert_eq!(root.body, json!({}));
    assert_eq!(root.content_type.as_deref(), Some(MEDIA_TYPE));
    assert_eq!(mode.body, json!({"mode": "READWRITE"}));
    assert_eq!(subject_mode.body, json!({"mode": "READWRITE"}));
    Ok(())
}

async fn unknown_routes_and_methods_get_json_errors(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    // when
    let unknown = app.get("/nowhere").await?;
    let wrong_method = app.put("/subjects", &json!({})).await?;
    let bad_id = app.get("/schemas/ids/abc").await?;
    let missing_id = app.get("/schemas/ids/999").await?;
    // then
    unknown.error(404, 404)?;
    assert_eq!(unknown.content_type.as_deref(), Some(MEDIA_TYPE));
    wrong_method.error(405, 405)?;
    bad_id.error(404, 40403)?;
    assert_eq!(missing_id.error(404, 40403)?, "Schema 999 not found");
    Ok(())
}

async fn every_accepted_media_type_registers_a_schema(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let url = app.url("/subjects/orders-value/versions");
    let body = json!({"schema": order(&[ID, CENTS])}).to_string();
    let mut ids = Vec::new();
    for media_type in [
        Some(MEDIA_TYPE),
        Some("application/vnd.schemaregistry+json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        let mut request = app.client.post(&url).body(body.clone());
        if let Some(media_type) = media_type {
            request = request.header(CONTENT_TYPE, media_type);
        }
        // when
        let answer = app.send(request).await?;
        // then
        assert_eq!(answer.content_type.as_deref(), Some(MEDIA_TYPE));
        ids.push(answer.id()?);
    }
    assert!(ids.windows(2).all(|pair| pair[0] == pair[1]), "{ids:?}");
    Ok(())
}

async fn subjects_with_a_slash_arrive_percent_encoded(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    // when
    let id = app
        .register_ok("shop%2Forders-value", &order(&[ID, CENTS]))
        .await?;
    // then
    let subjects = app.get("/subjects").await?;
    assert_eq!(subjects.body, json!(["shop/orders-value"]));
    let version = app.get("/subjects/shop%2Forders-value/versions/1").await?;
    assert_eq!(version.body["subject"], "shop/orders-value");
    assert_eq!(version.body["id"], id);
    let found = app
        .post(
            "/subjects/shop%2Forders-value",
            &json!({"schema": order(&[ID, CENTS])}),
        )
        .await?;
    assert_eq!(found.body["subject"], "shop/orders-value");
    let deleted = app.delete("/subjects/shop%2Forders-value").await?;
    assert_eq!(deleted.body, json!([1]));
    Ok(())
}

async fn subjects_can_be_listed_by_prefix(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    for subject in ["shop.orders-value", "audit-value", "shop.payments-value"] {
        app.register_ok(subject, &order(&[ID])).await?;
    }
    // when
    let all = app.get("/subjects").await?;
    let shop = app.get("/subjects?subjectPrefix=shop.").await?;
    // then
    assert_eq!(
        all.body,
        json!(["audit-value", "shop.orders-value", "shop.payments-value"])
    );
    assert_eq!(
        shop.body,
        json!(["shop.orders-value", "shop.payments-value"])
    );
    Ok(())
}
