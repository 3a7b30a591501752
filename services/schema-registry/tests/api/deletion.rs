//! Soft deletes first, permanent deletes second, and ids that outlive both.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::json;

use crate::helpers::{CENTS, ID, NOTE_WITH_DEFAULT, TestApp, order};

on_both_engines!(
    a_version_is_soft_deleted_before_it_can_be_deleted_for_good,
    a_subject_is_soft_deleted_before_it_can_be_deleted_for_good,
);

async fn a_version_is_soft_deleted_before_it_can_be_deleted_for_good(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let second = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;

    // when: permanently, too early
    let too_early = app
        .delete("/subjects/orders-value/versions/2?permanent=true")
        .await?;
    // then
    let message = too_early.error(404, 40407)?;
    assert!(
        message.contains("Subject 'orders-value' Version 2 was not deleted first"),
        "{message}"
    );

    // when: softly
    let soft = app.delete("/subjects/orders-value/versions/2").await?;
    // then: hidden unless asked for, and the id still resolves for old messages
    assert_eq!(soft.body, json!(2));
    let live = app.get("/subjects/orders-value/versions").await?;
    let all = app
        .get("/subjects/orders-value/versions?deleted=true")
        .await?;
    assert_eq!(live.body, json!([1]));
    assert_eq!(all.body, json!([1, 2]));
    app.get("/subjects/orders-value/versions/2")
        .await?
        .error(404, 40402)?;
    let deleted = app
        .get("/subjects/orders-value/versions/2?deleted=true")
        .await?;
    assert_eq!(deleted.body["id"], second);
    let latest = app.get("/subjects/orders-value/versions/latest").await?;
    assert_eq!(latest.body["id"], first);
    let by_id = app
        .get(&format!("/schemas/ids/{second}?deleted=true"))
        .await?;
    assert_eq!(by_id.status, 200);
    app.delete("/subjects/orders-value/versions/2")
        .await?
        .error(404, 40406)?;

    // when: permanently
    let permanent = app
        .delete("/subjects/orders-value/versions/2?permanent=true")
        .await?;
    // then
    assert_eq!(permanent.body, json!(2));
    app.get("/subjects/orders-value/versions/2?deleted=true")
        .await?
        .error(404, 40402)?;
    app.get(&format!("/schemas/ids/{second}"))
        .await?
        .error(404, 40403)?;

    // when: the same schema comes back
    let back = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    // then: same id, and the freed version number
    assert_eq!(back, second);
    let versions = app.get("/subjects/orders-value/versions").await?;
    assert_eq!(versions.body, json!([1, 2]));

    // and the errors for what does not exist
    app.delete("/subjects/orders-value/versions/9")
        .await?
        .error(404, 40402)?;
    app.delete("/subjects/audit-value/versions/1")
        .await?
        .error(404, 40401)?;
    app.delete("/subjects/orders-value/versions/zero")
        .await?
        .error(422, 42202)?;
    Ok(())
}

async fn a_subject_is_soft_deleted_before_it_can_be_deleted_for_good(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let first = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let second = app
        .register_ok("orders-value", &order(&[ID, CENTS, NOTE_WITH_DEFAULT]))
        .await?;
    app.register_ok("audit-value", &order(&[ID])).await?;

    // when: permanently, too early
    let too_early = app.delete("/subjects/orders-value?permanent=true").await?;
    // then
    let message = too_early.error(404, 40405)?;
    assert!(
        message.contains("Subject 'orders-value' was not deleted first"),
        "{message}"
    );

    // when: softly
    let soft = app.delete("/subjects/orders-value").await?;
    // then
    assert_eq!(soft.body, json!([1, 2]));
    let live = app.get("/subjects").await?;
    let all = app.get("/subjects?deleted=true").await?;
    assert_eq!(live.body, json!(["audit-value"]));
    assert_eq!(all.body, json!(["audit-value", "orders-value"]));
    app.get("/subjects/orders-value/versions")
        .await?
        .error(404, 40401)?;
    app.get("/subjects/orders-value/versions/latest")
        .await?
        .error(404, 40401)?;
    assert_eq!(app.get(&format!("/schemas/ids/{first}")).await?.status, 200);
    app.delete("/subjects/orders-value")
        .await?
        .error(404, 40404)?;

    // when: permanently
    let permanent = app.delete("/subjects/orders-value?permanent=true").await?;
    // then
    assert_eq!(permanent.body, json!([1, 2]));
    let all = app.get("/subjects?deleted=true").await?;
    assert_eq!(all.body, json!(["audit-value"]));
    app.get(&format!("/schemas/ids/{first}"))
        .await?
        .error(404, 40403)?;
    app.delete("/subjects/orders-value")
        .await?
        .error(404, 40401)?;

    // when: registered again
    let again = app
        .register_ok("orders-value", &order(&[ID, CENTS]))
        .await?;
    let fresh = app
        .register_ok(
            "orders-value",
            &order(&[ID, CENTS, r#"{"name":"n","type":"int","default":0}"#]),
        )
        .await?;
    // then: versions restart, ids are kept, new ids are never reused ones
    assert_eq!(again, first);
    assert_eq!(
        app.get("/subjects/orders-value/versions").await?.body,
        json!([1, 2])
    );
    assert!(fresh > second, "{fresh} reused an id up to {second}");
    Ok(())
}
