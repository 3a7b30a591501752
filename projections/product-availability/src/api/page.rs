//! Paging through the products: how many per page (`limit`) and where the next page starts
//! (`cursor`).
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte and the last
//! product's id (16 bytes).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    let mut bytes = Vec::with_capacity(LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(last.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a cursor back: the product the next page starts after.
pub(crate) fn decode_cursor(text: &str) -> Result<Uuid, String> {
    const REFUSAL: &str = "is not a cursor; pass the next_cursor of the previous page unchanged";
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| REFUSAL.to_owned())?;
    if bytes.len() != LEN || bytes[0] != VERSION {
        return Err(REFUSAL.to_owned());
    }
    Uuid::from_slice(&bytes[1..]).map_err(|_| REFUSAL.to_owned())
}

#[cfg(test)]
mod tests {
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
