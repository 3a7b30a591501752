//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use serde_json::{Value, json};

use super::page::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::view::Stocked;

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub(super) fn document() -> Value {
    let availability: Vec<&str> = Stocked::ALL.iter().map(|s| s.as_str()).collect();
    let count = |description: &str| json!({ "type": "integer", "format": "int64", "description": description });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "eventmart product availability",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Each product's current price and its stock (received, available, \
                reserved, sold), kept from the catalog and inventory topics. Once every \
                event has arrived, received = available + reserved + sold. A read that \
                carries the `position` a command answered with waits until the view has \
                processed that command's events.",
        },
        "paths": {
            "/products": {
                "get": {
                    "operationId": "listProducts",
                    "summary": "The products the catalog has announced, by product id, a page \
                        at a time",
                    "parameters": [
                        {
                            "name": "availability",
                            "in": "query",
                            "required": false,
                            "description": "Only products with units available \
                                (`in_stock`), or with none (`out_of_stock`).",
                            "schema": { "type": "string", "enum": availability },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": false,
                            "description": "Products per page.",
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
                            "description": "A page of products",
                            "content": { "application/json": {
                                "schema": { "$ref": "#/components/schemas/ProductPage" },
                            } },
                        },
                        "400": { "$ref": "#/components/responses/Invalid" },
                        "503": { "$ref": "#/components/responses/Unavailable" },
                    },
                },
            },
            "/products/{product_id}": {
                "get": {
                    "operationId": "getProduct",
                    "summary": "One product with its price and stock",
                    "parameters": [
                        { "$ref": "#/components/parameters/ProductId" },
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": {
                        "200": {
                            "description": "The product",
                            "content": { "application/json": {
                                "schema": { "$ref": "#/components/schemas/Product" },
                            } },
                        },
                        "400": { "$ref": "#/components/responses/Invalid" },
                        "404": { "$ref": "#/components/responses/NotFound" },
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
                "ProductId": {
                    "name": "product_id",
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
                "Product": {
                    "type": "object",
                    "description": "The fields product.created sets are null until it has \
                        arrived (stock may arrive first); listed products have them.",
                    "required": [
                        "product_id", "sku", "name", "price", "received", "available",
                        "reserved", "sold", "updated_at",
                    ],
                    "properties": {
                        "product_id": { "type": "string", "format": "uuid" },
                        "sku": { "type": "string", "nullable": true },
                        "name": { "type": "string", "nullable": true },
                        "price": {
                            "allOf": [{ "$ref": "#/components/schemas/Money" }],
                            "nullable": true,
                            "description": "The unit price of the latest product.created or \
                                product.price_changed.",
                        },
                        "received": count("Every unit received, net of adjustments."),
                        "available": count("Units that can be reserved now."),
                        "reserved": count("Units held for orders not yet confirmed."),
                        "sold": count("Units of confirmed orders."),
                        "updated_at": {
                            "type": "string",
                            "format": "date-time",
                            "description": "When the latest event about the product \
                                occurred.",
                        },
                    },
                },
                "ProductPage": {
                    "type": "object",
                    "required": ["items", "next_cursor"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": { "$ref": "#/components/schemas/Product" },
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
                    "description": "The view knows no such product.",
                    "content": { "application/json": {
                        "schema": { "$ref": "#/components/schemas/Error" },
                        "example": {
                            "error": "not_found",
                            "message": "product availability has no product …",
                        },
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
                            "message": "the read model has not caught up with this position …",
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
            ["/openapi.json", "/products", "/products/{product_id}"]
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

    #[test]
    fn the_availability_filter_lists_the_values_accepted() {
        let document = document();
        let parameter = &document["paths"]["/products"]["get"]["parameters"][0];
        assert_eq!(parameter["name"], "availability");
        assert_eq!(
            parameter["schema"]["enum"],
            json!(["in_stock", "out_of_stock"])
        );
    }
}
