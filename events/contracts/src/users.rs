//! Events of the `users` topic, keyed by user id. Schemas: `schemas/users/*.avsc`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `user.registered`: a customer account was created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegistered {
    /// The new user's id; the aggregate id.
    pub user_id: Uuid,
    /// The user's email address.
    pub email: String,
    /// The user's display name.
    pub name: String,
    /// When the account was created.
    #[serde(with = "crate::timestamp")]
    pub registered_at: DateTime<Utc>,
}

impl UserRegistered {
    /// The aggregate this event belongs to: the user.
    pub fn aggregate_id(&self) -> Uuid {
        self.user_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.registered_at
    }
}

/// `user.updated`: a customer changed their profile; only changed fields are set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    /// The user's id; the aggregate id.
    pub user_id: Uuid,
    /// The new email address, if it changed.
    pub email: Option<String>,
    /// The new display name, if it changed.
    pub name: Option<String>,
    /// When the profile changed.
    #[serde(with = "crate::timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl UserUpdated {
    /// The aggregate this event belongs to: the user.
    pub fn aggregate_id(&self) -> Uuid {
        self.user_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.updated_at
    }
}
