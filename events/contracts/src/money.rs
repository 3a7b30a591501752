//! Money: an integer amount of minor units and an ISO 4217 currency code. Never `f64`.
//!
//! On the wire this is the Avro record `eventmart.common.Money {cents: long, currency: string}`;
//! in JSON it is `{"cents": 1999, "currency": "EUR"}`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in the minor unit of its currency (cents for EUR and USD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount in minor units; negative amounts are representable (e.g. corrections).
    pub cents: i64,
    /// The currency the amount is in.
    pub currency: Currency,
}

impl Money {
    /// `cents` minor units of `currency`.
    pub fn new(cents: i64, currency: Currency) -> Self {
        Money { cents, currency }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cents, self.currency)
    }
}

/// An ISO 4217 currency code: exactly three uppercase ASCII letters, such as `EUR`.
///
/// Only the shape is checked, not membership of the ISO list: that is a domain decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// A string that is not three uppercase ASCII letters was given as a currency.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("currency must be an ISO 4217 code of three uppercase letters such as \"EUR\", got {0:?}")]
pub struct InvalidCurrency(pub String);

impl Currency {
    /// The euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// The US dollar.
    pub const USD: Currency = Currency(*b"USD");

    /// Parses a code such as `"EUR"`; anything but three uppercase ASCII letters is refused.
    pub fn parse(code: &str) -> Result<Currency, InvalidCurrency> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(InvalidCurrency(code.to_owned())),
        }
    }

    /// The code, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        // Always ASCII by construction, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = InvalidCurrency;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_uppercase_letters_are_a_currency() {
        assert_eq!(Currency::parse("EUR"), Ok(Currency::EUR));
        assert_eq!(
            Currency::parse("JPY").map(|c| c.to_string()),
            Ok("JPY".into())
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["eur", "EU", "EURO", "", "E1R", "ÉUR"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn money_serializes_as_cents_and_code() {
        let money = Money::new(1999, Currency::EUR);
        let json = serde_json::to_value(money).unwrap();
        assert_eq!(json, serde_json::json!({"cents": 1999, "currency": "EUR"}));
        assert_eq!(serde_json::from_value::<Money>(json).unwrap(), money);
    }

    #[test]
    fn a_malformed_currency_does_not_deserialize() {
        let json = serde_json::json!({"cents": 1, "currency": "euro"});
        let err = serde_json::from_value::<Money>(json).unwrap_err();
        assert!(err.to_string().contains("ISO 4217"), "{err}");
    }
}
