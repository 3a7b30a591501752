//! The users domain: the rules of registering and changing a profile. Pure: no I/O.
//!
//! - [`values`]: what a valid email address and name are.
//! - here: the user's state, the commands, and the [`Users`] decider.
//!
//! An email address belongs to one user at most. Who holds it is a fact of storage (a
//! unique claim), so the caller claims the address first and hands the holder to
//! [`Users::decide`] in the command; the rule of what a taken address means lives here.
//!
//! Not here: HTTP (see `api`) and reading the topic (see `reactions`).

use chrono::{DateTime, Utc};
use eventmart_events::Event;
use eventmart_events::users::{UserRegistered, UserUpdated};
use eventmart_runtime::decider::Decider;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod values;

pub use values::{Email, InvalidValue, Name};

/// The state kind of a user (id: the user id).
pub const USER: &str = "user";

/// The unique-claim kind of an email address (value: its [`Email::normalise`]d form).
pub const EMAIL: &str = "email";

/// A registered user, as stored and as `GET /users/{user_id}` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub user_id: Uuid,
    /// The email address (normalised, unless it came from outside that way).
    pub email: String,
    /// The display name.
    pub name: String,
    /// When the user registered.
    #[serde(with = "eventmart_events::timestamp")]
    pub registered_at: DateTime<Utc>,
}

/// Register a new user.
#[derive(Clone, Debug)]
pub struct Register {
    /// The new user's id.
    pub user_id: Uuid,
    /// The email address.
    pub email: Email,
    /// The display name.
    pub name: Name,
    /// Who holds `email`'s claim, if anyone (the new user itself once claimed).
    pub email_holder: Option<Uuid>,
    /// Now.
    pub at: DateTime<Utc>,
}

/// Change a user's email address, name, or both.
#[derive(Clone, Debug)]
pub struct Update {
    /// The user.
    pub user_id: Uuid,
    /// The new address, if one is given.
    pub email: Option<Email>,
    /// The new name, if one is given.
    pub name: Option<Name>,
    /// Who holds the new address's claim, if anyone (the user itself once claimed).
    pub email_holder: Option<Uuid>,
    /// Now.
    pub at: DateTime<Utc>,
}

/// What the users domain is asked to do.
#[derive(Clone, Debug)]
pub enum Command {
    /// Register a new user.
    Register(Register),
    /// Change a profile.
    Update(Update),
    /// Record an event someone else put on the users topic (with kcat): a fact, accepted as
    /// it is unless it contradicts what is known.
    Record(Event),
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The email address belongs to another user: choose another one.
    #[error("{email} is already taken by another user")]
    EmailTaken {
        /// The address.
        email: String,
    },
    /// No such user: register first.
    #[error("user {0} does not exist")]
    NotFound(Uuid),
    /// A user with this id is registered already, with other details.
    #[error("user {0} is already registered with other details")]
    AlreadyRegistered(Uuid),
    /// An event of another topic was recorded on the users topic.
    #[error("{0} is not an event of the users topic (only user.registered and user.updated are)")]
    ForeignEvent(&'static str),
}

/// The users decider; its state is the user, `None` before registration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Users;

impl Users {
    fn register(state: Option<&User>, command: &Register) -> Result<Vec<Event>, UserError> {
        if state.is_some() {
            return Err(UserError::AlreadyRegistered(command.user_id));
        }
        if command
            .email_holder
            .is_some_and(|holder| holder != command.user_id)
        {
            return Err(UserError::EmailTaken {
                email: command.email.as_str().to_owned(),
            });
        }
        Ok(vec![
            UserRegistered {
                user_id: command.user_id,
                email: command.email.as_str().to_owned(),
                name: command.name.as_str().to_owned(),
                registered_at: command.at,
            }
            .into(),
        ])
    }

