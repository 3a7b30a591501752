//! The parts of a read model's OpenAPI 3.0 document that every read model words alike: the
//! body a [`QueryError`](super::QueryError) answers with, the 400/404/503 responses, the
//! `position`, `limit` and `cursor` parameters, paged lists, money, and `/openapi.json`
//! itself. Each builder returns the `serde_json` fragment to place in the document.
//!
//! Not here: a read model's own paths and schemas, written by hand next to its handlers.

use serde_json::{Value, json};

/// A reference to the component schema `name`.
pub fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The `Error` schema: the body of every [`QueryError`](super::QueryError).
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {
                "type": "string",
                "enum": ["invalid", "not_found", "not_caught_up", "unavailable", "internal"],
            },
            "message": { "type": "string" },
            "field": {
                "type": "string",
                "description": "The parameter at fault (400 only).",
            },
            "position": {
                "type": "object",
                "description": "How far the model has got (503 not_caught_up only): the next \
                    offset it will apply, by topic/partition.",
                "additionalProperties": { "type": "integer", "format": "int64" },
            },
        },
    })
}

/// The usual description of the `Invalid` response, for [`invalid_response`].
pub const INVALID_PARAMETER: &str =
    "A parameter is malformed, out of range or unknown; `field` names it.";

/// The `Invalid` response (400) described as `description`, with an example that names
/// `field` and says `message`.
pub fn invalid_response(description: &str, field: &str, message: &str) -> Value {
    error_response(
        description,
        json!({ "error": "invalid", "field": field, "message": message }),
    )
}

/// The `NotFound` response (404) described as `description`, with an example that says
/// `message`.
pub fn not_found_response(description: &str, message: &str) -> Value {
    error_response(
        description,
        json!({ "error": "not_found", "message": message }),
    )
}

/// The `Unavailable` response (503), with its `Retry-After` header; `reader` is what the
/// document calls the read model ("view", "tracker", "model").
pub fn unavailable_response(reader: &str) -> Value {
    let mut response = error_response(
        &format!(
            "`not_caught_up`: the {reader} has not processed the position's events in time; \
             `unavailable`: the database is unreachable. Retry later."
        ),
        json!({
            "error": "not_caught_up",
            "message": "the read model has not caught up with this position …",
        }),
    );
    response["headers"] = json!({ "Retry-After": { "schema": { "type": "integer" } } });
    response
}

/// A response with an `Error` body such as `example`.
fn error_response(description: &str, example: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": {
            "schema": schema_ref("Error"),
            "example": example,
        } },
    })
}

/// The responses of a read: 200 with a body of component schema `schema`, described as
/// `description`; 400 and 503.
pub fn read_responses(description: &str, schema: &str) -> Value {
    json!({
        "200": {
            "description": description,
            "content": { "application/json": { "schema": schema_ref(schema) } },
        },
        "400": { "$ref": "#/components/responses/Invalid" },
        "503": { "$ref": "#/components/responses/Unavailable" },
    })
}

/// The responses of a read of one thing that may not exist: those of [`read_responses`],
/// and 404.
pub fn lookup_responses(description: &str, schema: &str) -> Value {
    let mut responses = read_responses(description, schema);
    responses["404"] = json!({ "$ref": "#/components/responses/NotFound" });
    responses
}

/// The `Position` parameter; `reader` is what the document calls the read model.
pub fn position_parameter(reader: &str) -> Value {
    json!({
        "name": "position",
        "in": "query",
        "required": false,
        "description": format!(
            "The `position` a command answered with: the read waits until the {reader} has \
             processed that command's events, or answers 503 `not_caught_up`."
        ),
        "schema": { "type": "string" },
    })
}

/// The path parameter `name`, a UUID.
pub fn id_parameter(name: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "schema": { "type": "string", "format": "uuid" },
    })
}

/// The `limit` query parameter: how many `items` (capitalised, plural) a page holds, from
/// 1 to `max`, `default` when absent.
pub fn limit_parameter(items: &str, default: u32, max: u32) -> Value {
    json!({
        "name": "limit",
        "in": "query",
        "required": false,
        "description": format!("{items} per page."),
        "schema": { "type": "integer", "minimum": 1, "maximum": max, "default": default },
    })
}

/// The `cursor` query parameter; a cursor is good only with the same values of `same`,
/// the other parameters that choose what is paged.
pub fn cursor_parameter(same: &[&str]) -> Value {
    let also: String = same
        .iter()
        .map(|p| format!(", with the same `{p}`"))
        .collect();
    json!({
        "name": "cursor",
        "in": "query",
        "required": false,
        "description": format!(
            "Where the page starts: the previous page's `next_cursor`, unchanged{also}."
        ),
        "schema": { "type": "string" },
    })
}

