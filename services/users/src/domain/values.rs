//! The values a user's profile is made of, each built only through `parse`: an [`Email`]
//! and a [`Name`]. Pure: no I/O.

/// Why a value given for a field is not acceptable; says what is expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(&'static str);

/// An email address: trimmed, lowercased, one `@` between a non-empty local part and a
/// domain with a dot, no whitespace, at most [`Email::MAX_LEN`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// The longest address accepted, in characters.
    pub const MAX_LEN: usize = 254;

    /// Parses an address as a person types it (`" Ada@Example.com "` → `ada@example.com`).
    pub fn parse(raw: &str) -> Result<Email, InvalidValue> {
        let email = Self::normalise(raw);
        if email.chars().count() > Self::MAX_LEN {
            return Err(InvalidValue("must be at most 254 characters"));
        }
        if email.chars().any(char::is_whitespace) {
            return Err(InvalidValue(
                "must not contain spaces; give an address such as \"ada@example.com\"",
            ));
        }
        let mut parts = email.split('@');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(local), Some(domain), None) if !local.is_empty() && domain.contains('.') => {
                Ok(Email(email))
            }
            _ => Err(InvalidValue(
                "must be an address such as \"ada@example.com\": one '@' between a name and a \
                 domain with a dot",
            )),
        }
    }

    /// The form an address is compared and claimed in: trimmed and lowercased. Used as is
    /// for addresses in events from outside, which are recorded without being validated.
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: trimmed, 1 to [`Name::MAX_LEN`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    /// The longest name accepted, in characters.
    pub const MAX_LEN: usize = 100;

    /// Parses a name as a person types it.
    pub fn parse(raw: &str) -> Result<Name, InvalidValue> {
        let name = raw.trim();
        match name.chars().count() {
            0 => Err(InvalidValue("must not be empty")),
            n if n > Self::MAX_LEN => Err(InvalidValue("must be at most 100 characters")),
            _ => Ok(Name(name.to_owned())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(raw: &str) -> Email {
        Email::parse(raw).unwrap()
    }

    fn name(raw: &str) -> Name {
        Name::parse(raw).unwrap()
    }

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        assert_eq!(email("  Ada@Example.COM ").as_str(), "ada@example.com");
    }

    #[test]
    fn an_email_without_one_at_a_local_part_and_a_dotted_domain_is_refused() {
        for bad in [
            "nope",
            "@example.com",
            "ada@localhost",
            "ada@@example.com",
            "a@b@example.com",
            "ada lovelace@example.com",
            "",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_email_of_254_characters_is_the_longest_accepted() {
        let longest = format!("{}@example.com", "a".repeat(254 - 12));
        assert_eq!(longest.len(), 254);
        assert!(Email::parse(&longest).is_ok());
        assert!(Email::parse(&format!("a{longest}")).is_err());
    }

    #[test]
    fn a_name_is_trimmed_and_between_1_and_100_characters() {
        assert_eq!(name("  Ada ").as_str(), "Ada");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse(&"é".repeat(100)).is_ok());
        assert!(Name::parse(&"é".repeat(101)).is_err());
    }
}
