//! The values a product is made of, each built only through `parse`: a [`Sku`], a
//! [`ProductName`] and a [`Price`]. Pure: no I/O.

use eventmart_events::{Currency, Money};

/// Why a value given for a field is not acceptable; says what is expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(String);

/// A stock-keeping unit: trimmed, uppercased, 1 to [`Sku::MAX_LEN`] characters of `A-Z`,
/// `0-9`, `.`, `_` and `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// The longest SKU accepted, in characters.
    pub const MAX_LEN: usize = 64;

    /// Parses a SKU as a person types it (`" tee-m "` → `TEE-M`).
    pub fn parse(raw: &str) -> Result<Sku, InvalidValue> {
        let sku = Self::normalise(raw);
        let allowed = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || "._-".contains(c);
        if sku.is_empty() || sku.chars().count() > Self::MAX_LEN {
            Err(InvalidValue("must be 1 to 64 characters long".into()))
        } else if !sku.chars().all(allowed) {
            Err(InvalidValue(format!(
                "may hold only letters, digits, '.', '_' and '-', such as \"TEE-M\"; got {sku:?}"
            )))
        } else {
            Ok(Sku(sku))
        }
    }

    /// The form a SKU is compared and claimed in: trimmed and uppercased. Used as is for
    /// SKUs in events from outside, which are recorded without being validated.
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_uppercase()
    }

    /// The SKU.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's display name: trimmed, 1 to [`ProductName::MAX_LEN`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 200;

    /// Parses a name as a person types it.
    pub fn parse(raw: &str) -> Result<ProductName, InvalidValue> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(InvalidValue("must not be empty".into())),
            n if n > Self::MAX_LEN => Err(InvalidValue("must be at most 200 characters".into())),
            _ => Ok(ProductName(name.to_owned())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A unit price: a positive number of cents in a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price(Money);

/// Which part of a price is wrong, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidPrice {
    /// `cents` or `currency`.
    pub field: &'static str,
    /// What is expected.
    pub reason: InvalidValue,
}

impl Price {
    /// Parses `cents` of `currency` (an ISO 4217 code such as `EUR`).
    pub fn parse(cents: i64, currency: &str) -> Result<Price, InvalidPrice> {
        if cents <= 0 {
            return Err(InvalidPrice {
                field: "cents",
                reason: InvalidValue(format!("must be a positive whole number, got {cents}")),
            });
        }
        let currency = Currency::parse(currency).map_err(|e| InvalidPrice {
            field: "currency",
            reason: InvalidValue(e.to_string()),
        })?;
        Ok(Price(Money::new(cents, currency)))
    }

    /// The amount.
    pub fn money(&self) -> Money {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sku_is_trimmed_and_uppercased() {
        assert_eq!(Sku::parse(" tee_m.v2-a ").unwrap().as_str(), "TEE_M.V2-A");
    }

    #[test]
    fn a_sku_that_is_empty_too_long_or_has_other_characters_is_refused() {
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
        for bad in ["", "   ", "TEE M", "TEE/M", "TÉE", &"A".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_product_name_is_trimmed_and_between_1_and_200_characters() {
        assert_eq!(ProductName::parse(" Mug ").unwrap().as_str(), "Mug");
        assert!(ProductName::parse(" ").is_err());
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
    }

    #[test]
    fn a_price_is_positive_cents_in_an_iso_currency() {
        assert_eq!(
            Price::parse(1, "USD").unwrap().money(),
            Money::new(1, Currency::USD)
        );
        assert_eq!(Price::parse(0, "EUR").unwrap_err().field, "cents");
        assert_eq!(Price::parse(-5, "EUR").unwrap_err().field, "cents");
        assert_eq!(Price::parse(100, "euro").unwrap_err().field, "currency");
    }
}