/// A page of component schema `item`: `items` and `next_cursor`.
pub fn page_schema(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": { "type": "array", "items": schema_ref(item) },
            "next_cursor": next_cursor_property(),
        },
    })
}

/// The `next_cursor` of a page.
pub fn next_cursor_property() -> Value {
    json!({
        "type": "string",
        "nullable": true,
        "description": "The cursor of the next page; null on the last.",
    })
}

/// The `Money` schema: an amount in minor units and its currency.
pub fn money_schema() -> Value {
    json!({
        "type": "object",
        "required": ["cents", "currency"],
        "properties": {
            "cents": { "type": "integer", "format": "int64" },
            "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
        },
    })
}

/// The `/openapi.json` path: the document itself.
pub fn openapi_path() -> Value {
    json!({
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": { "application/json": { "schema": { "type": "object" } } },
                },
            },
        },
    })
}

/// Panics unless `document` has references and each `$ref` in it points at a part of it: the
/// check a read model's unit tests run on its document.
#[track_caller]
pub fn assert_references_resolve(document: &Value) {
    let targets = references(document);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target.trim_start_matches('#');
        assert!(document.pointer(pointer).is_some(), "{target} resolves");
    }
}

/// Every `$ref` target in `document`.
fn references(document: &Value) -> Vec<String> {
    let mut targets = Vec::new();
    collect_references(document, &mut targets);
    targets
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => collect_references(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::query::QueryError;

    #[test]
    fn the_error_schema_lists_every_code_a_query_error_answers_with() {
        let schema = error_schema();
        let codes = &schema["properties"]["error"]["enum"];
        let errors = [
            QueryError::invalid("limit", "x"),
            QueryError::NotFound("x".into()),
            QueryError::NotCaughtUp {
                waited: Duration::from_secs(1),
                position: BTreeMap::new(),
            },
            QueryError::Unavailable("x".into()),
            QueryError::Internal("x".into()),
        ];
        for error in errors {
            assert!(
                codes.as_array().unwrap().contains(&json!(error.code())),
                "{error:?} in {codes}"
            );
        }
        for field in ["field", "position"] {
            assert!(schema["properties"][field].is_object(), "{field}");
        }
    }

    #[test]
    fn error_responses_have_an_error_body_and_503_says_when_to_retry() {
        let responses = [
            invalid_response(INVALID_PARAMETER, "limit", "limit: …"),
            not_found_response("No such thing.", "no thing …"),
            unavailable_response("view"),
        ];
        for response in &responses {
            assert_eq!(references(response), ["#/components/schemas/Error"]);
        }
        assert_eq!(
            responses[0]["content"]["application/json"]["example"]["field"],
            "limit"
        );
        assert!(responses[2]["headers"]["Retry-After"].is_object());
        assert!(
            responses[2]["description"]
                .as_str()
                .unwrap()
                .contains("the view has not processed")
        );
    }

    #[test]
    fn only_a_lookup_answers_404() {
        let read = read_responses("A page", "Page");
        let lookup = lookup_responses("One", "Thing");
        assert_eq!(
            read.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["200", "400", "503"]
        );
        assert_eq!(
            lookup.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["200", "400", "404", "503"]
        );
        assert_eq!(
            lookup["200"]["content"]["application/json"]["schema"],
            schema_ref("Thing")
        );
    }

    #[test]
    fn a_cursor_names_the_parameters_it_must_be_used_with() {
        let plain = cursor_parameter(&[]);
        assert_eq!(
            plain["description"],
            "Where the page starts: the previous page's `next_cursor`, unchanged."
        );
        let ranked = cursor_parameter(&["by"]);
        assert_eq!(
            ranked["description"],
            "Where the page starts: the previous page's `next_cursor`, unchanged, with the \
             same `by`."
        );
        let limit = limit_parameter("Orders", 20, 100);
        assert_eq!(
            (&limit["description"], &limit["schema"]["maximum"]),
            (&json!("Orders per page."), &json!(100))
        );
    }

    #[test]
    #[should_panic(expected = "#/components/schemas/Missing resolves")]
    fn a_reference_to_nothing_is_caught() {
        let document = json!({
            "components": { "schemas": { "Here": {} } },
            "a": schema_ref("Here"),
            "b": schema_ref("Missing"),
        });
        assert_references_resolve(&document);
    }

    #[test]
    fn references_are_found_at_any_depth() {
        let document = json!({
            "a": { "$ref": "#/x" },
            "b": [{ "c": { "$ref": "#/y" } }, { "$ref": 1 }],
        });
        assert_eq!(references(&document), ["#/x", "#/y"]);
    }
}
