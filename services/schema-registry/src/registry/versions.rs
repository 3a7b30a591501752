//! Which versions of a subject a request sees, and which one it names.
//!
//! Soft-deleted versions are hidden unless asked for; a subject whose versions are all hidden
//! does not exist as far as the request is concerned.

use crate::store::VersionRow;

use super::Error;

/// A version named in a path: a number, or the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSpec {
    /// The highest version (`latest` or `-1`).
    Latest,
    /// Version `n`, from 1.
    Number(i64),
}

impl VersionSpec {
    /// Parses `latest`, `-1` or a number from 1 to 2³¹−1; anything else is not a version.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("latest") || text == "-1" {
            return Some(Self::Latest);
        }
        match text.parse::<i32>() {
            Ok(number) if number >= 1 => Some(Self::Number(number.into())),
            _ => None,
        }
    }
}

/// The rows a request sees: live ones, or all with `include_deleted`.
pub(super) fn visible(rows: &[VersionRow], include_deleted: bool) -> Vec<VersionRow> {
    rows.iter()
        .filter(|row| include_deleted || !row.deleted)
        .copied()
        .collect()
}

/// The row `spec` names among the visible rows of `subject`.
pub(super) fn select(
    subject: &str,
    rows: &[VersionRow],
    spec: VersionSpec,
    include_deleted: bool,
) -> Result<VersionRow, Error> {
    let rows = visible(rows, include_deleted);
    let found = match spec {
        _ if rows.is_empty() => return Err(Error::SubjectNotFound(subject.to_owned())),
        VersionSpec::Latest => rows.last(),
        VersionSpec::Number(number) => rows.iter().find(|row| row.version == number),
    };
    match (found, spec) {
        (Some(row), _) => Ok(*row),
        (None, VersionSpec::Number(number)) => Err(Error::VersionNotFound(number)),
        (None, VersionSpec::Latest) => Err(Error::SubjectNotFound(subject.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: i64, deleted: bool) -> VersionRow {
        VersionRow {
            version,
            schema_id: version * 10,
            deleted,
        }
    }

    #[test]
    fn versions_are_latest_minus_one_or_positive_numbers() {
        // given / when / then
        assert_eq!(VersionSpec::parse("latest"), Some(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("-1"), Some(VersionSpec::Latest));
        assert_eq!(VersionSpec::parse("7"), Some(VersionSpec::Number(7)));
        for invalid in ["0", "-2", "one", "", "2147483648", "1.0"] {
            assert_eq!(VersionSpec::parse(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn latest_skips_soft_deleted_versions_unless_asked_for() {
        // given
        let rows = [row(1, false), row(2, true)];
        // when
        let live = select("s", &rows, VersionSpec::Latest, false).unwrap();
        let any = select("s", &rows, VersionSpec::Latest, true).unwrap();
        // then
        assert_eq!(live.version, 1);
        assert_eq!(any.version, 2);
    }

    #[test]
    fn a_subject_with_only_soft_deleted_versions_is_not_found() {
        // given
        let rows = [row(1, true)];
        // when
        let result = select("s", &rows, VersionSpec::Number(1), false);
        // then
        assert!(matches!(result, Err(Error::SubjectNotFound(subject)) if subject == "s"));
    }

    #[test]
    fn a_missing_version_of_a_live_subject_is_a_missing_version() {
        // given
        let rows = [row(1, false), row(2, true)];
        // when
        let result = select("s", &rows, VersionSpec::Number(2), false);
        // then
        assert!(matches!(result, Err(Error::VersionNotFound(2))));
    }
}
