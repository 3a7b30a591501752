//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use eventmart_runtime::query::openapi;
use serde_json::{Value, json};

use super::page::{DEFAULT_LIMIT, MAX_LIMIT, Sort};
use super::sagas::{DEFAULT_STUCK_AFTER, Listing};
use crate::saga::{Service, State, Step};

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub(super) fn document() -> Value {
    let states: Vec<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    let steps: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
    let services: Vec<&str> = Service::ALL.iter().map(|s| s.as_str()).collect();
    let stuck_after = humantime::format_duration(DEFAULT_STUCK_AFTER).to_string();
    let sorts: Vec<&str> = Sort::ALL.iter().map(|s| s.as_str()).collect();
    let mut cursor = openapi::cursor_parameter(&["state", "older_than"]);
    cursor["description"] = json!(format!(
        "{} Not with sort=quiet.",
        cursor["description"].as_str().unwrap_or_default()
    ));
    let mut page = openapi::page_schema("SagaSummary");
    page["properties"]["items"]["description"] = json!(
        "By correlation id (sort=started), or oldest last event first, then by correlation id \
         (sort=quiet)."
    );
    page["properties"]["next_cursor"]["description"] =
        json!("The cursor of the next page; null on the last, and always with sort=quiet.");
    page["properties"]["truncated"] = json!({
        "type": "boolean",
        "description": "Whether more sagas match than this page holds: with sort=quiet, \
            which is one page, those left out; walk them all with sort=started.",
    });
    page["required"] = json!(["items", "next_cursor", "truncated"]);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "eventmart saga tracker",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every order saga as an operator sees it: its steps from the \
                orders, inventory and payments topics, where it stands, which service it \
                waits on, and the sagas stuck in a step. A read that carries the `position` \
                a command answered with waits until the tracker has processed that \
                command's events.",
        },
        "paths": {
            "/sagas/{correlation_id}": {
                "get": {
                    "operationId": "getSaga",
                    "summary": "One saga, where it stands, with its steps",
                    "parameters": [
                        { "$ref": "#/components/parameters/CorrelationId" },
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::lookup_responses("The saga", "Saga"),
                },
            },
            "/sagas": {
                "get": {
                    "operationId": "listSagas",
                    "summary": "Sagas in a state, or stuck, a page at a time, or the \
                        longest quiet first",
                    "description": "A walk through the pages (a first page, then each \
                        `next_cursor` in turn) lists sagas by correlation id, which never \
                        changes: every saga that matches from the first page to the last is \
                        listed exactly once, however its steps change meanwhile. The walk \
                        measures `older_than` and `stuck` from the time of its first page. \
                        Each saga shows as it is when its page is read: one that stops \
                        matching (a new step changed its state, or made it recent) before \
                        then is left out, and one started during the walk is listed if it \
                        matches (the services start sagas with ever later correlation ids, \
                        so at the end). The longest quiet first (`sort=quiet`) is one page \
                        with no cursor: sagas move in that order with every step, so pages of \
                        it could list a saga twice.",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "required": false,
                            "description": format!(
                                "Only sagas in this state; `stuck`: running or \
                                 compensating sagas whose last event is older than \
                                 `older_than` ({stuck_after} unless given). Every saga if \
                                 absent."
                            ),
                            "schema": { "type": "string", "enum": Listing::names() },
                        },
                        {
                            "name": "older_than",
                            "in": "query",
                            "required": false,
                            "description": "Only sagas whose last event happened longer ago \
                                than this, measured from the time of the query: a duration \
                                such as `30s`, `5m` or `1h 30m`.",
                            "schema": { "type": "string", "example": "5m" },
                        },
                        {
                            "name": "sort",
                            "in": "query",
                            "required": false,
                            "description": "started: by correlation id (for sagas the \
                                services start, the order they started in), a page at a \
                                time; quiet: the longest quiet first (oldest last event), \
                                one page only.",
                            "schema": { "type": "string", "enum": sorts, "default": "started" },
                        },
                        openapi::limit_parameter("Sagas", DEFAULT_LIMIT, MAX_LIMIT),
                        cursor,
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::read_responses("A page of sagas", "SagaPage"),
                },
            },
            "/openapi.json": openapi::openapi_path(),
        },
        "components": {
            "parameters": {
                "CorrelationId": {
                    "name": "correlation_id",
                    "in": "path",
                    "required": true,
                    "description": "The saga: the correlation id its events carry (that of \
                        its order.created, whose own event id it is).",
                    "schema": { "type": "string", "format": "uuid" },
                },
                "Position": openapi::position_parameter("tracker"),
            },
            "schemas": {
                "SagaStep": {
                    "type": "object",
                    "required": [
                        "event_type", "step", "service", "event_id", "causation_id",
                        "order_id", "occurred_at",
                    ],
                    "properties": {
                        "event_type": { "type": "string", "example": "inventory.updated" },
                        "step": {
                            "type": "string",
                            "enum": steps,
                            "description": "What happened: CREATED, CONFIRMED, CANCELLED \
                                (orders); RESERVED, REJECTED, RELEASED, SOLD (inventory); \
                                COMPLETED, FAILED, REFUNDED (payments).",
                        },
                        "service": { "type": "string", "enum": services },
                        "event_id": { "type": "string", "format": "uuid" },
                        "causation_id": {
                            "type": "string",
                            "format": "uuid",
                            "nullable": true,
                            "description": "The event that caused this one.",
                        },
                        "order_id": { "type": "string", "format": "uuid" },
                        "occurred_at": { "type": "string", "format": "date-time" },
                    },
                },
                "SagaSummary": {
                    "type": "object",
                    "required": [
                        "correlation_id", "order_id", "state", "step", "waiting_for",
                        "started_at", "last_event_at", "step_count",
                    ],
                    "properties": {
                        "correlation_id": { "type": "string", "format": "uuid" },
                        "order_id": { "type": "string", "format": "uuid" },
                        "state": {
                            "type": "string",
                            "enum": states,
                            "description": "running: the order is neither confirmed nor \
                                cancelled; compensating: cancelled, with stock not given \
                                back or a charge not refunded yet; confirmed; cancelled: \
                                cancelled with every compensation done.",
                        },
                        "step": {
                            "type": "string",
                            "enum": steps,
                            "description": "The latest step (by occurred_at, then event id).",
                        },
                        "waiting_for": {
                            "type": "string",
                            "enum": services,
                            "nullable": true,
                            "description": "The service that owes the next step; null when \
                                nothing more is expected.",
                        },
                        "started_at": { "type": "string", "format": "date-time" },
                        "last_event_at": { "type": "string", "format": "date-time" },
                        "step_count": { "type": "integer", "format": "int64", "minimum": 1 },
                    },
                },
                "Saga": {
                    "allOf": [
                        { "$ref": "#/components/schemas/SagaSummary" },
                        {
                            "type": "object",
                            "required": ["steps"],
                            "properties": {
                                "steps": {
                                    "type": "array",
                                    "description": "By occurred_at, then event_id.",
                                    "items": { "$ref": "#/components/schemas/SagaStep" },
                                },
                            },
                        },
                    ],
                },
                "SagaPage": page,
                "Error": openapi::error_schema(),
            },
            "responses": {
                "Invalid": openapi::invalid_response(
                    openapi::INVALID_PARAMETER,
                    "older_than",
                    "older_than: must be a duration such as \"30s\", \"5m\" or \"1h 30m\", \
                     got \"soon\"",
                ),
                "NotFound": openapi::not_found_response(
                    "The tracker knows no such saga.",
                    "the saga tracker has no saga …",
                ),
                "Unavailable": openapi::unavailable_response("tracker"),
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_exactly_the_routes_served() {
        let document = document();
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            ["/openapi.json", "/sagas", "/sagas/{correlation_id}"]
        );
        assert!(document["openapi"].as_str().unwrap().starts_with("3.0"));
    }

    #[test]
    fn every_reference_resolves() {
        openapi::assert_references_resolve(&document());
    }

    #[test]
    fn the_listing_takes_every_state_and_stuck() {
        let document = document();
        let state = &document["paths"]["/sagas"]["get"]["parameters"][0];
        assert_eq!(state["name"], "state");
        assert_eq!(
            state["schema"]["enum"],
            json!(["running", "compensating", "confirmed", "cancelled", "stuck"])
        );
        assert!(
            state["description"].as_str().unwrap().contains("30s"),
            "{state}"
        );
    }

    #[test]
    fn the_listing_sorts_by_start_or_quiet_and_only_a_walk_takes_a_cursor() {
        let document = document();
        let get = &document["paths"]["/sagas"]["get"];
        let parameter = |name: &str| {
            get["parameters"]
                .as_array()
                .and_then(|all| all.iter().find(|p| p["name"] == name))
                .cloned()
                .unwrap_or_default()
        };
        let sort = parameter("sort");
        assert_eq!(sort["schema"]["enum"], json!(["started", "quiet"]));
        assert_eq!(sort["schema"]["default"], "started");
        let cursor = parameter("cursor")["description"].to_string();
        assert!(cursor.contains("same `state`"), "{cursor}");
        assert!(cursor.contains("Not with sort=quiet"), "{cursor}");
        assert!(
            get["description"]
                .as_str()
                .unwrap()
                .contains("exactly once"),
            "{get}"
        );
        let page = &document["components"]["schemas"]["SagaPage"];
        assert_eq!(
            page["required"],
            json!(["items", "next_cursor", "truncated"])
        );
    }
}
