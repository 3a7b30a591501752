//! The HTTP API: register a user, change a profile, show a user.
//!
//! Each command runs in one transaction (see [`run_command`]): claim the email address,
//! decide, save the user, append the events. Not here: the rules themselves (`domain`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use eventmart_events::{Envelope, Event, timestamp};
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, idempotency_key, parse_body, run_command,
};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::{Appended, ExpectedVersion, Journal};
use eventmart_runtime::state::{self, Versioned};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Command, EMAIL, Email, Name, Register, USER, Update, User, UserError, Users};

/// What the handlers share.
#[derive(Clone, Debug)]
pub(crate) struct App {
    /// The service's journal (and, through it, its database).
    pub(crate) journal: Journal,
}

/// The routes of the users API.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/users", post(register))
        .route("/users/{user_id}", get(show).patch(update))
        .with_state(app)
}

/// `POST /users` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    name: String,
}

/// `PATCH /users/{user_id}` body: at least one field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateRequest {
    email: Option<String>,
    name: Option<String>,
}

impl From<UserError> for CommandError {
    fn from(error: UserError) -> Self {
        match &error {
            UserError::EmailTaken { .. } => CommandError::refused("email_taken", error.to_string()),
            UserError::NotFound(_) => CommandError::NotFound(error.to_string()),
            UserError::AlreadyRegistered(_) => {
                CommandError::refused("already_registered", error.to_string())
            }
            UserError::ForeignEvent(_) => CommandError::Internal(error.to_string()),
        }
    }
}

async fn register(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let request: RegisterRequest = parse_body(&body)?;
    let email = Email::parse(&request.email)
        .map_err(|e| CommandError::invalid_field("email", e.to_string()))?;
    let name = Name::parse(&request.name)
        .map_err(|e| CommandError::invalid_field("name", e.to_string()))?;
    let fingerprint = [b"POST /users\n".as_slice(), &body].concat();
    let response = run_command(
        &app.journal,
        idempotency_key(&headers)?,
        &fingerprint,
        |tx| {
            let (journal, email, name) = (app.journal.clone(), email.clone(), name.clone());
            Box::pin(async move {
                let user_id = Uuid::now_v7();
                let email_holder = claim(tx, &email, user_id).await?;
                let current = Versioned::default();
                let command = Command::Register(Register {
                    user_id,
                    email,
                    name,
                    email_holder: Some(email_holder),
                    at: timestamp::now(),
                });
                let (user, appended) = execute(tx, &journal, user_id, current, &command).await?;
                Ok(answer(Accepted::created(summary(&user)), appended))
            })
        },
    )
    .await?;
    Ok(response)
}

async fn update(
    State(app): State<App>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let user_id = parse_user_id(&user_id)?;
    let request: UpdateRequest = parse_body(&body)?;
    let email = request
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|e| CommandError::invalid_field("email", e.to_string()))?;
    let name = request
        .name
        .as_deref()
        .map(Name::parse)
        .transpose()
        .map_err(|e| CommandError::invalid_field("name", e.to_string()))?;
    if email.is_none() && name.is_none() {
        return Err(CommandError::Invalid(
            "give at least one of `email` and `name`".into(),
        ));
    }
    let fingerprint = [format!("PATCH /users/{user_id}\n").as_bytes(), &body].concat();
    let response = run_command(
        &app.journal,
        idempotency_key(&headers)?,
        &fingerprint,
        |tx| {
            let (journal, email, name) = (app.journal.clone(), email.clone(), name.clone());
            Box::pin(async move {
                let current: Versioned<Option<User>> =
                    state::load(tx, USER, &user_id.to_string()).await?;
                let Some(before) = current.state.clone() else {
                    return Err(UserError::NotFound(user_id).into());
                };
                let email_holder = match &email {
                    Some(email) => Some(claim(tx, email, user_id).await?),
                    None => None,
                };
                let command = Command::Update(Update {
                    user_id,
                    email,
                    name,
                    email_holder,
                    at: timestamp::now(),
                });
                let (after, appended) = execute(tx, &journal, user_id, current, &command).await?;
                let (old, new) = (
                    Email::normalise(&before.email),
                    Email::normalise(&after.email),
                );
                if old != new {
                    state::release(tx, EMAIL, &old, &user_id.to_string()).await?;
                }
                Ok(answer(Accepted::ok(summary(&after)), appended))
            })
        },
    )
    .await?;
    Ok(response)
}

async fn show(
    State(app): State<App>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let user_id = parse_user_id(&user_id)?;
    let mut conn = app
        .journal
        .db()
        .pool
        .acquire()
        .await
        .map_err(CommandError::from)?;
    let user: Versioned<Option<User>> = state::load(&mut conn, USER, &user_id.to_string())
        .await
        .map_err(CommandError::from)?;
    let user = user
        .state
        .ok_or(CommandError::from(UserError::NotFound(user_id)))?;
    Ok(Json(json!(user)))
}

/// The user id of a path, or 400 naming `user_id`.
fn parse_user_id(raw: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(raw)
        .map_err(|_| CommandError::invalid_field("user_id", format!("must be a UUID, got {raw:?}")))
}

/// Claims `email` for `user_id`; returns who holds it now.
async fn claim(tx: &mut AnyConnection, email: &Email, user_id: Uuid) -> Result<Uuid, CommandError> {
    let holder = state::claim(tx, EMAIL, email.as_str(), &user_id.to_string()).await?;
    Uuid::parse_str(&holder).map_err(|_| {
        CommandError::Internal(format!("email claim held by {holder:?}, not a user id"))
    })
}

/// Decides `command` on the user as read (`current`), saves the user it leaves, and appends
/// its events, each starting its own flow. Returns the user after the command and what was
/// appended (`None` when the command changed nothing).
async fn execute(
    tx: &mut AnyConnection,
    journal: &Journal,
    user_id: Uuid,
    current: Versioned<Option<User>>,
    command: &Command,
) -> Result<(User, Option<Appended>), CommandError> {
    let id = user_id.to_string();
    let events = Users.decide(&current.state, command)?;
    let after = events.iter().fold(current.state, |s, e| Users.evolve(s, e));
    let user = after.clone().ok_or_else(|| {
        CommandError::Internal(format!("user {id} has no state after {command:?}"))
    })?;
    if events.is_empty() {
        return Ok((user, None));
    }
    state::save(tx, USER, &id, current.version, &after).await?;
    let events: Vec<(Event, Envelope)> = events
        .into_iter()
        .map(|event| {
            let envelope = Envelope::new(&event);
            (event, envelope)
        })
        .collect();
    let appended = journal
        .append(tx, &id, ExpectedVersion::Any, events)
        .await?;
    Ok((user, Some(appended)))
}

/// `accepted` with the events of `appended`, if any.
fn answer(accepted: Accepted, appended: Option<Appended>) -> Accepted {
    appended.iter().fold(accepted, Accepted::appended)
}

/// A command's answer about a user.
fn summary(user: &User) -> Value {
    json!({ "user_id": user.user_id, "email": user.email, "name": user.name })
}
