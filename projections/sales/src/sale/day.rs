//! A calendar day in UTC, as the figures are grouped by and as the API names it:
//! `YYYY-MM-DD`.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A UTC calendar day from year 0000 to 9999, so that its `YYYY-MM-DD` text sorts as the
/// days do (the tables compare days as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

/// Text that is not a `YYYY-MM-DD` date.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be a date written YYYY-MM-DD, got {0:?}")]
pub struct InvalidDay(pub String);

/// An instant whose year has more or fewer than four digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is outside the years 0000 to 9999 the figures are kept for")]
pub struct DayOutOfRange(pub DateTime<Utc>);

impl Day {
    /// The first day there can be.
    pub const FIRST: Day = Day(NaiveDate::from_ymd_opt(0, 1, 1).unwrap());

    /// The last day there can be.
    pub const LAST: Day = Day(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap());

    /// The UTC date of `at`.
    pub fn of(at: DateTime<Utc>) -> Result<Day, DayOutOfRange> {
        let day = at.date_naive();
        if (0..=9999).contains(&day.year()) {
            Ok(Day(day))
        } else {
            Err(DayOutOfRange(at))
        }
    }

    /// Reads `YYYY-MM-DD`, exactly: four-digit year, two-digit month and day, a real date.
    pub fn parse(text: &str) -> Result<Day, InvalidDay> {
        let invalid = || InvalidDay(text.to_owned());
        let well_formed = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        if !well_formed {
            return Err(invalid());
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Day)
            .map_err(|_| invalid())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_day_is_the_utc_date_of_an_instant() {
        let late = Utc.with_ymd_and_hms(2024, 5, 1, 23, 59, 59).unwrap();
        assert_eq!(Day::of(late).unwrap().to_string(), "2024-05-01");
        let early = Utc.with_ymd_and_hms(2024, 5, 2, 0, 0, 0).unwrap();
        assert_eq!(Day::of(early).unwrap().to_string(), "2024-05-02");
    }

    #[test]
    fn days_read_back_from_what_they_print() {
        for day in [Day::FIRST, Day::LAST, Day::parse("2024-02-29").unwrap()] {
            assert_eq!(Day::parse(&day.to_string()), Ok(day));
        }
        assert_eq!(Day::FIRST.to_string(), "0000-01-01");
        assert_eq!(Day::LAST.to_string(), "9999-12-31");
    }

    #[test]
    fn anything_but_a_real_yyyy_mm_dd_date_is_refused() {
        for bad in [
            "",
            "2024-5-01",
            "2024-05-1",
            "24-05-01",
            "2024/05/01",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-05-01T00:00:00Z",
            " 2024-05-01",
            "+2024-05-1",
            "yesterday",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instants_outside_four_digit_years_have_no_day() {
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(Day::of(far), Err(DayOutOfRange(far)));
        let before = Utc.with_ymd_and_hms(-1, 12, 31, 0, 0, 0).unwrap();
        assert!(Day::of(before).is_err());
    }

    #[test]
    fn days_sort_as_their_text_does() {
        let days = ["0999-12-31", "1000-01-01", "2024-01-31", "2024-02-01"];
        let parsed: Vec<Day> = days.iter().map(|d| Day::parse(d).unwrap()).collect();
        let mut sorted = parsed.clone();
        sorted.sort();
        assert_eq!(sorted, parsed);
    }
}
