//! Position tokens: what a command's caller hands to a read model to wait until the
//! command's effects are visible there.
//!
//! A token names the command's events by id; a read model is caught up with it once it has
//! processed every one of them. It is opaque to clients: base64url (no padding) of a version
//! byte followed by the 16 bytes of each event id.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// The only layout so far; a later one gets another byte.
const VERSION: u8 = 1;

/// Most event ids a token may carry, so that a token read from a query string stays small.
pub const MAX_EVENTS: usize = 256;

/// The events a command appended, as a read model waits for them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PositionToken {
    event_ids: Vec<Uuid>,
}

/// A string that is no position token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a position token ({0}); pass the `position` of a command's response unchanged")]
pub struct InvalidPositionToken(&'static str);

impl PositionToken {
    /// The token for `event_ids`.
    pub fn new(event_ids: Vec<Uuid>) -> Self {
        Self { event_ids }
    }

    /// The token text for `event_ids`.
    pub fn encode(event_ids: &[Uuid]) -> String {
        let mut bytes = Vec::with_capacity(1 + 16 * event_ids.len());
        bytes.push(VERSION);
        for id in event_ids {
            bytes.extend_from_slice(id.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a token's text back.
    pub fn decode(token: &str) -> Result<Self, InvalidPositionToken> {
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| InvalidPositionToken("not base64url"))?;
        let Some((&version, ids)) = bytes.split_first() else {
            return Err(InvalidPositionToken("empty"));
        };
        if version != VERSION {
            return Err(InvalidPositionToken("unknown version"));
        }
        if ids.len() % 16 != 0 {
            return Err(InvalidPositionToken("truncated"));
        }
        if ids.len() / 16 > MAX_EVENTS {
            return Err(InvalidPositionToken("too many events"));
        }
        let event_ids = ids
            .chunks_exact(16)
            .map(|chunk| Uuid::from_slice(chunk).unwrap_or_default())
            .collect();
        Ok(Self { event_ids })
    }

    /// The ids of the events to wait for.
    pub fn event_ids(&self) -> &[Uuid] {
        &self.event_ids
    }
}

impl fmt::Display for PositionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::encode(&self.event_ids))
    }
}

impl FromStr for PositionToken {
    type Err = InvalidPositionToken;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::decode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_to_the_same_event_ids() {
        let ids = vec![Uuid::now_v7(), Uuid::now_v7(), Uuid::new_v4()];
        let token = PositionToken::encode(&ids);
        assert_eq!(PositionToken::decode(&token).unwrap().event_ids(), ids);
        assert_eq!(token.parse::<PositionToken>().unwrap().to_string(), token);
    }

    #[test]
    fn a_token_is_url_safe_text() {
        let token = PositionToken::encode(&[Uuid::from_u128(u128::MAX), Uuid::nil()]);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
    }

    #[test]
    fn a_command_without_events_has_a_token_too() {
        let token = PositionToken::encode(&[]);
        assert!(
            PositionToken::decode(&token)
                .unwrap()
                .event_ids()
                .is_empty()
        );
    }

    #[test]
    fn garbage_truncated_or_foreign_tokens_are_refused() {
        let token = PositionToken::encode(&[Uuid::now_v7()]);
        assert!(PositionToken::decode("not a token!").is_err());
        assert!(PositionToken::decode("").is_err());
        assert!(PositionToken::decode(&token[..token.len() - 3]).is_err());
        assert!(PositionToken::decode(&URL_SAFE_NO_PAD.encode([2u8; 17])).is_err());
    }
}
