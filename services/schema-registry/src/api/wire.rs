//! How requests are read and responses written.
//!
//! Bodies are JSON under any of Confluent's media types (or none); a body that is not JSON is
//! a 400, one that lacks a field a 422. Responses carry Confluent's own media type. Path and
//! query values go through here too, so that their failures are Confluent errors as well.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::VersionSpec;

use super::error::ApiError;

/// The media type of every response.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The media types a request body may declare (declaring none is fine too).
const ACCEPTED: [&str; 3] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
];

/// A JSON request body of type `T`.
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = request.headers().get(CONTENT_TYPE) {
            let declared = value.to_str().unwrap_or_default();
            let media_type = declared.split(';').next().unwrap_or_default().trim();
            if !ACCEPTED
                .iter()
                .any(|accepted| accepted.eq_ignore_ascii_case(media_type))
            {
                return Err(ApiError::UnsupportedMediaType(declared.to_owned()));
            }
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::MalformedBody(rejection.body_text()))?;
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::MalformedBody(format!("not valid JSON ({error})")))?;
        serde_json::from_value(json)
            .map(Body)
            .map_err(|error| ApiError::InvalidBody(error.to_string()))
    }
}

/// Values from the path (percent-decoded: `%2F` is `/`).
#[derive(Debug)]
pub(crate) struct Segments<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| Segments(value))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// The query parameters, read leniently: unknown ones are ignored, flags are `true` in any
/// case, anything else is false.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Whether `name=true` was given.
    pub(crate) fn flag(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }

    /// The value of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(values)| Params(values))
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// Reads a version from a path segment.
pub(crate) fn version(text: &str) -> Result<VersionSpec, ApiError> {
    VersionSpec::parse(text).ok_or_else(|| ApiError::InvalidVersion(text.to_owned()))
}

/// A JSON response in Confluent's media type.
#[derive(Debug)]
pub(crate) struct Reply<T>(pub(crate) T);

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => RawJson(body).into_response(),
            Err(error) => ApiError::Internal(error.to_string()).into_response(),
        }
    }
}

/// A response whose body already is JSON text, such as a stored schema.
#[derive(Debug)]
pub(crate) struct RawJson<B>(pub(crate) B);

impl<B: Into<axum::body::Body>> IntoResponse for RawJson<B> {
    fn into_response(self) -> Response {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE))],
            self.0.into(),
        )
            .into_response()
    }
}
