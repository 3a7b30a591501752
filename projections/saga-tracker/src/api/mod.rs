//! The query API over the tracker, JSON in and out:
//!
//! - `GET /sagas/{correlation_id}`: one saga, where it stands, with its steps;
//! - `GET /sagas?state=&older_than=&sort=&limit=&cursor=`: sagas in a state (or stuck:
//!   unfinished and quiet for longer than `older_than`), by correlation id a page at a time,
//!   or the longest quiet first in one page (`sort=quiet`);
//! - `GET /openapi.json`: the OpenAPI document describing them.
//!
//! Both reads take `?position=<token>` (the `position` a command answered with) and then
//! wait until the tracker has processed that command's events, so that a client reads its
//! own writes. Errors are JSON `{"error": "<code>", "message": "…"}`, with `field` for a 400.
//!
//! The clock is read here only, when a listing asks for sagas quiet for longer than
//! `older_than`; the tables never hold it.

mod openapi;
mod page;
mod sagas;
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use eventmart_runtime::projection::LiveDb;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The live version of the tracker.
    pub(crate) live: LiveDb,
    /// How long a read with a `position` waits for the tracker to catch up.
    pub(crate) wait_max: Duration,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/sagas", get(sagas::list))
        .route("/sagas/{correlation_id}", get(sagas::get))
        .route("/openapi.json", get(openapi::serve))
        .with_state(app)
}
