//! Why a read failed, each case mapped to an HTTP status and a JSON body
//! `{"error": "<code>", "message": "<what to do>"}` (plus `field` for a bad parameter).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A path or query parameter is malformed, out of range or not one the endpoint takes
    /// (400): fix that parameter. The body names it in `field`.
    #[error("{field}: {reason}")]
    Invalid {
        /// The parameter's name.
        field: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// The query string does not parse at all (400): fix it.
    #[error("{0}")]
    BadQuery(String),
    /// The read model knows no such thing (404): check the id, or pass the `position` of the
    /// command that made it so that the read waits for it.
    #[error("{0}")]
    NotFound(String),
    /// The read model has not processed the events of the `position` within the wait
    /// allowed (503): retry later with the same `position`. The body's `position` says how
    /// far the model has got: the next offset it will apply, by `topic/partition`.
    #[error(
        "the read model has not caught up with this position within {}; retry later with the \
         same position", humantime::format_duration(*waited)
    )]
    NotCaughtUp {
        /// How long the read waited.
        waited: Duration,
        /// The model's position when it gave up: next offset by `topic/partition`.
        position: BTreeMap<String, i64>,
    },
    /// The database is unreachable or failed (503): retry later.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or a corrupt row (500): rebuild the read model if it persists.
    #[error("internal error: {0}")]
    Internal(String),
}

impl QueryError {
    /// Parameter `field` is wrong because of `reason`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        QueryError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::Invalid { .. } | QueryError::BadQuery(_) => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::NotCaughtUp { .. } | QueryError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            QueryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error` code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Invalid { .. } | QueryError::BadQuery(_) => "invalid",
            QueryError::NotFound(_) => "not_found",
            QueryError::NotCaughtUp { .. } => "not_caught_up",
            QueryError::Unavailable(_) => "unavailable",
            QueryError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "read failed");
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        match &self {
            QueryError::Invalid { field, .. } => body["field"] = json!(field),
            QueryError::NotCaughtUp { position, .. } => body["position"] = json!(position),
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<sqlx::Error> for QueryError {
    fn from(error: sqlx::Error) -> Self {
        QueryError::Unavailable(format!("database: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_status_that_tells_the_client_what_to_do() {
        let cases = [
            (QueryError::invalid("limit", "x"), 400, "invalid"),
            (QueryError::BadQuery("x".into()), 400, "invalid"),
            (QueryError::NotFound("x".into()), 404, "not_found"),
            (
                QueryError::NotCaughtUp {
                    waited: Duration::from_secs(5),
                    position: BTreeMap::new(),
                },
                503,
                "not_caught_up",
            ),
            (QueryError::Unavailable("x".into()), 503, "unavailable"),
            (QueryError::Internal("x".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            assert_eq!(
                (error.status().as_u16(), error.code()),
                (status, code),
                "{error:?}"
            );
        }
    }

    #[test]
    fn waiting_too_long_says_how_long_and_what_to_do() {
        let error = QueryError::NotCaughtUp {
            waited: Duration::from_millis(1500),
            position: BTreeMap::new(),
        };
        let message = error.to_string();
        assert!(message.contains("1s 500ms"), "{message}");
        assert!(message.contains("same position"), "{message}");
    }
}
