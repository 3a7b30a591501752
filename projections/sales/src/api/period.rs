//! `from` and `to`: the days a read covers, both included, both optional.

use eventmart_runtime::query::{Params, QueryError};
use serde_json::{Value, json};

use crate::sale::Day;
use crate::store::figures::Period;

/// The days a read asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Asked {
    /// `from`, if given.
    pub(super) from: Option<Day>,
    /// `to`, if given.
    pub(super) to: Option<Day>,
}

impl Asked {
    /// `from` and `to` of `params`: a 400 naming `from` or `to` if one is no date, naming
    /// `from` if it comes after `to`.
    pub(super) fn of(params: &Params) -> Result<Asked, QueryError> {
        let from = params.parse("from", Day::parse)?;
        let to = params.parse("to", Day::parse)?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(QueryError::invalid(
                "from",
                format!("must not come after to ({to}), got {from}"),
            ));
        }
        Ok(Asked { from, to })
    }

    /// The period: from the first day there can be and to the last unless bounded.
    pub(super) fn period(self) -> Period {
        Period {
            from: self.from.unwrap_or(Day::FIRST),
            to: self.to.unwrap_or(Day::LAST),
        }
    }

    /// `from` and `to` as answered: `null` where not given.
    pub(super) fn to_json(self) -> (Value, Value) {
        (
            json!(self.from.map(|d| d.to_string())),
            json!(self.to.map(|d| d.to_string())),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::extract::Query;

    use super::*;

    fn asked(pairs: &[(&str, &str)]) -> Result<Asked, QueryError> {
        let query: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Asked::of(&Params::of(Ok(Query(query)), &["from", "to"])?)
    }

    fn field(error: QueryError) -> String {
        match error {
            QueryError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_period_without_bounds_covers_every_day() {
        let all = asked(&[]).unwrap();
        assert_eq!(
            all.period(),
            Period {
                from: Day::FIRST,
                to: Day::LAST
            }
        );
        assert_eq!(all.to_json(), (Value::Null, Value::Null));
    }

    #[test]
    fn bounds_are_included_and_either_may_be_left_out() {
        let may = asked(&[("from", "2024-05-01"), ("to", "2024-05-31")]).unwrap();
        assert_eq!(may.to_json(), (json!("2024-05-01"), json!("2024-05-31")));
        let one_day = asked(&[("from", "2024-05-01"), ("to", "2024-05-01")]).unwrap();
        assert_eq!(one_day.period().from, one_day.period().to);
        let since = asked(&[("from", "2024-05-01")]).unwrap();
        assert_eq!(since.period().to, Day::LAST);
        assert_eq!(since.to_json().1, Value::Null);
    }

    #[test]
    fn a_bad_date_is_named_and_so_is_from_after_to() {
        assert_eq!(field(asked(&[("from", "May")]).unwrap_err()), "from");
        assert_eq!(field(asked(&[("to", "2024-02-30")]).unwrap_err()), "to");
        let reversed = asked(&[("from", "2024-05-02"), ("to", "2024-05-01")]);
        assert_eq!(field(reversed.unwrap_err()), "from");
    }
}
