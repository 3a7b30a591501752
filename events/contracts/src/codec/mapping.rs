//! Between the natural JSON shape of a payload and Avro values, guided by the schema.
//!
//! The natural shape is what a person types: records as objects, optional fields (`["null", T]`)
//! as a plain value, `null` or absent, enums as their symbol, timestamps as RFC 3339 strings or
//! integer epoch milliseconds, ints and longs as JSON integers. [`json_to_avro`] checks a value
//! against the schema as it goes and names the first offending field by its path
//! (`lines[1].unit_price.cents`); [`avro_to_json`] is its inverse for values that fit.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamespaceRef, RecordSchema, ResolvedSchema, UnionSchema};
use apache_avro::types::Value;
use serde_json::{Map, Value as Json};

use super::error::FieldError;
use crate::timestamp;

/// Maps `json` to an Avro value of `schema`, or names the first field that does not fit.
pub(crate) fn json_to_avro(schema: &Schema, json: &Json) -> Result<Value, FieldError> {
    let resolved = ResolvedSchema::try_from(schema)
        .map_err(|e| FieldError::new("", format!("the schema cannot be resolved: {e}")))?;
    Mapper {
        names: resolved.get_names(),
    }
    .map(schema, json, None, "")
}

/// The natural JSON form of an Avro value (one read with, or resolved to, our schemas).
pub(crate) fn avro_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Long(n) => Json::from(*n),
        Value::Float(x) => Json::from(f64::from(*x)),
        Value::Double(x) => Json::from(*x),
        Value::String(s) | Value::Enum(_, s) => Json::String(s.clone()),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Union(_, inner) => avro_to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(avro_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        Value::TimestampMillis(ms) => match timestamp::from_millis(*ms) {
            Some(at) => Json::String(timestamp::to_rfc3339(&at)),
            None => Json::from(*ms),
        },
        Value::Bytes(bytes) | Value::Fixed(_, bytes) => Json::from(bytes.clone()),
        // Our schemas use none of the other logical types; a value resolved to them has none.
        _ => Json::Null,
    }
}

struct Mapper<'s> {
    names: &'s HashMap<Name, &'s Schema>,
}

impl Mapper<'_> {
    fn map(
        &self,
        schema: &Schema,
        json: &Json,
        namespace: NamespaceRef<'_>,
        path: &str,
    ) -> Result<Value, FieldError> {
        match schema {
            Schema::Null => match json {
                Json::Null => Ok(Value::Null),
                other => Err(expected(path, "null", other)),
            },
            Schema::Boolean => match json {
                Json::Bool(b) => Ok(Value::Boolean(*b)),
                other => Err(expected(path, "true or false", other)),
            },
            Schema::Int => {
                let n = integer(json, path)?;
                i32::try_from(n).map(Value::Int).map_err(|_| {
                    FieldError::new(
                        path,
                        format!(
                            "{n} is out of range for a 32-bit int ({}..={})",
                            i32::MIN,
                            i32::MAX
                        ),
                    )
                })
            }
            Schema::Long => integer(json, path).map(Value::Long),
            Schema::Float | Schema::Double => match json {
                #[allow(clippy::cast_possible_truncation)]
                Json::Number(n) => match (schema, n.as_f64()) {
                    (Schema::Float, Some(x)) => Ok(Value::Float(x as f32)),
                    (_, Some(x)) => Ok(Value::Double(x)),
                    (_, None) => Err(expected(path, "a number", json)),
                },
                other => Err(expected(path, "a number", other)),
            },
            Schema::String => match json {
                Json::String(s) => Ok(Value::String(s.clone())),
                other => Err(expected(path, "a string", other)),
            },
            Schema::Uuid(_) => match json {
                Json::String(s) => uuid::Uuid::parse_str(s)
                    .map(Value::Uuid)
                    .map_err(|_| FieldError::new(path, format!("must be a UUID, got {s:?}"))),
                other => Err(expected(path, "a UUID string", other)),
            },
            Schema::Enum(e) => match json {
                Json::String(s) => match e.symbols.iter().position(|symbol| symbol == s) {
                    Some(index) => Ok(Value::Enum(index as u32, s.clone())),
                    None => Err(FieldError::new(
                        path,
                        format!("{s:?} is not one of {}", quoted_list(&e.symbols)),
                    )),
                },
                other => Err(expected(
                    path,
                    &format!("one of {}", quoted_list(&e.symbols)),
                    other,
                )),
            },
            Schema::Array(array) => match json {
                Json::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        self.map(&array.items, item, namespace, &format!("{path}[{i}]"))
                    })
                    .collect::<Result<_, _>>()
                    .map(Value::Array),
                other => Err(expected(path, "an array", other)),
            },
            Schema::Map(map) => match json {
                Json::Object(entries) => entries
                    .iter()
                    .map(|(k, v)| {
                        self.map(&map.types, v, namespace, &child(path, k))
                            .map(|v| (k.clone(), v))
                    })
                    .collect::<Result<_, _>>()
                    .map(Value::Map),
                other => Err(expected(path, "an object", other)),
            },
            Schema::Union(union) => self.union(union, json, namespace, path),
            Schema::Record(record) => match json {
                Json::Object(object) => self.record(record, object, path),
                other => Err(expected(path, "an object", other)),
            },
            Schema::TimestampMillis => match json {
                Json::String(s) => timestamp::parse_rfc3339(s)
                    .map(|at| Value::TimestampMillis(at.timestamp_millis()))
                    .map_err(|e| {
                        FieldError::new(
                            path,
                            format!(
                                "{s:?} is not an RFC 3339 timestamp such as \
                                 \"2024-05-01T12:00:00.000Z\": {e}"
                            ),
                        )
                    }),
                Json::Number(_) => integer(json, path).map(Value::TimestampMillis),
                other => Err(expected(
                    path,
                    "an RFC 3339 timestamp string or integer epoch milliseconds",
                    other,
                )),
            },
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(namespace);
                match self.names.get(full.as_ref()) {
                    Some(named) => self.map(named, json, full.namespace(), path),
                    None => Err(FieldError::new(
                        path,
                        format!(
                            "the schema refers to an undefined type {}",
                            full.fullname(None)
                        ),
                    )),
                }
            }
            other => Err(FieldError::new(
                path,
                format!("the schema type {other:?} is not supported in JSON values"),
            )),
        }
    }

    fn union(
        &self,
        union: &UnionSchema,
        json: &Json,
        namespace: NamespaceRef<'_>,
        path: &str,
    ) -> Result<Value, FieldError> {
        let variants = union.variants();
        let is_null = |s: &&Schema| matches!(s, Schema::Null);
        if json.is_null() {
            return match variants.iter().position(|s| is_null(&s)) {
                Some(i) => Ok(Value::Union(i as u32, Box::new(Value::Null))),
                None => Err(FieldError::new(path, "must not be null")),
            };
        }
        let candidates: Vec<(usize, &Schema)> = variants
            .iter()
            .enumerate()
            .filter(|(_, s)| !is_null(s))
            .collect();
        // The usual `["null", T]`: report T's own error, which names the real problem.
        if let [(i, only)] = candidates.as_slice() {
            return self
                .map(only, json, namespace, path)
                .map(|v| Value::Union(*i as u32, Box::new(v)));
        }
        candidates
            .iter()
            .find_map(|(i, s)| {
                self.map(s, json, namespace, path)
                    .ok()
                    .map(|v| Value::Union(*i as u32, Box::new(v)))
            })
            .ok_or_else(|| {
                FieldError::new(path, "matches none of the types the schema allows here")
            })
    }

    fn record(
        &self,
        record: &RecordSchema,
        object: &Map<String, Json>,
        path: &str,
    ) -> Result<Value, FieldError> {
        if let Some(unknown) = object.keys().find(|k| !record.lookup.contains_key(*k)) {
            let known: Vec<&str> = record.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(FieldError::new(
                &child(path, unknown),
                format!(
                    "unknown field; {} has the fields {}",
                    record.name.name(),
                    known.join(", ")
                ),
            ));
        }
        let namespace = record.name.namespace();
        record
            .fields
            .iter()
            .map(|field| {
                let field_path = child(path, &field.name);
                let value = match (object.get(&field.name), &field.default) {
                    (Some(json), _) => self.map(&field.schema, json, namespace, &field_path)?,
                    (None, Some(default)) => {
                        self.map(&field.schema, default, namespace, &field_path)?
                    }
                    (None, None) => {
                        return Err(FieldError::new(&field_path, "is missing; it is required"));
                    }
                };
                Ok((field.name.clone(), value))
            })
            .collect::<Result<_, _>>()
            .map(Value::Record)
    }
}

