//! The Rust types, the catalog and the `.avsc` files under `schemas/` agree and cannot drift.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{Name, ResolvedSchema};
use serde_json::Value as Json;

use super::*;
use crate::codec::to_avro_value;
use crate::envelope::headers;
use crate::event_type::catalog;
use crate::samples;

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas")
}

/// Field paths of a schema: `lines[].unit_price.cents`, named types followed.
fn schema_paths(schema: &Schema) -> BTreeSet<String> {
    fn walk(
        schema: &Schema,
        names: &HashMap<Name, &Schema>,
        prefix: &str,
        out: &mut BTreeSet<String>,
    ) {
        match schema {
            Schema::Record(record) => {
                for field in &record.fields {
                    let path = if prefix.is_empty() {
                        field.name.clone()
                    } else {
                        format!("{prefix}.{}", field.name)
                    };
                    out.insert(path.clone());
                    walk(&field.schema, names, &path, out);
                }
            }
            Schema::Array(array) => walk(&array.items, names, &format!("{prefix}[]"), out),
            Schema::Union(union) => {
                for variant in union.variants() {
                    walk(variant, names, prefix, out);
                }
            }
            Schema::Ref { name } => walk(names[name], names, prefix, out),
            _ => {}
        }
    }
    let resolved = ResolvedSchema::try_from(schema).unwrap();
    let mut out = BTreeSet::new();
    walk(schema, resolved.get_names(), "", &mut out);
    out
}

/// Key paths of a JSON value, in the same notation.
fn json_paths(json: &Json, prefix: &str, out: &mut BTreeSet<String>) {
    match json {
        Json::Object(object) => {
            for (key, value) in object {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                json_paths(value, &path, out);
            }
        }
        Json::Array(items) => {
            for item in items {
                json_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn there_is_one_sample_of_every_event_type_in_catalog_order() {
    let names: Vec<_> = catalog().iter().map(|t| t.name).collect();
    assert_eq!(names.len(), 11);
    assert_eq!(
        samples::full()
            .iter()
            .map(Event::event_type)
            .collect::<Vec<_>>(),
        names
    );
    assert_eq!(
        samples::sparse()
            .iter()
            .map(Event::event_type)
            .collect::<Vec<_>>(),
        names
    );
}

#[test]
fn every_embedded_schema_parses_and_names_its_record_as_the_catalog_says() {
    for event_type in catalog() {
        let Schema::Record(record) = event_type.schema() else {
            panic!("{} is not a record", event_type.name)
        };
        assert_eq!(record.name.fullname(None), event_type.record_name);
        assert_eq!(
            record.name.namespace(),
            Some(format!("eventmart.{}", event_type.topic).as_str())
        );
        let path = schemas_dir().join(event_type.path());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            event_type.avsc,
            "{path:?}"
        );
    }
}

#[test]
fn every_schema_file_has_a_catalog_entry_and_every_entry_a_file() {
    let mut files = BTreeSet::new();
    for topic_dir in std::fs::read_dir(schemas_dir()).unwrap() {
        let topic_dir = topic_dir.unwrap().path();
        if !topic_dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&topic_dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "avsc") {
                let relative = file.strip_prefix(schemas_dir()).unwrap();
                files.insert(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let entries: BTreeSet<String> = catalog().iter().map(|t| t.path()).collect();
    assert_eq!(files, entries);
}

#[test]
fn rust_types_and_schemas_have_the_same_fields() {
    for event in samples::full() {
        let mut produced = BTreeSet::new();
        json_paths(&event.payload_json().unwrap(), "", &mut produced);
        assert_eq!(
            produced,
            schema_paths(event.descriptor().schema()),
            "{}",
            event.event_type()
        );
    }
}

#[test]
fn every_sample_round_trips_through_avro_binary() {
    for event in samples::full().into_iter().chain(samples::sparse()) {
        let schema = event.descriptor().schema();
        let value = to_avro_value(&event).unwrap();
        assert!(value.validate(schema), "{}", event.event_type());
        let datum = crate::codec::write_datum(schema, value.clone()).unwrap();
        let read = GenericDatumReader::builder(schema)
            .build()
            .unwrap()
            .read_value(&mut datum.as_slice())
            .unwrap();
        assert_eq!(read, value);
        let back = Event::from_payload_json(event.descriptor(), crate::codec::avro_to_json(&read))
            .unwrap()
            .unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn serde_writes_an_event_as_its_payload_tagged_with_the_event_type() {
    for event in samples::full() {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event_type"], event.event_type());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}

#[test]
fn no_payload_field_is_named_like_an_envelope_field() {
    for event_type in catalog() {
        for path in schema_paths(event_type.schema()) {
            assert!(
                !headers::ALL.contains(&path.as_str()),
                "{}: {path}",
                event_type.name
            );
        }
    }
}

#[test]
fn every_record_enum_and_field_is_documented_and_optionals_default_to_null() {
    fn check(json: &Json, file: &str) {
        match json {
            Json::Object(object) => {
                let kind = object.get("type").and_then(Json::as_str);
                if matches!(kind, Some("record" | "enum")) {
                    assert!(
                        object.contains_key("doc"),
                        "{file}: {:?} has no doc",
                        object["name"]
                    );
                }
                if let Some(Json::Array(fields)) = object.get("fields") {
                    for field in fields {
                        assert!(
                            field.get("doc").is_some(),
                            "{file}: field {} has no doc",
                            field["name"]
                        );
                        if let Some(Json::Array(union)) = field.get("type") {
                            assert_eq!(union[0], "null", "{file}: {}", field["name"]);
                            assert_eq!(
                                field.get("default"),
                                Some(&Json::Null),
                                "{file}: {}",
                                field["name"]
                            );
                        }
                    }
                }
                object.values().for_each(|v| check(v, file));
            }
            Json::Array(items) => items.iter().for_each(|v| check(v, file)),
            _ => {}
        }
    }
    for event_type in catalog() {
        check(
            &serde_json::from_str(event_type.avsc).unwrap(),
            event_type.name,
        );
    }
}

#[test]
fn helpers_agree_with_the_catalog() {
    for event in samples::full() {
        let event_type = EventType::by_name(event.event_type()).unwrap();
        assert!(std::ptr::eq(event_type, event.descriptor()));
        assert_eq!(
            EventType::by_record_name(event.record_name()).map(|t| t.name),
            Some(event.event_type())
        );
        assert_eq!(event.topic(), event_type.topic);
    }
}

#[test]
fn payments_are_keyed_by_their_order() {
    for event in samples::full()
        .into_iter()
        .filter(|e| e.topic() == Topic::Payments)
    {
        let json = event.payload_json().unwrap();
        assert_eq!(json["order_id"], event.aggregate_id());
    }
}
