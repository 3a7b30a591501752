//! Why a command was not carried out, each case mapped to an HTTP status and a JSON body
//! `{"error": "<code>", "message": "<what to do>"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::journal::{AppendError, ReadError};

/// Why a command was not carried out. Nothing it would have written was committed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The request is malformed or incomplete (400): the client must fix it.
    #[error("{0}")]
    Invalid(String),
    /// One field of the request is malformed, missing or out of range (400): the client must
    /// fix that field. The JSON body names it in `field` (a path such as `lines[1].quantity`).
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field's path in the request.
        field: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// What the command is about does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The domain refused the command (422), e.g. not enough stock: retrying the same
    /// request will not help until the state changes.
    #[error("{message}")]
    Rejected {
        /// A stable snake_case reason, e.g. `out_of_stock`.
        code: String,
        /// What went wrong, for people.
        message: String,
        /// The request field the refusal is about (`lines[1].product_id`), when there is one.
        field: Option<String>,
    },
    /// The aggregate's state refuses the command (409), e.g. cancelling a confirmed order or
    /// taking an email another user holds: the request collides with what exists, and
    /// retrying it will not help. Unlike [`CommandError::Conflict`] it is not retried.
    #[error("{message}")]
    Refused {
        /// A stable snake_case reason, e.g. `order_confirmed`.
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// Another command changed the same aggregate at the same moment, more often than
    /// [`run_command`](super::run_command) retries (409): retry the request.
    #[error("{0}")]
    Conflict(String),
    /// The `Idempotency-Key` was already used with a different request (422): use a new key
    /// for a new request.
    #[error(
        "Idempotency-Key {key:?} was already used with a different request; send the same \
         request to get its response again, or use a new key for a new request"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// The `Idempotency-Key` header is not a usable key (400).
    #[error("Idempotency-Key {0}")]
    InvalidIdempotencyKey(String),
    /// The database is unreachable or failed (503): retry the request later, with the same
    /// `Idempotency-Key`.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug: the command produced something that cannot be stored (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommandError {
    /// A domain refusal with a stable `code` and a message for people.
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError::Rejected {
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// The same error, naming the request field it is about (in the body's `field`); only a
    /// domain refusal takes one.
    pub fn about_field(mut self, name: impl Into<String>) -> Self {
        if let CommandError::Rejected { field, .. } = &mut self {
            *field = Some(name.into());
        }
        self
    }

    /// A refusal by the aggregate's state (409) with a stable `code`.
    pub fn refused(code: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError::Refused {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Field `field` of the request is wrong because of `reason`.
    pub fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CommandError::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            CommandError::Invalid(_)
            | CommandError::InvalidField { .. }
            | CommandError::InvalidIdempotencyKey(_) => StatusCode::BAD_REQUEST,
            CommandError::NotFound(_) => StatusCode::NOT_FOUND,
            CommandError::Rejected { .. } | CommandError::IdempotencyKeyReused { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            CommandError::Conflict(_) | CommandError::Refused { .. } => StatusCode::CONFLICT,
            CommandError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CommandError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error` code of the JSON body.
    pub fn code(&self) -> &str {
        match self {
            CommandError::Invalid(_) | CommandError::InvalidField { .. } => "invalid",
            CommandError::NotFound(_) => "not_found",
            CommandError::Rejected { code, .. } | CommandError::Refused { code, .. } => code,
            CommandError::Conflict(_) => "conflict",
            CommandError::IdempotencyKeyReused { .. } => "idempotency_key_reused",
            CommandError::InvalidIdempotencyKey(_) => "invalid_idempotency_key",
            CommandError::Unavailable(_) => "unavailable",
            CommandError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for CommandError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "command failed");
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let CommandError::InvalidField { field, .. }
        | CommandError::Rejected {
            field: Some(field), ..
        } = &self
        {
            body["field"] = json!(field);
        }
        let body = Json(body);
        (status, body).into_response()
    }
}

impl From<AppendError> for CommandError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { .. } => CommandError::Conflict(e.to_string()),
            AppendError::Database(e) => CommandError::from(e),
            AppendError::DuplicateEvent { .. } | AppendError::Invalid { .. } => {
                CommandError::Internal(e.to_string())
            }
        }
    }
}

impl From<ReadError> for CommandError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Database(e) => CommandError::from(e),
            ReadError::Undecodable { .. } => CommandError::Internal(e.to_string()),
        }
    }
}

/// Contention (a serialization failure, a deadlock, a lock not available, SQLite busy or
/// locked) is a conflict, which [`run_command`](super::run_command) runs again; any other
/// database failure makes the service unavailable for now.
impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        if crate::consumer::is_contention(&e) {
            CommandError::Conflict(format!("database contention: {e}"))
        } else {
            CommandError::Unavailable(format!("database: {e}"))
        }
    }
}

impl From<serde_json::Error> for CommandError {
    fn from(e: serde_json::Error) -> Self {
        CommandError::Internal(format!("response body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_status_that_tells_the_client_what_to_do() {
        let cases = [
            (CommandError::Invalid("x".into()), 400),
            (CommandError::invalid_field("email", "x"), 400),
            (CommandError::NotFound("x".into()), 404),
            (CommandError::rejected("out_of_stock", "x"), 422),
            (CommandError::Conflict("x".into()), 409),
            (CommandError::refused("order_confirmed", "x"), 409),
            (CommandError::IdempotencyKeyReused { key: "k".into() }, 422),
            (CommandError::InvalidIdempotencyKey("x".into()), 400),
            (CommandError::Unavailable("x".into()), 503),
            (CommandError::Internal("x".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn a_reused_key_is_named_in_the_message() {
        let error = CommandError::IdempotencyKeyReused { key: "k1".into() };
        assert!(error.to_string().contains("Idempotency-Key"), "{error}");
        assert_eq!(error.code(), "idempotency_key_reused");
    }

    #[test]
    fn a_rejection_carries_its_own_code() {
        assert_eq!(
            CommandError::rejected("out_of_stock", "only 2 left").code(),
            "out_of_stock"
        );
        assert_eq!(
            CommandError::refused("email_taken", "held by another user").code(),
            "email_taken"
        );
    }
}
