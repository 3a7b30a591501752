//! The query API over the view, JSON in and out:
//!
//! - `GET /orders/{order_id}`: one order with its saga timeline;
//! - `GET /users/{user_id}/orders?status=&limit=&cursor=`: a customer's orders, newest
//!   first, a page at a time;
//! - `GET /openapi.json`: the OpenAPI document describing both.
//!
//! Both reads take `?position=<token>` (the `position` a command answered with) and then
//! wait until the view has processed that command's events, so that a client reads its own
//! writes. Errors are JSON `{"error": "<code>", "message": "…"}`, with `field` for a 400.

mod openapi;
mod orders;
mod page;
#[cfg(test)]
mod tests;

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
        .route("/orders/{order_id}", get(orders::get))
        .route("/users/{user_id}/orders", get(orders::list))
        .route("/openapi.json", get(openapi::serve))
        .with_state(app)
}
