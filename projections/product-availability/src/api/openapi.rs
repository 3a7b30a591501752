//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use eventmart_runtime::query::openapi;
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
                        openapi::limit_parameter("Products", DEFAULT_LIMIT, MAX_LIMIT),
                        openapi::cursor_parameter(&[]),
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::read_responses("A page of products", "ProductPage"),
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
                    "responses": openapi::lookup_responses("The product", "Product"),
                },
            },
            "/openapi.json": openapi::openapi_path(),
        },
        "components": {
            "parameters": {
                "ProductId": openapi::id_parameter("product_id"),
                "Position": openapi::position_parameter("view"),
            },
            "schemas": {
                "Money": openapi::money_schema(),
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
                "ProductPage": openapi::page_schema("Product"),
                "Error": openapi::error_schema(),
            },
            "responses": {
                "Invalid": openapi::invalid_response(
                    openapi::INVALID_PARAMETER,
                    "limit",
                    "limit: must be a number from 1 to 100, got \"0\"",
                ),
                "NotFound": openapi::not_found_response(
                    "The view knows no such product.",
                    "product availability has no product …",
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
            ["/openapi.json", "/products", "/products/{product_id}"]
        );
        assert!(document["openapi"].as_str().unwrap().starts_with("3.0"));
    }

    #[test]
    fn every_reference_resolves() {
        openapi::assert_references_resolve(&document());
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
