//! Helpers for HTTP command endpoints: one transaction per command, retried on version
//! conflicts, idempotency keys, and position tokens.
//!
//! [`run_command`] runs a command's body inside a transaction, then commits the command's
//! state change, its events and (with an `Idempotency-Key`) its response together. The
//! response carries the ids of the events the command appended and a [`PositionToken`] that
//! read models accept to wait until those events are visible there.
//!
//! ```ignore
//! async fn place_order(
//!     State(app): State<App>,
//!     headers: HeaderMap,
//!     body: Bytes,
//! ) -> Result<CommandResponse, CommandError> {
//!     let request: PlaceOrder = serde_json::from_slice(&body)
//!         .map_err(|e| CommandError::Invalid(e.to_string()))?;
//!     let key = idempotency_key(&headers)?;
//!     run_command(&app.journal, key, &body, |tx| {
//!         let (journal, request) = (app.journal.clone(), request.clone());
//!         Box::pin(async move {
//!             let events = decide(&request)?;
//!             let appended = journal.append(tx, &id, ExpectedVersion::NoStream, events).await?;
//!             Ok(Accepted::created(json!({ "order_id": id })).appended(&appended))
//!         })
//!     })
//!     .await
//! }
//! ```
//!
//! Not here: routing, authentication and the domain rules themselves.

mod error;
mod idempotency;
mod position;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sqlx::AnyConnection;
use uuid::Uuid;

pub use self::error::CommandError;
pub use self::position::{InvalidPositionToken, MAX_EVENTS, PositionToken};
use crate::journal::{Appended, Journal};

/// The request header carrying an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header set (to `true`) on a response answered again for a repeated key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The field of a command's JSON response holding the ids of the events it appended.
pub const EVENT_IDS_FIELD: &str = "event_ids";

/// The field of a command's JSON response holding its [`PositionToken`].
pub const POSITION_FIELD: &str = "position";

/// How often a command is run when it keeps meeting version conflicts.
pub const MAX_ATTEMPTS: usize = 3;

/// What a command's body returns: see [`run_command`].
pub type CommandFuture<'c> = BoxFuture<'c, Result<Accepted, CommandError>>;

/// A command that was carried out: its response status and body, and the events it appended.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    status: StatusCode,
    body: Value,
    event_ids: Vec<Uuid>,
}

impl Accepted {
    /// `200 OK` with `body` (a JSON object; anything else is sent as `{"result": body}`).
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            event_ids: Vec::new(),
        }
    }

    /// `201 Created` with `body`.
    pub fn created(body: Value) -> Self {
        Self::ok(body).with_status(StatusCode::CREATED)
    }

    /// The same with another success status (`202 Accepted`, …).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        debug_assert!(status.is_success(), "a carried-out command answers 2xx");
        self.status = status;
        self
    }

    /// Adds the events of an append (call it once per append the command made).
    pub fn appended(mut self, appended: &Appended) -> Self {
        self.event_ids.extend_from_slice(&appended.event_ids);
        self
    }

    /// The events so far, in order.
    pub fn event_ids(&self) -> &[Uuid] {
        &self.event_ids
    }

    /// The response: `body` plus `event_ids` and `position`.
    fn into_command_response(self) -> CommandResponse {
        let mut body = match self.body {
            Value::Object(object) => object,
            other => Map::from_iter([("result".to_owned(), other)]),
        };
        let position = PositionToken::new(self.event_ids.clone());
        body.insert(
            EVENT_IDS_FIELD.to_owned(),
            Value::from_iter(self.event_ids.iter().map(|id| Value::from(id.to_string()))),
        );
        body.insert(POSITION_FIELD.to_owned(), position.to_string().into());
        CommandResponse {
            status: self.status,
            body: Value::Object(body),
            event_ids: self.event_ids,
            position,
            replayed: false,
        }
    }
}

/// The response to a command: status and JSON body (the command's own fields plus
/// `event_ids` and `position`).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandResponse {
    /// The status.
    pub status: StatusCode,
    /// The JSON body, exactly as sent.
    pub body: Value,
    /// The events the command appended, in order.
    pub event_ids: Vec<Uuid>,
    /// The token a read model waits for to show the command's effects.
    pub position: PositionToken,
    /// Whether this is the stored response to an earlier request with the same
    /// idempotency key (nothing was appended this time).
    pub replayed: bool,
}

impl CommandResponse {
    fn replay(status: StatusCode, body: Value) -> Self {
        let position = body
            .get(POSITION_FIELD)
            .and_then(Value::as_str)
            .and_then(|token| PositionToken::decode(token).ok())
            .unwrap_or_default();
        Self {
            status,
            event_ids: position.event_ids().to_vec(),
            position,
            body,
            replayed: true,
        }
    }
}

