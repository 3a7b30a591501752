//! What every read model's query API shares: parameter parsing that names the bad
//! parameter, the error type and its JSON body, and read-your-writes.
//!
//! - [`QueryError`]: why a read failed, answered as
//!   `{"error", "message", "field"?, "position"?}` with the status that tells the client what
//!   to do next.
//! - [`Params`]: a request's query parameters, refusing one the endpoint does not take.
//! - [`read_live`]: the live version to read from, once it has processed a command's
//!   `position` (read-your-writes).
//! - [`openapi`]: the fragments of an OpenAPI document that every read model words alike.
//! - [`cursor`]: the framing of an opaque paging cursor (version byte, base64url).
//! - [`snapshot`]: a read-only transaction whose statements all see one committed state, for
//!   an answer read in several statements.
//!
//! Not here: what a read model stores or how it pages (each projection's business; a
//! cursor's payload layout included).

mod catch_up;
pub mod cursor;
mod error;
pub mod openapi;
mod snapshot;

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use uuid::Uuid;

pub use self::catch_up::{parse_position, read_live};
pub use self::error::QueryError;
pub use self::snapshot::snapshot;

/// A request's query parameters, each one the endpoint takes.
#[derive(Debug)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// The parameters of `query`, or a 400 naming the first one not in `known`.
    pub fn of(
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
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Parameter `name` parsed by `parse`, if given; a 400 naming it if it does not parse.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, QueryError> {
        self.get(name)
            .map(|text| parse(text).map_err(|e| QueryError::invalid(name, e.to_string())))
            .transpose()
    }

    /// `limit`: 1 to `max`, `default` when absent; a 400 naming it otherwise.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, QueryError> {
        match self.get("limit") {
            None => Ok(default),
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    QueryError::invalid(
                        "limit",
                        format!("must be a number from 1 to {max}, got {text:?}"),
                    )
                }),
        }
    }
}

/// Path parameter `name` as a UUID, or a 400 naming it.
pub fn parse_id(name: &str, text: &str) -> Result<Uuid, QueryError> {
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

    #[test]
    fn a_limit_out_of_range_or_not_a_number_is_named() {
        let known = ["limit"];
        let none = Params::of(params(&[]), &known).unwrap();
        assert_eq!(none.limit(20, 100).unwrap(), 20);
        let some = Params::of(params(&[("limit", "100")]), &known).unwrap();
        assert_eq!(some.limit(20, 100).unwrap(), 100);
        for bad in ["0", "101", "ten", "-1"] {
            let given = Params::of(params(&[("limit", bad)]), &known).unwrap();
            assert_eq!(field(given.limit(20, 100).unwrap_err()), "limit", "{bad}");
        }
    }

    #[test]
    fn a_parameter_that_does_not_parse_is_named() {
        let given = Params::of(params(&[("older_than", "soon")]), &["older_than"]).unwrap();
        let error = given
            .parse("older_than", humantime::parse_duration)
            .unwrap_err();
        assert_eq!(field(error), "older_than");
    }
}