    fn update(state: Option<&User>, command: &Update) -> Result<Vec<Event>, UserError> {
        let user = state.ok_or(UserError::NotFound(command.user_id))?;
        let email = command
            .email
            .as_ref()
            .filter(|email| email.as_str() != user.email);
        if let Some(email) = email
            && command
                .email_holder
                .is_some_and(|holder| holder != user.user_id)
        {
            return Err(UserError::EmailTaken {
                email: email.as_str().to_owned(),
            });
        }
        let name = command
            .name
            .as_ref()
            .filter(|name| name.as_str() != user.name);
        if email.is_none() && name.is_none() {
            return Ok(Vec::new());
        }
        Ok(vec![
            UserUpdated {
                user_id: user.user_id,
                email: email.map(|e| e.as_str().to_owned()),
                name: name.map(|n| n.as_str().to_owned()),
                updated_at: command.at,
            }
            .into(),
        ])
    }

    fn record(state: Option<&User>, event: &Event) -> Result<Vec<Event>, UserError> {
        match (event, state) {
            (Event::UserRegistered(_), None) => Ok(vec![event.clone()]),
            (Event::UserRegistered(registered), Some(user)) => {
                if *user == Self::registered(registered) {
                    Ok(Vec::new())
                } else {
                    Err(UserError::AlreadyRegistered(registered.user_id))
                }
            }
            (Event::UserUpdated(updated), None) => Err(UserError::NotFound(updated.user_id)),
            (Event::UserUpdated(_), Some(_)) => Ok(vec![event.clone()]),
            (other, _) => Err(UserError::ForeignEvent(other.event_type())),
        }
    }

    fn registered(event: &UserRegistered) -> User {
        User {
            user_id: event.user_id,
            email: event.email.clone(),
            name: event.name.clone(),
            registered_at: event.registered_at,
        }
    }
}

impl Decider for Users {
    type State = Option<User>;
    type Command = Command;
    type Event = Event;
    type Error = UserError;

    fn decide(&self, state: &Option<User>, command: &Command) -> Result<Vec<Event>, UserError> {
        match command {
            Command::Register(register) => Self::register(state.as_ref(), register),
            Command::Update(update) => Self::update(state.as_ref(), update),
            Command::Record(event) => Self::record(state.as_ref(), event),
        }
    }

    fn evolve(&self, state: Option<User>, event: &Event) -> Option<User> {
        match event {
            Event::UserRegistered(registered) => Some(Self::registered(registered)),
            Event::UserUpdated(updated) => state.map(|user| User {
                email: updated.email.clone().unwrap_or(user.email),
                name: updated.name.clone().unwrap_or(user.name),
                ..user
            }),
            _ => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventmart_events::samples;
    use eventmart_runtime::testing::Scenario;

    fn at() -> DateTime<Utc> {
        samples::at()
    }

    fn ada() -> Uuid {
        Uuid::from_u128(1)
    }

    fn bob() -> Uuid {
        Uuid::from_u128(2)
    }

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn name(raw: &str) -> Name {
        Name::parse(raw).unwrap()
    }

    fn registered(user_id: Uuid, email: &str, name: &str) -> Event {
        UserRegistered {
            user_id,
            email: email.to_owned(),
            name: name.to_owned(),
            registered_at: at(),
        }
        .into()
    }

    fn updated(email: Option<&str>, name: Option<&str>) -> Event {
        UserUpdated {
            user_id: ada(),
            email: email.map(str::to_owned),
            name: name.map(str::to_owned),
            updated_at: at(),
        }
        .into()
    }

    fn register(email_holder: Option<Uuid>) -> Command {
        Command::Register(Register {
            user_id: ada(),
            email: email(" Ada@Example.COM "),
            name: name(" Ada Lovelace "),
            email_holder,
            at: at(),
        })
    }

    fn update(new_email: Option<&str>, new_name: Option<&str>, holder: Option<Uuid>) -> Command {
        Command::Update(Update {
            user_id: ada(),
            email: new_email.map(email),
            name: new_name.map(name),
            email_holder: holder,
            at: at(),
        })
    }

    #[test]
    fn registering_with_a_free_email_registers_the_user() {
        Scenario::with(Users)
            .when(register(Some(ada())))
            .then_expect_events([registered(ada(), "ada@example.com", "Ada Lovelace")]);
    }

    #[test]
    fn registering_with_an_email_another_user_holds_is_refused() {
        Scenario::with(Users)
            .when(register(Some(bob())))
            .then_expect_error(UserError::EmailTaken {
                email: "ada@example.com".into(),
            });
    }

    #[test]
    fn registering_an_id_twice_is_refused() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(register(Some(ada())))
            .then_expect_error(UserError::AlreadyRegistered(ada()));
    }

    #[test]
    fn updating_records_only_the_fields_that_changed() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(update(
                Some("ada@example.com"),
                Some("Countess"),
                Some(ada()),
            ))
            .then_expect_events([updated(None, Some("Countess"))]);
    }

