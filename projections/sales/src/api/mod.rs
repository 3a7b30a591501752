//! The query API over the sales figures, JSON in and out:
//!
//! - `GET /sales/daily?from=&to=`: each day's orders, units and revenue by currency, and the
//!   period's total;
//! - `GET /sales/products/{product_id}?from=&to=`: the same for one product;
//! - `GET /sales/top?from=&to=&by=&currency=&limit=`: the products that sold most, by units
//!   or revenue: one page, the top `limit`;
//! - `GET /openapi.json`: the OpenAPI document describing them.
//!
//! Days are UTC dates written `YYYY-MM-DD`; `from` and `to` are both included and both
//! optional. Each answer is read from one snapshot of the model. Every read takes
//! `?position=<token>` (the `position` a command answered with) and then waits until the
//! model has processed that command's events, so that a client reads its own writes. Errors
//! are JSON `{"error": "<code>", "message": "…"}`, with `field` for a 400.

mod openapi;
mod period;
mod sales;
#[cfg(test)]
mod tests;
mod top;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use eventmart_runtime::projection::LiveDb;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The live version of the model.
    pub(crate) live: LiveDb,
    /// How long a read with a `position` waits for the model to catch up.
    pub(crate) wait_max: Duration,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/sales/daily", get(sales::daily))
        .route("/sales/products/{product_id}", get(sales::product))
        .route("/sales/top", get(top::top))
        .route("/openapi.json", get(openapi::serve))
        .with_state(app)
}