/// The path of `name` inside `path`.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A JSON integer (no fraction, no exponent) that fits an `i64`.
fn integer(json: &Json, path: &str) -> Result<i64, FieldError> {
    match json {
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Ok(i),
            (None, Some(u)) => Err(FieldError::new(
                path,
                format!("{u} is out of range for a 64-bit long"),
            )),
            (None, None) => Err(FieldError::new(
                path,
                format!("expected an integer, got {n}; fractions are not allowed"),
            )),
        },
        other => Err(expected(path, "an integer", other)),
    }
}

fn expected(path: &str, what: &str, got: &Json) -> FieldError {
    FieldError::new(path, format!("expected {what}, got {}", describe(got)))
}

fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

fn quoted_list(symbols: &[String]) -> String {
    symbols
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        crate::EventType::by_name("order.created")
            .unwrap()
            .schema()
            .clone()
    }

    fn order(lines: Json) -> Json {
        json!({
            "order_id": "0190c2a8-7a8e-7cc4-9f3c-000000000001",
            "user_id": "0190c2a8-7a8e-7cc4-9f3c-000000000002",
            "lines": lines,
            "total": {"cents": 100, "currency": "EUR"},
            "created_at": 1714564800123i64,
        })
    }

    fn line(quantity: Json) -> Json {
        json!({
            "product_id": "0190c2a8-7a8e-7cc4-9f3c-000000000003",
            "quantity": quantity,
            "unit_price": {"cents": 100, "currency": "EUR"},
        })
    }

    #[test]
    fn a_valid_value_maps_to_a_valid_avro_record() {
        let value = json_to_avro(&schema(), &order(json!([line(json!(1))]))).unwrap();
        assert!(value.validate(&schema()));
    }

    #[test]
    fn errors_name_the_nested_field_by_path() {
        let err =
            json_to_avro(&schema(), &order(json!([line(json!(1)), line(json!(1.5))]))).unwrap_err();
        assert_eq!(err.field, "lines[1].quantity");
        assert!(
            err.reason.contains("fractions are not allowed"),
            "{}",
            err.reason
        );
    }

    #[test]
    fn ints_out_of_range_are_refused() {
        let err =
            json_to_avro(&schema(), &order(json!([line(json!(3_000_000_000i64))]))).unwrap_err();
        assert_eq!(err.field, "lines[0].quantity");
        assert!(err.reason.contains("out of range"), "{}", err.reason);
    }

    #[test]
    fn the_mapping_back_to_json_gives_the_natural_shape() {
        let input = order(json!([line(json!(2))]));
        let value = json_to_avro(&schema(), &input).unwrap();
        let mut expected = input;
        expected["created_at"] = json!("2024-05-01T12:00:00.123Z");
        expected["payment_token"] = Json::Null;
        assert_eq!(avro_to_json(&value), expected);
    }
}
