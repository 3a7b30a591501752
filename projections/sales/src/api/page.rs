//! Paging through a ranking: how many products per page (`limit`) and where the next page
//! starts (`cursor`).
//!
//! A cursor is opaque to clients: base64url (no padding) of a version byte, what the ranking
//! is by (0 units, 1 revenue), the last product's figure (8 bytes big-endian) and its id
//! (16 bytes). A cursor only continues a ranking by the same figure.

use eventmart_runtime::query::cursor;
use uuid::Uuid;

use crate::store::figures::After;

/// Products per page unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most products per page.
pub(crate) const MAX_LIMIT: u32 = 100;

/// The only cursor layout so far; a later one gets another byte.
const VERSION: u8 = 1;

/// Bytes of an encoded cursor.
const LEN: usize = 1 + 1 + 8 + 16;

/// What a ranking is by, as `by` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum By {
    /// Units sold.
    Units,
    /// Revenue.
    Revenue,
}

impl By {
    /// Every ranking, `by`'s default first.
    pub(crate) const ALL: [By; 2] = [By::Revenue, By::Units];

    /// The name `by` takes: `revenue` or `units`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            By::Units => "units",
            By::Revenue => "revenue",
        }
    }

    /// Reads `revenue` or `units`.
    pub(crate) fn parse(text: &str) -> Result<By, String> {
        By::ALL
            .into_iter()
            .find(|by| by.as_str() == text)
            .ok_or_else(|| format!("must be revenue or units, got {text:?}"))
    }

    fn byte(self) -> u8 {
        match self {
            By::Units => 0,
            By::Revenue => 1,
        }
    }
}

/// The cursor of the page of a ranking `by` that ends with `last`.
pub(crate) fn encode_cursor(by: By, last: After) -> String {
    let payload = [
        &[by.byte()][..],
        &last.figure.to_be_bytes(),
        last.product_id.as_bytes(),
    ]
    .concat();
    cursor::encode(VERSION, &payload)
}

/// Reads a cursor of a ranking `by` back.
pub(crate) fn decode_cursor(by: By, text: &str) -> Result<After, String> {
    let payload: [u8; LEN - 1] = cursor::decode(VERSION, text)?;
    if payload[0] != by.byte() {
        return Err(format!(
            "continues another ranking than by={}; pass the same by as the previous page",
            by.as_str()
        ));
    }
    let (figure, id) = payload[1..].split_at(8);
    let mut be = [0u8; 8];
    be.copy_from_slice(figure);
    Ok(After {
        figure: i64::from_be_bytes(be),
        product_id: Uuid::from_slice(id).map_err(|_| cursor::REFUSAL.to_owned())?,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn a_cursor_reads_back_to_where_the_page_ended() {
        for (by, figure) in [(By::Units, 0), (By::Revenue, 1_999_999), (By::Units, -5)] {
            let last = After {
                figure,
                product_id: Uuid::now_v7(),
            };
            let cursor = encode_cursor(by, last);
            assert!(
                cursor
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{cursor}"
            );
            assert_eq!(decode_cursor(by, &cursor), Ok(last));
        }
    }

    #[test]
    fn a_cursor_of_another_ranking_is_refused() {
        let last = After {
            figure: 3,
            product_id: Uuid::now_v7(),
        };
        let cursor = encode_cursor(By::Units, last);
        let refusal = decode_cursor(By::Revenue, &cursor).unwrap_err();
        assert!(refusal.contains("by=revenue"), "{refusal}");
    }

    #[test]
    fn garbage_truncated_or_foreign_cursors_are_refused() {
        let cursor = encode_cursor(
            By::Revenue,
            After {
                figure: 42,
                product_id: Uuid::now_v7(),
            },
        );
        for bad in [
            "",
            "not a cursor!",
            &cursor[..cursor.len() - 2],
            &URL_SAFE_NO_PAD.encode([2u8; LEN]),
            &format!("{cursor}AA"),
        ] {
            assert!(decode_cursor(By::Revenue, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rankings_are_named_revenue_or_units() {
        assert_eq!(By::parse("revenue"), Ok(By::Revenue));
        assert_eq!(By::parse("units"), Ok(By::Units));
        for bad in ["", "Revenue", "orders"] {
            assert!(By::parse(bad).is_err(), "{bad:?}");
        }
    }
}
