//! The query API over the view, JSON in and out:
//!
//! - `GET /products?availability=&limit=&cursor=`: the products whose `product.created` has
//!   arrived, by product id, a page at a time, all of them or only those in (or out of)
//!   stock;
//! - `GET /products/{product_id}`: one product with its price and stock figures;
//! - `GET /openapi.json`: the OpenAPI document describing both.
//!
//! Both reads take `?position=<token>` (the `position` a command answered with) and then
//! wait until the view has processed that command's events, so that a client reads its own
//! writes. Errors are JSON `{"error": "<code>", "message": "…"}`, with `field` for a 400.

mod openapi;
mod page;
mod products;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use eventmart_runtime::projection::LiveDb;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The live version of the view.
    pub(crate) live: LiveDb,
    /// How long a read with a `position` waits for the view to catch up.
    pub(crate) wait_max: Duration,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/products", get(products::list))
        .route("/products/{product_id}", get(products::get))
        .route("/openapi.json", get(openapi::serve))
        .with_state(app)
}
