//! The one error type of the HTTP API, and how it becomes a Confluent error response.
//!
//! Every failure is answered with `{"error_code": N, "message": "…"}` and the HTTP status made
//! of N's first three digits (40401 → 404, 42201 → 422, 50001 → 500); codes of three digits
//! are the status itself. Clients such as Confluent's serializers branch on these codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::compat::CompatibilityLevel;
use crate::registry;

use super::wire::Reply;

/// What went wrong with a request, and so what the client should do next.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The registry refused or failed the operation; its variants say why.
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// The body is not JSON at all: send a JSON body.
    #[error("Malformed request body: {0}")]
    MalformedBody(String),
    /// A path or query value could not be read: fix the URL.
    #[error("Bad request: {0}")]
    BadRequest(String),
    /// The body is JSON but lacks a field or has one of the wrong type: fix the body.
    #[error("Invalid request body: {0}")]
    InvalidBody(String),
    /// The version in the path is not a version: use a number from 1, `latest` or `-1`.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// The compatibility level asked for does not exist: use one of those listed.
    #[error("Invalid compatibility level: {0}. Valid values are {levels}", levels = CompatibilityLevel::names())]
    InvalidLevel(String),
    /// The body's content type is not JSON: send `application/vnd.schemaregistry.v1+json`.
    #[error("Unsupported media type {0:?}: send application/vnd.schemaregistry.v1+json")]
    UnsupportedMediaType(String),
    /// No such route.
    #[error("HTTP 404 Not Found")]
    NotFound,
    /// The route exists, but not with this method.
    #[error("HTTP 405 Method Not Allowed")]
    MethodNotAllowed,
    /// A response could not be built; a bug.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Confluent's error code for this error.
    pub(crate) fn error_code(&self) -> u32 {
        use registry::Error as E;
        match self {
            Self::Registry(error) => match error {
                E::SubjectNotFound(_) => 40401,
                E::VersionNotFound(_) => 40402,
                E::SchemaIdNotFound(_) | E::SchemaNotFound => 40403,
                E::SubjectSoftDeleted(_) => 40404,
                E::SubjectNotSoftDeleted(_) => 40405,
                E::VersionSoftDeleted(..) => 40406,
                E::VersionNotSoftDeleted(..) => 40407,
                E::NoSubjectLevel(_) => 40408,
                E::Incompatible { .. } => 409,
                E::Schema(_) => 42201,
                E::Referenced(..) => 42206,
                E::Storage(_) | E::Inconsistent(_) => 50001,
            },
            Self::MalformedBody(_) | Self::BadRequest(_) => 400,
            Self::InvalidBody(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidLevel(_) => 42203,
            Self::UnsupportedMediaType(_) => 415,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Internal(_) => 50001,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error_code = self.error_code();
        let status_digits = if error_code >= 1000 {
            error_code / 100
        } else {
            error_code
        };
        let status = u16::try_from(status_digits)
            .ok()
            .and_then(|digits| StatusCode::from_u16(digits).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = ErrorBody {
            error_code,
            message: self.to_string(),
        };
        (status, Reply(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_digit_codes_carry_their_status_in_the_first_three_digits() {
        // given
        let cases = [
            (
                ApiError::from(registry::Error::SubjectNotFound("s".into())),
                404,
                40401,
            ),
            (
                ApiError::from(registry::Error::VersionNotFound(3)),
                404,
                40402,
            ),
            (ApiError::InvalidVersion("0".into()), 422, 42202),
            (ApiError::MalformedBody("x".into()), 400, 400),
            (ApiError::NotFound, 404, 404),
            (ApiError::Internal("x".into()), 500, 50001),
        ];
        for (error, status, code) in cases {
            // when
            let error_code = error.error_code();
            let response = error.into_response();
            // then
            assert_eq!(error_code, code);
            assert_eq!(response.status().as_u16(), status);
        }
    }

    #[test]
    fn an_incompatible_schema_lists_every_problem() {
        // given
        let error = ApiError::from(registry::Error::Incompatible {
            subject: "orders-value".into(),
            messages: vec!["first".into(), "second".into()],
        });
        // when
        let message = error.to_string();
        // then
        assert_eq!(error.error_code(), 409);
        assert!(message.contains("\"orders-value\""), "{message}");
        assert!(message.contains("[first; second]"), "{message}");
    }
}
