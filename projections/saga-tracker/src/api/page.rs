//! Paging through sagas: how many per page (`limit`) and where the next page starts
//! (`cursor`).
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte, the last saga's
//! last event time (epoch milliseconds, 8 bytes big-endian) and its correlation id (16
//! bytes). A saga that receives a step while a client pages moves later in the listing, so
//! it may show again on a later page.

use eventmart_runtime::query::cursor;
use uuid::Uuid;

use crate::saga::Saga;
use crate::store::After;

/// Sagas per page unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most sagas per page.
pub(crate) const MAX_LIMIT: u32 = 100;

/// The only cursor layout so far; a later one gets another byte.
const VERSION: u8 = 1;

/// Bytes of an encoded cursor.
const LEN: usize = 1 + 8 + 16;

/// The cursor of the page after the one that ends with `last`.
pub(crate) fn encode_cursor(last: &Saga) -> String {
    let millis = last.last_event_at.timestamp_millis().to_be_bytes();
    let payload = [&millis[..], last.correlation_id.as_bytes()].concat();
    cursor::encode(VERSION, &payload)
}

/// Reads a cursor back.
pub(crate) fn decode_cursor(text: &str) -> Result<After, String> {
    let payload: [u8; LEN - 1] = cursor::decode(VERSION, text)?;
    let (millis, id) = payload.split_at(8);
    let mut last_event_at = [0u8; 8];
    last_event_at.copy_from_slice(millis);
    Ok(After {
        last_event_at: i64::from_be_bytes(last_event_at),
        correlation_id: Uuid::from_slice(id).map_err(|_| cursor::REFUSAL.to_owned())?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::saga::{State, Step};

    fn saga(last_event_millis: i64) -> Saga {
        let at = Utc.timestamp_millis_opt(last_event_millis).unwrap();
        Saga {
            correlation_id: Uuid::now_v7(),
            order_id: Uuid::now_v7(),
            state: State::Running,
            step: Step::Created,
            waiting_for: None,
            started_at: at,
            last_event_at: at,
            step_count: 1,
        }
    }

    #[test]
    fn a_cursor_reads_back_to_where_the_page_ended() {
        for millis in [0, 1_700_000_000_123, -5] {
            let last = saga(millis);
            let cursor = encode_cursor(&last);
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(
                decode_cursor(&cursor),
                Ok(After {
                    last_event_at: millis,
                    correlation_id: last.correlation_id
                })
            );
        }
    }

    #[test]
    fn garbage_truncated_or_foreign_cursors_are_refused() {
        let cursor = encode_cursor(&saga(42));
        for bad in [
            "",
            "not a cursor!",
            &cursor[..cursor.len() - 2],
            &URL_SAFE_NO_PAD.encode([2u8; LEN]),
            &format!("{cursor}AA"),
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
