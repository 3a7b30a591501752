//! References: a named type registered under one subject, used by name from another.

use anyhow::Result;
use eventmart_runtime::db::Engine;
use serde_json::{Value, json};

use crate::helpers::TestApp;

on_both_engines!(a_type_registered_under_one_subject_is_referenced_from_another);

const ADDRESS_SUBJECT: &str = "com.example.Address";

fn address(fields: &str) -> String {
    format!(r#"{{"type":"record","name":"Address","namespace":"com.example","fields":[{fields}]}}"#)
}

const CUSTOMER: &str = r#"{"type":"record","name":"Customer","namespace":"com.example","fields":[{"name":"name","type":"string"},{"name":"address","type":"com.example.Address"}]}"#;

fn customer(address_version: i64) -> Value {
    json!({
        "schema": CUSTOMER,
        "schemaType": "AVRO",
        "references": [
            {"name": "com.example.Address", "subject": ADDRESS_SUBJECT, "version": address_version}
        ],
    })
}

async fn a_type_registered_under_one_subject_is_referenced_from_another(
    engine: Engine,
) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    app.register_ok(
        ADDRESS_SUBJECT,
        &address(r#"{"name":"city","type":"string"}"#),
    )
    .await?;

    // when: without the reference, or with one that does not resolve
    let unresolved = app.register("customers-value", CUSTOMER).await?;
    let dangling = app
        .post("/subjects/customers-value/versions", &customer(9))
        .await?;
    // then
    unresolved.error(422, 42201)?;
    let message = dangling.error(422, 42201)?;
    assert!(message.contains("does not exist"), "{message}");

    // when: with it
    let registered = app
        .post("/subjects/customers-value/versions", &customer(1))
        .await?
        .id()?;
    let again = app
        .post("/subjects/customers-value/versions", &customer(1))
        .await?
        .id()?;
    // then: stored by name, served with its references
    assert_eq!(again, registered);
    let expected_references = customer(1)["references"].clone();
    let version = app.get("/subjects/customers-value/versions/1").await?;
    assert_eq!(version.body["references"], expected_references);
    let text = version.body["schema"].as_str().unwrap_or_default();
    assert!(text.contains(r#""type":"com.example.Address""#), "{text}");
    assert!(!text.contains("city"), "{text}");
    let by_id = app.get(&format!("/schemas/ids/{registered}")).await?;
    assert_eq!(by_id.body["references"], expected_references);
    let found = app.post("/subjects/customers-value", &customer(1)).await?;
    assert_eq!(found.body["id"], registered);
    let referenced_by = app
        .get(&format!(
            "/subjects/{ADDRESS_SUBJECT}/versions/1/referencedby"
        ))
        .await?;
    assert_eq!(referenced_by.body, json!([registered]));

    // when: the referenced type is deleted while in use
    let version_deleted = app
        .delete(&format!("/subjects/{ADDRESS_SUBJECT}/versions/1"))
        .await?;
    let subject_deleted = app.delete(&format!("/subjects/{ADDRESS_SUBJECT}")).await?;
    // then
    version_deleted.error(422, 42206)?;
    subject_deleted.error(422, 42206)?;

    // when: the customer moves to a compatible new address, then to an incompatible one
    app.register_ok(
        ADDRESS_SUBJECT,
        &address(r#"{"name":"city","type":"string"},{"name":"zip","type":"string","default":""}"#),
    )
    .await?;
    app.set_level(ADDRESS_SUBJECT, "NONE").await?;
    app.register_ok(ADDRESS_SUBJECT, &address(r#"{"name":"city","type":"int"}"#))
        .await?;
    let compatible = app
        .post("/subjects/customers-value/versions", &customer(2))
        .await?
        .id()?;
    let incompatible = app
        .post("/subjects/customers-value/versions", &customer(3))
        .await?;
    // then: the same text with other references is another schema; checks see through them
    assert_ne!(compatible, registered);
    let message = incompatible.error(409, 409)?;
    assert!(message.contains("field 'address'"), "{message}");
    assert!(message.contains("field 'city'"), "{message}");
    let versions = app.get("/subjects/customers-value/versions").await?;
    assert_eq!(versions.body, json!([1, 2]));
    Ok(())
}
