//! Paging through sagas: how many per page (`limit`), in what order (`sort`), and where the
//! next page starts (`cursor`).
//!
//! A walk through the pages lists sagas by correlation id, the one thing about a saga that
//! never changes: a saga that gets a step while a client pages keeps its place, so the walk
//! lists it once. Listed by last event time instead, a saga that moves on would leave the
//! pages already read and show again after the cursor; that order is therefore one page only,
//! with no cursor.
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte, the time the
//! walk's first page was read (epoch milliseconds, 8 bytes big-endian: `older_than` and
//! `stuck` keep measuring from it, so that what the walk lists does not drift while it goes)
//! and the last saga's correlation id (16 bytes).

use chrono::{DateTime, Utc};
use eventmart_events::timestamp;
use eventmart_runtime::query::cursor;
use uuid::Uuid;

use crate::saga::Saga;

/// Sagas per page unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most sagas per page.
pub(crate) const MAX_LIMIT: u32 = 100;

/// The cursor layout: version 1 held the last saga's last event time (a walk by last event
/// time), and is refused.
const VERSION: u8 = 2;

/// Bytes of an encoded cursor.
const LEN: usize = 1 + 8 + 16;

/// Why a listing by quiet time takes no cursor.
pub(crate) const QUIET_IS_ONE_PAGE: &str =
    "sort=quiet is one page; walk every saga with sort=started (the default) instead";

/// The order sagas are listed in, as `sort` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sort {
    /// By correlation id (for sagas the services start, the order they started in), a page
    /// at a time.
    Started,
    /// The longest quiet first: one page.
    Quiet,
}

impl Sort {
    /// Every order, `sort`'s default first.
    pub(crate) const ALL: [Sort; 2] = [Sort::Started, Sort::Quiet];

    /// The name `sort` takes: `started` or `quiet`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Sort::Started => "started",
            Sort::Quiet => "quiet",
        }
    }

    /// Reads `started` or `quiet`.
    pub(crate) fn parse(text: &str) -> Result<Sort, String> {
        Sort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == text)
            .ok_or_else(|| format!("must be started or quiet, got {text:?}"))
    }
}

/// Where a walk through the pages stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// When the walk's first page was read: the clock every page measures quiet time from.
    pub(crate) as_of: DateTime<Utc>,
    /// The previous page's last saga.
    pub(crate) after: Uuid,
}

/// The cursor of the page after the one that ends with `last`, in a walk begun at `as_of`.
pub(crate) fn encode_cursor(as_of: DateTime<Utc>, last: &Saga) -> String {
    let millis = as_of.timestamp_millis().to_be_bytes();
    let payload = [&millis[..], last.correlation_id.as_bytes()].concat();
    cursor::encode(VERSION, &payload)
}

/// Reads a cursor back.
pub(crate) fn decode_cursor(text: &str) -> Result<Cursor, String> {
    let payload: [u8; LEN - 1] = cursor::decode(VERSION, text)?;
    let (millis, id) = payload.split_at(8);
    let mut as_of = [0u8; 8];
    as_of.copy_from_slice(millis);
    Ok(Cursor {
        as_of: timestamp::from_millis(i64::from_be_bytes(as_of))
            .ok_or_else(|| cursor::REFUSAL.to_owned())?,
        after: Uuid::from_slice(id).map_err(|_| cursor::REFUSAL.to_owned())?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::TimeZone;

    use super::*;
    use crate::saga::{State, Step};

    fn saga() -> Saga {
        let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
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
    fn a_cursor_reads_back_to_where_the_page_ended_and_when_the_walk_began() {
        for millis in [0, 1_700_000_000_123, -5] {
            let (as_of, last) = (Utc.timestamp_millis_opt(millis).unwrap(), saga());
            let cursor = encode_cursor(as_of, &last);
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(
                decode_cursor(&cursor),
                Ok(Cursor {
                    as_of,
                    after: last.correlation_id
                })
            );
        }
    }

    #[test]
    fn garbage_truncated_foreign_or_first_layout_cursors_are_refused() {
        let as_of = Utc.timestamp_millis_opt(42).unwrap();
        let cursor = encode_cursor(as_of, &saga());
        let first_layout = cursor::encode(1, &[0; LEN - 1]);
        for bad in [
            "",
            "not a cursor!",
            &cursor[..cursor.len() - 2],
            &URL_SAFE_NO_PAD.encode([3u8; LEN]),
            &format!("{cursor}AA"),
            &first_layout,
        ] {
            assert!(decode_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn listings_sort_by_start_unless_told_quiet() {
        assert_eq!(Sort::ALL[0], Sort::Started);
        assert_eq!(Sort::parse("started"), Ok(Sort::Started));
        assert_eq!(Sort::parse("quiet"), Ok(Sort::Quiet));
        for bad in ["", "Quiet", "last_event_at"] {
            assert!(Sort::parse(bad).is_err(), "{bad:?}");
        }
    }
}
