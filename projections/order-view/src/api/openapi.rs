//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use eventmart_runtime::query::openapi;
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
                    "responses": openapi::lookup_responses("The order", "Order"),
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
                        openapi::limit_parameter("Orders", DEFAULT_LIMIT, MAX_LIMIT),
                        openapi::cursor_parameter(&[]),
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::read_responses("A page of orders", "OrderPage"),
                },
            },
            "/openapi.json": openapi::openapi_path(),
        },
        "components": {
            "parameters": {
                "OrderId": openapi::id_parameter("order_id"),
                "UserId": openapi::id_parameter("user_id"),
                "Position": openapi::position_parameter("view"),
            },
            "schemas": {
                "Money": openapi::money_schema(),
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
                "OrderPage": openapi::page_schema("OrderSummary"),
                "Error": openapi::error_schema(),
            },
            "responses": {
                "Invalid": openapi::invalid_response(
                    openapi::INVALID_PARAMETER,
                    "limit",
                    "limit: must be a number from 1 to 100, got \"0\"",
                ),
                "NotFound": openapi::not_found_response(
                    "The view knows no such order.",
                    "the order view has no order …",
                ),
                "Unavailable": openapi::unavailable_response("view"),
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
        openapi::assert_references_resolve(&document());
    }
}
