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

mod catch_up;
mod error;
mod openapi;
mod orders;
mod page;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::routing::get;
use eventmart_runtime::db::Db;
use uuid::Uuid;

pub(crate) use self::error::QueryError;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The view's database.
    pub(crate) db: Db,
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

/// A request's query parameters, each one the endpoint takes.
#[derive(Debug)]
struct Params(HashMap<String, String>);

impl Params {
    /// The parameters of `query`, or a 400 naming the first one not in `known`.
    fn of(
        query: Result<Query<HashMap<String, String>>, QueryRejection>,
        known: &[&str],
    ) -> Result<Self, QueryError> {
        let Query(params) = query.map_err(|e| QueryError::BadQuery(e.body_text()))?;
        let mut unknown: Vec<&String> = params
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            return Err(QueryError::invalid(
                name.as_str(),
                format!("is not a parameter here; use {}", known.join(", ")),
            ));
        }
        Ok(Self(params))
    }

    /// The value of parameter `name`, if given.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Path parameter `name` as a UUID, or a 400 naming it.
fn parse_id(name: &str, text: &str) -> Result<Uuid, QueryError> {
    Uuid::parse_str(text)
        .map_err(|_| QueryError::invalid(name, format!("must be a UUID, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<Query<HashMap<String, String>>, QueryRejection> {
        Ok(Query(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
    }

    fn field(error: QueryError) -> String {
        match error {
            QueryError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_parameter_the_endpoint_does_not_take_is_named() {
        let known = ["status", "limit"];
        let ok = Params::of(params(&[("limit", "3")]), &known).unwrap();
        assert_eq!(ok.get("limit"), Some("3"));
        assert_eq!(ok.get("status"), None);
        let error = Params::of(params(&[("limit", "3"), ("offset", "2")]), &known).unwrap_err();
        assert_eq!(field(error), "offset");
    }

    #[test]
    fn an_id_that_is_no_uuid_is_named() {
        let id = Uuid::now_v7();
        assert_eq!(parse_id("order_id", &id.to_string()).unwrap(), id);
        assert_eq!(field(parse_id("user_id", "bob").unwrap_err()), "user_id");
    }
}