    #[test]
    fn updating_to_a_free_email_records_it() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(update(Some("Ada@Lovelace.org"), None, Some(ada())))
            .then_expect_events([updated(Some("ada@lovelace.org"), None)]);
    }

    #[test]
    fn updating_to_an_email_another_user_holds_is_refused() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(update(Some("bob@example.com"), Some("Ada L"), Some(bob())))
            .then_expect_error(UserError::EmailTaken {
                email: "bob@example.com".into(),
            });
    }

    #[test]
    fn updating_to_the_same_details_records_nothing() {
        Scenario::with(Users)
            .given([
                registered(ada(), "ada@example.com", "Ada"),
                updated(None, Some("Countess")),
            ])
            .when(update(
                Some("ada@example.com"),
                Some("Countess"),
                Some(ada()),
            ))
            .then_expect_events([]);
    }

    #[test]
    fn updating_an_unknown_user_is_refused() {
        Scenario::with(Users)
            .when(update(None, Some("Ada"), None))
            .then_expect_error(UserError::NotFound(ada()));
    }

    #[test]
    fn a_registration_from_outside_is_recorded_as_it_is() {
        let outside = registered(ada(), "Ada@Example.com", "Ada");
        Scenario::with(Users)
            .when(Command::Record(outside.clone()))
            .then_expect_events([outside]);
    }

    #[test]
    fn a_registration_from_outside_seen_twice_is_recorded_once() {
        let outside = registered(ada(), "ada@example.com", "Ada");
        Scenario::with(Users)
            .given([outside.clone()])
            .when(Command::Record(outside))
            .then_expect_events([]);
    }

    #[test]
    fn a_registration_from_outside_that_contradicts_the_user_is_refused() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(Command::Record(registered(ada(), "ada@example.com", "Bob")))
            .then_expect_error(UserError::AlreadyRegistered(ada()));
    }

    #[test]
    fn an_update_from_outside_is_recorded_for_a_known_user_only() {
        Scenario::with(Users)
            .given([registered(ada(), "ada@example.com", "Ada")])
            .when(Command::Record(updated(None, Some("Countess"))))
            .then_expect_events([updated(None, Some("Countess"))]);
        Scenario::with(Users)
            .when(Command::Record(updated(None, Some("Countess"))))
            .then_expect_error(UserError::NotFound(ada()));
    }

    #[test]
    fn an_event_of_another_topic_is_refused_naming_its_type() {
        Scenario::with(Users)
            .when(Command::Record(samples::order_created()))
            .then_expect_error(UserError::ForeignEvent("order.created"));
    }

    #[test]
    fn an_update_changes_only_the_fields_it_carries() {
        let user = Users.replay(&[
            registered(ada(), "ada@example.com", "Ada"),
            updated(Some("ada@lovelace.org"), None),
        ]);
        assert_eq!(
            user,
            Some(User {
                user_id: ada(),
                email: "ada@lovelace.org".into(),
                name: "Ada".into(),
                registered_at: at(),
            })
        );
    }
}
