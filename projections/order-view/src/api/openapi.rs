//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use serde_json::{Value, json};

use super::page::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::view::Status;

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub(super) fn document() -> Value {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "eventmart order view",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Orders with their saga timeline and each customer's orders, kept \
                from the orders, inventory and payments topics. A read that carries the \
                `position` a command answered with waits until the view has processed that \
                command's events.",
        },
        "paths": {
            "/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "summary": "One order with its saga timeline",
                    "parameters": [
                        { "$ref": "#/components/parameters/OrderId" },
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": {
                        "200": {
                            "description": "The order",
                            "content": { "application/json": {
                                "schema": { "$ref": "#/components/schemas/Order" },
                            } },
                        },
                        "400": { "$ref": "#/components/responses/Invalid" },
                        "404": { "$ref": "#/components/responses/NotFound" },
                        "503": { "$ref": "#/components/responses/Unavailable" },
                    },
                },
            },
            "/users/{user_id}/orders": {
                "get": {
                    "operationId": "listUserOrders",
                    "summary": "A customer's orders, newest first, a page at a time",
                    "parameters": [
                        { "$ref": "#/components/parameters/UserId" },
                        {
                            "name": "status",
                            "in": "query",
                            "required": false,
                            "description": "Only orders with this status (any letter case).",
                            "schema": { "type": "string", "enum": statuses },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": false,
                            "description": "Orders per page.",
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": MAX_LIMIT,
                                "default": DEFAULT_LIMIT,
                            },
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": false,
                            "description": "Where the page starts: the previous page's \
                                `next_cursor`, unchanged.",
                            "schema": { "type": "string" },
                        },
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of orders",
                            "content": { "application/json": {
                                "schema": { "$ref": "#/components/schemas/OrderPage" },
                            } },
                        },
                        "400": { "$ref": "#/components/responses/Invalid" },
                        "503": { "$ref": "#/components/responses/Unavailable" },
                    },
                },
            },
            "/openapi.json": {
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
            },
        },
        "components": {
            "parameters": {
                "OrderId": {
                    "name": "order_id",
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string", "format": "uuid" },
                },
                "UserId": {
                    "name": "user_id",
                    "in": "path",
                    "required": true,
                    "schema": { "type": "string", "format": "uuid" },
                },
                "Position": {
                    "name": "position",
                    "in": "query",
                    "required": false,
                    "description": "The `position` a command answered with: the read waits \
                        until the view has processed that command's events, or answers 503 \
                        `not_caught_up`.",
                    "schema": { "type": "string" },
                },
            },
            "schemas": {
                "Money": {
                    "type": "object",
                    "required": ["cents", "currency"],
                    "properties": {
                        "cents": { "type": "integer", "format": "int64" },
                        "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
                    },
                },
                "OrderLine": {
                    "type": "object",
                    "required": ["product_id", "quantity", "unit_price"],
                    "properties": {
                        "product_id": { "type": "string", "format": "uuid" },
                        "quantity": { "type": "integer", "format": "int32" },
                        "unit_price": { "$ref": "#/components/schemas/Money" },
                    },
                },
                "TimelineEntry": {
                    "type": "object",
                    "required": ["event_type", "step", "service", "event_id", "occurred_at"],
                    "properties": {
                        "event_type": { "type": "string", "example": "inventory.updated" },
                        "step": {
                            "type": "string",
                            "description": "What happened: CREATED, CONFIRMED, CANCELLED \
                                (orders); RESERVED, REJECTED, RELEASED, SOLD (inventory); \
                                COMPLETED, FAILED, REFUNDED (payments).",
                        },
                        "service": {
                            "type": "string",
                            "enum": ["orders", "inventory", "payments"],
                        },
                        "event_id": { "type": "string", "format": "uuid" },
                        "occurred_at": { "type": "string", "format": "date-time" },
                    },
                },
                "OrderSummary": {
                    "type": "object",
                    "description": "Fields set by order.created are null until it has \
                        arrived.",
                    "required": [
                        "order_id", "user_id", "status", "reason", "total", "payment_id",
                        "created_at",
                    ],
                    "properties": {
                        "order_id": { "type": "string", "format": "uuid" },
                        "user_id": { "type": "string", "format": "uuid", "nullable": true },
                        "status": { "type": "string", "enum": statuses },
                        "reason": {
                            "type": "string",
                            "nullable": true,
                            "description": "Why the order was cancelled.",
                        },
                        "total": {
                            "allOf": [{ "$ref": "#/components/schemas/Money" }],
                            "nullable": true,
                        },
                        "payment_id": { "type": "string", "format": "uuid", "nullable": true },
                        "created_at": { "type": "string", "format": "date-time", "nullable": true },
                    },
                },
                "Order": {
                    "allOf": [
                        { "$ref": "#/components/schemas/OrderSummary" },
                        {
                            "type": "object",
                            "required": ["lines", "timeline"],
                            "properties": {
                                "lines": {
                                    "type": "array",
                                    "nullable": true,
                                    "items": { "$ref": "#/components/schemas/OrderLine" },
                                },
                                "timeline": {
                                    "type": "array",
                                    "description": "By occurred_at, then event_id.",
                                    "items": { "$ref": "#/components/schemas/TimelineEntry" },
                                },
                            },
                        },
                    ],
                },
                "OrderPage": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": { "$ref": "#/components/schemas/OrderSummary" },
                        },
                        "next_cursor": {
                            "type": "string",
                            "nullable": true,
                            "description": "The cursor of the next page; null on the last.",
                        },
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {
                            "type": "string",
                            "enum": [
                                "invalid", "not_found", "not_caught_up", "unavailable",
                                "internal",
                            ],
                        },
                        "message": { "type": "string" },
                        "field": {
                            "type": "string",
                            "description": "The parameter at fault (400 only).",
                        },
                    },
                },
            },
            "responses": {
                "Invalid": {
                    "description": "A parameter is malformed, out of range or unknown; \
                        `field` names it.",
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Error" },
                        "example": {
                            "error": "invalid",
                            "field": "limit",
                            "message": "limit: must be a number from 1 to 100, got \"0\"",
                        },
                    } },
                },
                "NotFound": {
                    "description": "The view knows no such order.",
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Error" },
                        "example": { "error": "not_found", "message": "the order view has no order …" },
                    } },
                },
                "Unavailable": {
                    "description": "`not_caught_up`: the view has not processed the \
                        position's events in time; `unavailable`: the database is \
                        unreachable. Retry later.",
                    "headers": {
                        "Retry-After": { "schema": { "type": "integer" } },
                    },
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Error" },
                        "example": {
                            "error": "not_caught_up",
                            "message": "the order view has not caught up with this position …",
                        },
                    } },
                },
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` in `value`.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => out.push(target.clone()),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_names_exactly_the_routes_served() {
        let document = document();
        let paths: Vec<&String> = document["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                "/openapi.json",
                "/orders/{order_id}",
                "/users/{user_id}/orders"
            ]
        );
        assert!(document["openapi"].as_str().unwrap().starts_with("3.0"));
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut targets = Vec::new();
        refs(&document, &mut targets);
        assert!(!targets.is_empty());
        for target in targets {
            let pointer = target.trim_start_matches('#');
            assert!(document.pointer(pointer).is_some(), "{target} resolves");
        }
    }
}