impl IntoResponse for CommandResponse {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        response
    }
}

/// The request's `Idempotency-Key`, if it has one; a malformed key is refused (400).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, CommandError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        CommandError::InvalidIdempotencyKey("must be visible ASCII characters".to_owned())
    })?;
    idempotency::validate(key)?;
    Ok(Some(key))
}

/// Parses a JSON request body into `T`; a malformed body or a field of the wrong type or
/// missing is refused (400) naming the field's path (`lines[0].quantity`).
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CommandError> {
    // Text with control characters is refused alike on every engine (PostgreSQL's JSON
    // cannot hold U+0000; SQLite would take it), and before anything else is said of it.
    if let Ok(value) = serde_json::from_slice::<Value>(body)
        && let Some(field) = eventmart_events::text::control_character(&value)
    {
        return Err(CommandError::invalid_field(
            field,
            eventmart_events::text::CONTROL_CHARACTERS,
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let message = error.into_inner().to_string();
            // A missing field is reported at its parent: name the field itself. (An unknown
            // field's path already ends with its name.)
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next());
            let field = match (missing, path.as_str()) {
                (Some(name), "." | "") => name.to_owned(),
                (Some(name), parent) => format!("{parent}.{name}"),
                (None, path) => path.to_owned(),
            };
            if field == "." || field.is_empty() {
                Err(CommandError::Invalid(format!("request body: {message}")))
            } else {
                Err(CommandError::invalid_field(field, message))
            }
        }
    }
}

/// Runs a command: `body` gets an open transaction, makes the command's state change and
/// appends its events through it (with [`Journal::append`]), and returns what to answer.
/// The transaction then commits, the relay is woken, and the response is returned.
///
/// - On [`CommandError::Conflict`] (a concurrent command changed the same aggregate, or the
///   database refused the transaction for contention: a serialization failure, a deadlock,
///   SQLite busy) the transaction is rolled back and `body` runs again, up to
///   [`MAX_ATTEMPTS`] times in all; so `body` must read the state it decides on through the
///   transaction it is given.
/// - On any other error the transaction is rolled back and the error returned.
/// - With an `idempotency_key`, the first successful response for the key is stored in the
///   same transaction. A repeat with the same `request_fingerprint` gets that response back
///   (marked [`CommandResponse::replayed`]) without running `body`; a repeat with another
///   fingerprint is refused with [`CommandError::IdempotencyKeyReused`] (422). Pass as
///   fingerprint the bytes that make the request what it is: its body, and its method and
///   path if one key could be sent to several endpoints. Refused commands store nothing,
///   so a key whose command failed can be retried.
///
/// On SQLite the transaction holds the pool's only connection: `body` must use it and not
/// acquire another.
pub async fn run_command<F>(
    journal: &Journal,
    idempotency_key: Option<&str>,
    request_fingerprint: &[u8],
    mut body: F,
) -> Result<CommandResponse, CommandError>
where
    F: for<'c> FnMut(&'c mut AnyConnection) -> CommandFuture<'c> + Send,
{
    if let Some(key) = idempotency_key {
        idempotency::validate(key)?;
    }
    let request_hash = idempotency::hash(request_fingerprint);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(journal, idempotency_key, &request_hash, &mut body).await {
            Err(CommandError::Conflict(reason)) if attempt < MAX_ATTEMPTS => {
                tracing::debug!(attempt, %reason, "command met a conflict; running it again");
                // A moment's pause, longer each time, so that two contenders drift apart.
                tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
            }
            outcome => return outcome,
        }
    }
}

/// One run of a command in its own transaction; see [`run_command`].
async fn attempt_once<F>(
    journal: &Journal,
    idempotency_key: Option<&str>,
    request_hash: &str,
    body: &mut F,
) -> Result<CommandResponse, CommandError>
where
    F: for<'c> FnMut(&'c mut AnyConnection) -> CommandFuture<'c> + Send,
{
    let mut tx = journal.db().pool.begin().await?;
    if let Some(key) = idempotency_key {
        let now = chrono::Utc::now().timestamp_millis();
        match idempotency::claim(&mut tx, key, request_hash, now).await? {
            idempotency::Claim::Claimed => {}
            idempotency::Claim::Answered { status, body } => {
                tx.rollback().await?;
                return Ok(CommandResponse::replay(status, body));
            }
            idempotency::Claim::Reused => {
                return Err(CommandError::IdempotencyKeyReused {
                    key: key.to_owned(),
                });
            }
        }
    }
    let response = body(&mut tx).await?.into_command_response();
    if let Some(key) = idempotency_key {
        idempotency::store(&mut tx, key, response.status, &response.body).await?;
    }
    tx.commit().await?;
    journal.committed();
    Ok(response)
}

