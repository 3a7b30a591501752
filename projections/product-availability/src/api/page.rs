//! Paging through the products: how many per page (`limit`) and where the next page starts
//! (`cursor`).
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte and the last
//! product's id (16 bytes).

use eventmart_runtime::query::cursor;
use uuid::Uuid;

/// Products per page unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most products per page.
pub(crate) const MAX_LIMIT: u32 = 100;

/// The only cursor layout so far; a later one gets another byte.
const VERSION: u8 = 1;

/// Bytes of an encoded cursor.
const LEN: usize = 1 + 16;

/// The cursor of the page after the one that ends with product `last`.
pub(crate) fn encode_cursor(last: Uuid) -> String {
    cursor::encode(VERSION, last.as_bytes())
}

/// Reads a cursor back: the product the next page starts after.
pub(crate) fn decode_cursor(text: &str) -> Result<Uuid, String> {
    let payload: [u8; LEN - 1] = cursor::decode(VERSION, text)?;
    Ok(Uuid::from_bytes(payload))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn a_cursor_reads_back_to_where_the_page_ended() {
        for last in [Uuid::nil(), Uuid::now_v7(), Uuid::max()] {
            let cursor = encode_cursor(last);
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(decode_cursor(&cursor), Ok(last));
        }
    }

    #[test]
    fn garbage_truncated_or_foreign_cursors_are_refused() {
        let cursor = encode_cursor(Uuid::now_v7());
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
