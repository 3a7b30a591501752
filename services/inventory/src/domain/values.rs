//! Values a stock command is made of, each built only through a `parse` that refuses what the
//! rules do not allow, so that a command holding one needs no further check.

use std::fmt;

/// Why a value was refused: what is expected, for the caller to fix the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

/// Units received in one restock: 1 to [`Quantity::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    /// The most units one restock may bring.
    pub const MAX: i32 = 1_000_000;

    /// `n` units, if `n` is between 1 and [`Quantity::MAX`].
    pub fn parse(n: i64) -> Result<Self, InvalidValue> {
        match i32::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(Self(n)),
            _ => Err(InvalidValue(format!(
                "must be a whole number between 1 and {}, got {n}",
                Self::MAX
            ))),
        }
    }

    /// The number of units.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A signed, non-zero correction of the stock on hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delta(i32);

impl Delta {
    /// `n`, if it is not zero and fits in 32 bits.
    pub fn parse(n: i64) -> Result<Self, InvalidValue> {
        match i32::try_from(n) {
            Ok(0) => Err(InvalidValue(
                "must not be zero: give the units to add (positive) or remove (negative)"
                    .to_owned(),
            )),
            Ok(n) => Ok(Self(n)),
            Err(_) => Err(InvalidValue(format!(
                "must be between {} and {}, got {n}",
                i32::MIN,
                i32::MAX
            ))),
        }
    }

    /// The signed number of units.
    pub fn get(self) -> i32 {
        self.0
    }
}

/// Why stock was adjusted, for people: 1 to [`Reason::MAX_CHARS`] characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// The longest reason accepted, in characters.
    pub const MAX_CHARS: usize = 200;

    /// `text` without surrounding blanks, if something is left and it is not too long.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 {
            Err(InvalidValue("must not be empty".to_owned()))
        } else if chars > Self::MAX_CHARS {
            Err(InvalidValue(format!(
                "must be at most {} characters, got {chars}",
                Self::MAX_CHARS
            )))
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_is_between_one_and_a_million() {
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::parse(1_000_000).map(Quantity::get), Ok(1_000_000));
        for n in [0, -1, 1_000_001, i64::MAX] {
            assert!(Quantity::parse(n).is_err(), "{n}");
        }
    }

    #[test]
    fn a_delta_is_signed_and_never_zero() {
        assert_eq!(Delta::parse(-3).map(Delta::get), Ok(-3));
        assert_eq!(Delta::parse(7).map(Delta::get), Ok(7));
        assert!(Delta::parse(0).is_err());
        assert!(Delta::parse(i64::from(i32::MAX) + 1).is_err());
    }

    #[test]
    fn a_reason_is_trimmed_and_neither_blank_nor_too_long() {
        assert_eq!(Reason::parse("  damaged ").unwrap().as_str(), "damaged");
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse(&"é".repeat(200)).is_ok());
        assert!(Reason::parse(&"x".repeat(201)).is_err());
    }
}
