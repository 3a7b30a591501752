//! The framing of an opaque paging cursor: base64url (no padding) of a version byte and a
//! fixed-length payload. What the payload holds is each read model's own layout.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a cursor is refused: it was not handed out as one, or by another layout.
pub const REFUSAL: &str = "is not a cursor; pass the next_cursor of the previous page unchanged";

/// `payload` under layout `version`, as text a client hands back unchanged.
pub fn encode(version: u8, payload: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(1 + payload.len());
    bytes.push(version);
    bytes.extend_from_slice(payload);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The payload of a cursor of layout `version`; [`REFUSAL`] unless `text` is one, of
/// exactly `N` bytes.
pub fn decode<const N: usize>(version: u8, text: &str) -> Result<[u8; N], String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| REFUSAL.to_owned())?;
    match bytes.split_first() {
        Some((&found, payload)) if found == version => {
            payload.try_into().map_err(|_| REFUSAL.to_owned())
        }
        _ => Err(REFUSAL.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_under_its_version() {
        let cursor = encode(3, &[0, 1, 254, 255]);
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{cursor}"
        );
        assert_eq!(decode::<4>(3, &cursor), Ok([0, 1, 254, 255]));
    }

    #[test]
    fn garbage_another_version_or_another_length_is_refused() {
        let cursor = encode(1, &[7; 4]);
        for (bad, version) in [
            ("", 1),
            ("not a cursor!", 1),
            (cursor.as_str(), 2),
            (&cursor[..cursor.len() - 2], 1),
            (&format!("{cursor}AA"), 1),
        ] {
            assert_eq!(
                decode::<4>(version, bad),
                Err(REFUSAL.to_owned()),
                "{bad:?}"
            );
        }
    }
}
