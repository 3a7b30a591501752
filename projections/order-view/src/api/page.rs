//! Paging through a customer's orders: how many per page (`limit`) and where the next page
//! starts (`cursor`).
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte, the last order's
//! creation time (epoch milliseconds, 8 bytes big-endian) and its id (16 bytes).

use eventmart_runtime::query::cursor;
use uuid::Uuid;

use crate::store::After;
use crate::view::OrderView;

/// Orders per page unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most orders per page.
pub(crate) const MAX_LIMIT: u32 = 100;

/// The only cursor layout so far; a later one gets another byte.
const VERSION: u8 = 1;

/// Bytes of an encoded cursor.
const LEN: usize = 1 + 8 + 16;

/// The cursor of the page after the one that ends with `last`; `None` if `last` has no
/// creation time (such orders are never listed).
pub(crate) fn encode_cursor(last: &OrderView) -> Option<String> {
    let created_at = last.placed.as_ref()?.created_at.timestamp_millis();
    let payload = [&created_at.to_be_bytes()[..], last.order_id.as_bytes()].concat();
    Some(cursor::encode(VERSION, &payload))
}

/// Reads a cursor back.
pub(crate) fn decode_cursor(text: &str) -> Result<After, String> {
    let payload: [u8; LEN - 1] = cursor::decode(VERSION, text)?;
    let (millis, id) = payload.split_at(8);
    let mut created_at = [0u8; 8];
    created_at.copy_from_slice(millis);
    Ok(After {
        created_at: i64::from_be_bytes(created_at),
        order_id: Uuid::from_slice(id).map_err(|_| cursor::REFUSAL.to_owned())?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{TimeZone, Utc};
    use eventmart_events::{Currency, Money};

    use super::*;
    use crate::view::{Placed, Status};

    fn order(created_at_millis: i64) -> OrderView {
        let created_at = Utc.timestamp_millis_opt(created_at_millis).unwrap();
        OrderView {
            order_id: Uuid::now_v7(),
            status: Status::Pending,
            reason: None,
            payment_id: None,
            placed: Some(Placed {
                user_id: Uuid::now_v7(),
                total: Money::new(100, Currency::EUR),
                lines: vec![],
                created_at,
            }),
            updated_at: created_at,
        }
    }

    #[test]
    fn a_cursor_reads_back_to_where_the_page_ended() {
        for millis in [0, 1_700_000_000_123, -5] {
            let last = order(millis);
            let cursor = encode_cursor(&last).unwrap();
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(
                decode_cursor(&cursor),
                Ok(After {
                    created_at: millis,
                    order_id: last.order_id
                })
            );
        }
    }

    #[test]
    fn an_order_not_placed_yet_ends_no_page() {
        let mut last = order(0);
        last.placed = None;
        assert_eq!(encode_cursor(&last), None);
    }

    #[test]
    fn garbage_truncated_or_foreign_cursors_are_refused() {
        let cursor = encode_cursor(&order(42)).unwrap();
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
