//! What the registry serves beside Confluent's API, as every process of the project does:
//! liveness, readiness that checks the database, and metrics exported from zero.

use anyhow::{Context, Result};
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::postgres_admin_url;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{ID, NOTE, TestApp, order};

on_both_engines!(
    health_answers_like_every_other_process,
    registrations_are_counted_by_outcome_from_zero,
);

/// Every outcome a registration is counted under.
const OUTCOMES: [&str; 5] = [
    "registered",
    "existing",
    "incompatible",
    "invalid",
    "failed",
];

async fn health_answers_like_every_other_process(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    // when
    let live = app.get("/health/live").await?;
    let ready = app.get("/health/ready").await?;
    let wrong_method = app.post("/metrics", &json!({})).await?;
    // then
    assert_eq!(live.status, 200);
    assert_eq!(live.body, json!({"status": "live"}));
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.body,
        json!({"status": "ready", "checks": {"database": "ok"}})
    );
    wrong_method.error(405, 405)?;
    Ok(())
}

async fn registrations_are_counted_by_outcome_from_zero(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let (content_type, before) = metrics(&app).await?;
    // when
    app.register_ok("orders-value", &order(&[ID])).await?;
    app.register_ok("orders-value", &order(&[ID])).await?;
    app.register("orders-value", &order(&[ID, NOTE]))
        .await?
        .error(409, 409)?;
    app.register("orders-value", r#"{"type":"record"}"#)
        .await?
        .error(422, 42201)?;
    let (_, after) = metrics(&app).await?;
    // then
    assert_eq!(
        content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for outcome in OUTCOMES {
        let series = format!("eventmart_schema_registrations_total{{outcome=\"{outcome}\"}} 0");
        assert!(before.contains(&series), "{series} missing from:\n{before}");
        let count = if outcome == "failed" { 0 } else { 1 };
        let series =
            format!("eventmart_schema_registrations_total{{outcome=\"{outcome}\"}} {count}");
        assert!(after.contains(&series), "{series} missing from:\n{after}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_naming_the_database_once_it_is_gone() -> Result<()> {
    // given
    let app = TestApp::spawn(Engine::Postgres).await?;
    let name = app
        .database_url()
        .rsplit_once('/')
        .map(|(_, name)| name.to_owned())
        .context("a database name in the URL")?;
    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
    // when
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    let ready = app.get("/health/ready").await?;
    // then
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(ready.body["status"], "unavailable");
    assert_ne!(ready.body["checks"]["database"], "ok", "{ready:?}");
    Ok(())
}

/// `GET /metrics`: its content type and text.
async fn metrics(app: &TestApp) -> Result<(Option<String>, String)> {
    let response = app.client.get(app.url("/metrics")).send().await?;
    anyhow::ensure!(response.status().is_success(), "{response:?}");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Ok((content_type, response.text().await?))
}