/// Forgets idempotency keys stored more than `max_age` ago (a repeat of such a key runs its
/// command again); returns how many were deleted. Run it now and then.
pub async fn forget_idempotency_keys(
    journal: &Journal,
    max_age: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let age = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    let before = chrono::Utc::now().timestamp_millis().saturating_sub(age);
    idempotency::forget(&journal.db().pool, before).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn appended(ids: &[Uuid]) -> Appended {
        Appended {
            aggregate_id: "a".to_owned(),
            version: ids.len() as u64,
            event_ids: ids.to_vec(),
            positions: (1..=ids.len() as u64).collect(),
        }
    }

    #[test]
    fn a_response_carries_the_commands_fields_its_event_ids_and_position() {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let response = Accepted::created(json!({ "order_id": "o-1" }))
            .appended(&appended(&ids[..1]))
            .appended(&appended(&ids[1..]))
            .into_command_response();
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.body["order_id"], "o-1");
        assert_eq!(
            response.body[EVENT_IDS_FIELD],
            json!([ids[0].to_string(), ids[1].to_string()])
        );
        let token = response.body[POSITION_FIELD].as_str().unwrap();
        assert_eq!(PositionToken::decode(token).unwrap().event_ids(), ids);
        assert_eq!(response.position.event_ids(), ids);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        lines: Vec<Line>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        quantity: u32,
    }

    #[test]
    fn a_body_with_a_wrong_field_is_refused_naming_its_path() {
        let error =
            parse_body::<Body>(br#"{"lines": [{"quantity": 1}, {"quantity": -2}]}"#).unwrap_err();
        match error {
            CommandError::InvalidField { field, .. } => assert_eq!(field, "lines[1].quantity"),
            other => panic!("{other:?}"),
        }
        match parse_body::<Body>(br#"{"lines": [{}]}"#).unwrap_err() {
            CommandError::InvalidField { field, .. } => assert_eq!(field, "lines[0].quantity"),
            other => panic!("{other:?}"),
        }
        match parse_body::<Body>(br#"{"lines": [], "note": 1}"#).unwrap_err() {
            CommandError::InvalidField { field, .. } => assert_eq!(field, "note"),
            other => panic!("{other:?}"),
        }
        match parse_body::<Body>(br#"{"lines": [{"quantity": 1, "sku": "A"}]}"#).unwrap_err() {
            CommandError::InvalidField { field, .. } => assert_eq!(field, "lines[0].sku"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_body::<Body>(b"not json"),
            Err(CommandError::Invalid(_))
        ));
    }

    #[test]
    fn text_with_a_control_character_is_refused_naming_its_field() {
        for (body, path) in [
            (r#"{"name": "Ki\u0000m"}"#, "name"),
            (
                r#"{"lines": [{"note": "ok"}, {"note": "a\u001fb"}]}"#,
                "lines[1].note",
            ),
            (r#"{"user": {"email": "a@b.c\u007f"}}"#, "user.email"),
        ] {
            match parse_body::<Value>(body.as_bytes()).unwrap_err() {
                CommandError::InvalidField { field, reason } => {
                    assert_eq!(field, path, "{body}");
                    assert!(reason.contains("control characters"), "{reason}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(parse_body::<Value>(br#"{"name": "Kim \u00e9t\u00e9"}"#).is_ok());
    }

    #[test]
    fn contention_is_a_conflict_run_again_and_other_failures_are_unavailable() {
        assert!(matches!(
            CommandError::from(sqlx::Error::PoolTimedOut),
            CommandError::Unavailable(_)
        ));
        assert!(!crate::consumer::is_contention(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_sent_as_result() {
        let response = Accepted::ok(json!(42)).into_command_response();
        assert_eq!(response.body["result"], 42);
        assert_eq!(response.body[EVENT_IDS_FIELD], json!([]));
    }

    #[test]
    fn a_replayed_response_reads_its_events_back_from_its_body() {
        let ids = [Uuid::now_v7()];
        let first = Accepted::ok(json!({}))
            .appended(&appended(&ids))
            .into_command_response();
        let again = CommandResponse::replay(first.status, first.body.clone());
        assert!(again.replayed);
        assert_eq!(again.event_ids, ids);
        assert_eq!(again.body, first.body);
    }

    #[test]
    fn a_malformed_idempotency_key_header_is_refused() {
        let mut headers = HeaderMap::new();
        assert!(matches!(idempotency_key(&headers), Ok(None)));
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("k-1"));
        assert!(matches!(idempotency_key(&headers), Ok(Some("k-1"))));
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static(""));
        assert!(matches!(
            idempotency_key(&headers),
            Err(CommandError::InvalidIdempotencyKey(_))
        ));
    }
}
