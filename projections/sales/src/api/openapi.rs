//! `GET /openapi.json`: the API described as an OpenAPI 3.0 document, written by hand next
//! to the handlers it describes (a test checks that it names exactly the routes served).

use axum::Json;
use eventmart_runtime::query::openapi;
use serde_json::{Value, json};

use super::top::{By, DEFAULT_LIMIT, MAX_LIMIT};

/// `GET /openapi.json`.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub(super) fn document() -> Value {
    let rankings: Vec<&str> = By::ALL.iter().map(|by| by.as_str()).collect();
    let period = [
        json!({ "$ref": "#/components/parameters/From" }),
        json!({ "$ref": "#/components/parameters/To" }),
    ];
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "eventmart sales",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Units sold and revenue per product and per day, and the products \
                that sold most, kept from the orders topic. An order counts once both its \
                order.created and its order.confirmed have arrived, on the UTC date of its \
                confirmation; a cancelled order never counts. Revenue is the lines' quantity \
                × unit price, per currency. A read that carries the `position` a command \
                answered with waits until the model has processed that command's events.",
        },
        "paths": {
            "/sales/daily": {
                "get": {
                    "operationId": "getDailySales",
                    "summary": "Each day's sales over a period, and the period's total",
                    "parameters": [
                        period[0], period[1],
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::read_responses(
                        "Each day that sold anything, by day, and the total",
                        "DailySales",
                    ),
                },
            },
            "/sales/products/{product_id}": {
                "get": {
                    "operationId": "getProductSales",
                    "summary": "One product's sales each day over a period, and its total",
                    "parameters": [
                        openapi::id_parameter("product_id"),
                        period[0], period[1],
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::lookup_responses(
                        "Each day the product sold, by day, and its total",
                        "ProductSales",
                    ),
                },
            },
            "/sales/top": {
                "get": {
                    "operationId": "getTopProducts",
                    "summary": "The products that sold most over a period: the top `limit`",
                    "description": "One page, read at one instant: each product that sold \
                        shows once, in its place as the figures stood then. There is no \
                        cursor: the figures only grow, so a product climbs the ranking as it \
                        sells, and pages read one after another could skip one that climbed \
                        above a page already read. `truncated` says whether more products \
                        sold than the ranking shows; ask for a larger `limit`, or read a \
                        product's own figures.",
                    "parameters": [
                        period[0], period[1],
                        {
                            "name": "by",
                            "in": "query",
                            "required": false,
                            "description": "What products are ranked by: revenue (in one \
                                currency) or units (in every currency unless `currency` \
                                says otherwise).",
                            "schema": { "type": "string", "enum": rankings, "default": "revenue" },
                        },
                        {
                            "name": "currency",
                            "in": "query",
                            "required": false,
                            "description": "Count only sales in this currency. A ranking by \
                                revenue without it is in the one currency the period's sales \
                                are in; when they are in several it is refused (400 naming \
                                `currency`).",
                            "schema": { "type": "string", "pattern": "^[A-Z]{3}$" },
                        },
                        openapi::limit_parameter("Products", DEFAULT_LIMIT, MAX_LIMIT),
                        { "$ref": "#/components/parameters/Position" },
                    ],
                    "responses": openapi::read_responses(
                        "The top products, the most first (ties by product id)",
                        "TopProducts",
                    ),
                },
            },
            "/openapi.json": openapi::openapi_path(),
        },
        "components": {
            "parameters": {
                "From": {
                    "name": "from",
                    "in": "query",
                    "required": false,
                    "description": "The period's first day (UTC), included; no earlier bound \
                        if left out. Must not come after `to`.",
                    "schema": { "type": "string", "format": "date", "example": "2024-05-01" },
                },
                "To": {
                    "name": "to",
                    "in": "query",
                    "required": false,
                    "description": "The period's last day (UTC), included; no later bound if \
                        left out.",
                    "schema": { "type": "string", "format": "date", "example": "2024-05-31" },
                },
                "Position": openapi::position_parameter("model"),
            },
            "schemas": {
                "Revenue": {
                    "type": "object",
                    "required": ["currency", "cents"],
                    "properties": {
                        "currency": { "type": "string", "pattern": "^[A-Z]{3}$" },
                        "cents": {
                            "type": "integer",
                            "format": "int64",
                            "description": "The sum of quantity × unit price, in minor units.",
                        },
                    },
                },
                "Figures": {
                    "type": "object",
                    "required": ["orders", "units", "revenue"],
                    "properties": {
                        "orders": {
                            "type": "integer",
                            "format": "int64",
                            "description": "Confirmed orders.",
                        },
                        "units": { "type": "integer", "format": "int64" },
                        "revenue": {
                            "type": "array",
                            "description": "By currency code; empty if nothing sold.",
                            "items": { "$ref": "#/components/schemas/Revenue" },
                        },
                    },
                },
                "DayFigures": {
                    "allOf": [
                        {
                            "type": "object",
                            "required": ["day"],
                            "properties": {
                                "day": { "type": "string", "format": "date" },
                            },
                        },
                        { "$ref": "#/components/schemas/Figures" },
                    ],
                },
                "DailySales": {
                    "type": "object",
                    "required": ["from", "to", "days", "total"],
                    "properties": {
                        "from": { "type": "string", "format": "date", "nullable": true },
                        "to": { "type": "string", "format": "date", "nullable": true },
                        "days": {
                            "type": "array",
                            "description": "The days that sold anything, by day.",
                            "items": { "$ref": "#/components/schemas/DayFigures" },
                        },
                        "total": { "$ref": "#/components/schemas/Figures" },
                    },
                },
                "ProductSales": {
                    "allOf": [
                        {
                            "type": "object",
                            "required": ["product_id"],
                            "properties": {
                                "product_id": { "type": "string", "format": "uuid" },
                            },
                        },
                        { "$ref": "#/components/schemas/DailySales" },
                    ],
                },
                "TopProduct": {
                    "allOf": [
                        {
                            "type": "object",
                            "required": ["product_id"],
                            "properties": {
                                "product_id": { "type": "string", "format": "uuid" },
                            },
                        },
                        { "$ref": "#/components/schemas/Figures" },
                    ],
                },
                "TopProducts": {
                    "type": "object",
                    "required": ["from", "to", "by", "currency", "items", "truncated"],
                    "properties": {
                        "from": { "type": "string", "format": "date", "nullable": true },
                        "to": { "type": "string", "format": "date", "nullable": true },
                        "by": { "type": "string", "enum": rankings },
                        "currency": {
                            "type": "string",
                            "nullable": true,
                            "description": "The only currency counted, if one is.",
                        },
                        "items": {
                            "type": "array",
                            "items": { "$ref": "#/components/schemas/TopProduct" },
                        },
                        "truncated": {
                            "type": "boolean",
                            "description": "Whether more products sold over the period \
                                than `items` holds.",
                        },
                    },
                },
                "Error": openapi::error_schema(),
            },
            "responses": {
                "Invalid": openapi::invalid_response(
                    "A parameter is malformed, out of range or unknown, or `from` comes after \
                     `to`; `field` names it.",
                    "from",
                    "from: must be a date written YYYY-MM-DD, got \"May\"",
                ),
                "NotFound": openapi::not_found_response(
                    "The product has never sold.",
                    "product … has not sold (no confirmed order has it)",
                ),
                "Unavailable": openapi::unavailable_response("model"),
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
                "/sales/daily",
                "/sales/products/{product_id}",
                "/sales/top"
            ]
        );
        assert!(document["openapi"].as_str().unwrap().starts_with("3.0"));
    }

    #[test]
    fn every_reference_resolves() {
        openapi::assert_references_resolve(&document());
    }

    #[test]
    fn every_read_documents_its_position_and_its_errors() {
        let document = document();
        for path in ["/sales/daily", "/sales/products/{product_id}", "/sales/top"] {
            let get = &document["paths"][path]["get"];
            let parameters = get["parameters"].to_string();
            for parameter in ["Position", "From", "To"] {
                assert!(parameters.contains(parameter), "{path} {parameter}");
            }
            for status in ["200", "400", "503"] {
                assert!(get["responses"][status].is_object(), "{path} {status}");
            }
        }
        let product = &document["paths"]["/sales/products/{product_id}"]["get"];
        assert!(product["responses"]["404"].is_object());
    }

    #[test]
    fn the_ranking_is_one_page_that_says_whether_it_is_truncated() {
        let document = document();
        let top = &document["paths"]["/sales/top"]["get"];
        let parameters = top["parameters"].to_string();
        assert!(parameters.contains("limit"), "{parameters}");
        assert!(!parameters.contains("cursor"), "{parameters}");
        let ranking = &document["components"]["schemas"]["TopProducts"];
        assert!(ranking["properties"]["truncated"].is_object(), "{ranking}");
        assert!(
            ranking["properties"].get("next_cursor").is_none(),
            "{ranking}"
        );
        assert!(
            top["description"].as_str().unwrap().contains("one instant"),
            "{top}"
        );
    }
}
