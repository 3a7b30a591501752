//! The real client, `schema_registry_converter`, against the registry: what producers and
//! consumers of this project do.

use anyhow::{Context, Result};
use apache_avro::types::Value;
use eventmart_runtime::db::Engine;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::helpers::{CENTS, ID, TestApp, order};

on_both_engines!(the_converter_encodes_and_decodes_through_the_registry);

async fn the_converter_encodes_and_decodes_through_the_registry(engine: Engine) -> Result<()> {
    // given
    let app = TestApp::spawn(engine).await?;
    let settings = SrSettings::new(app.address.clone());
    let encoder = EasyAvroEncoder::new(settings.clone());
    let decoder = EasyAvroDecoder::new(settings);
    let supplied = SuppliedSchema::new(
        Some("com.example.Order".to_owned()),
        SchemaType::Avro,
        order(&[ID, CENTS]),
    );
    let fields = || {
        vec![
            ("id", Value::String("order-1".to_owned())),
            ("cents", Value::Long(1234)),
        ]
    };

    // when: encoding with the schema registers it under topic-record
    let with_schema = encoder
        .encode(
            fields(),
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema("orders".to_owned(), supplied),
        )
        .await?;
    // then: Confluent's wire format, with the registered id
    let latest = app
        .get("/subjects/orders-com.example.Order/versions/latest")
        .await?;
    let id = latest.body["id"].as_i64().context("no id registered")?;
    assert_eq!(with_schema[0], 0);
    assert_eq!(
        i64::from(u32::from_be_bytes(with_schema[1..5].try_into()?)),
        id
    );

    // when: decoding fetches the schema by id
    let decoded = decoder.decode(Some(&with_schema)).await?;
    // then
    assert_eq!(
        decoded.value,
        Value::Record(
            fields()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect()
        )
    );
    assert_eq!(
        decoded.name.map(|name| name.fullname(None)),
        Some("com.example.Order".to_owned())
    );

    // when: encoding by the latest version of the subject
    let by_latest = encoder
        .encode(
            fields(),
            SubjectNameStrategy::TopicRecordNameStrategy(
                "orders".to_owned(),
                "com.example.Order".to_owned(),
            ),
        )
        .await?;
    // then
    assert_eq!(by_latest, with_schema);
    Ok(())
}
