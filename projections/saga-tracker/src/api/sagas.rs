//! `GET /sagas/{correlation_id}` and `GET /sagas`, and how a saga is shown.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use eventmart_events::timestamp;
use eventmart_runtime::query::{Params, QueryError, parse_id, parse_position, read_live, snapshot};
use serde_json::{Map, Value, json};

use super::App;
use super::page::{
    DEFAULT_LIMIT, MAX_LIMIT, QUIET_IS_ONE_PAGE, Sort, decode_cursor, encode_cursor,
};
use crate::saga::{self, Saga, SagaStep};
use crate::store::{self, Filter};

/// How long an unfinished saga must have been quiet to count as stuck, unless `older_than`
/// says otherwise.
pub(super) const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(30);

/// What `state` asks a listing for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Listing {
    /// Sagas in this state.
    In(saga::State),
    /// Unfinished sagas (running or compensating) quiet for longer than `older_than`.
    Stuck,
}

impl Listing {
    /// Every value `state` takes, as the API names them.
    pub(super) fn names() -> Vec<&'static str> {
        let mut names: Vec<&str> = saga::State::ALL.iter().map(|s| s.as_str()).collect();
        names.push("stuck");
        names
    }

    /// Reads the `state` parameter.
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "stuck" => Ok(Listing::Stuck),
            _ => saga::State::parse(text).map(Listing::In).map_err(|_| {
                format!(
                    "must be one of {}, got {text:?}",
                    Listing::names().join(", ")
                )
            }),
        }
    }
}

/// The sagas a listing shows at `now`: those `listing` asks for (every saga if `None`),
/// quiet for longer than `older_than` (for stuck sagas [`DEFAULT_STUCK_AFTER`] unless
/// given).
fn filter(listing: Option<Listing>, older_than: Option<Duration>, now: DateTime<Utc>) -> Filter {
    let quiet_since = |quiet: Duration| {
        let quiet = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
        now.timestamp_millis().saturating_sub(quiet)
    };
    match listing {
        None => Filter {
            states: Vec::new(),
            quiet_since: older_than.map(quiet_since),
        },
        Some(Listing::In(state)) => Filter {
            states: vec![state],
            quiet_since: older_than.map(quiet_since),
        },
        Some(Listing::Stuck) => Filter {
            states: saga::State::ALL
                .into_iter()
                .filter(|s| s.is_unfinished())
                .collect(),
            quiet_since: Some(quiet_since(older_than.unwrap_or(DEFAULT_STUCK_AFTER))),
        },
    }
}

/// Reads `older_than`: a duration such as `30s`, `5m` or `1h 30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("must be a duration such as \"30s\", \"5m\" or \"1h 30m\", got {text:?} ({e})")
    })
}

/// `GET /sagas/{correlation_id}?position=`: the saga with its steps, or 404. Both are read
/// from one snapshot: the projector recomputes the saga in the transaction that adds a step,
/// and an answer must not count a step it does not show.
pub(super) async fn get(
    State(app): State<App>,
    Path(correlation_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let correlation_id = parse_id("correlation_id", &correlation_id)?;
    let params = Params::of(query, &["position"])?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut tx = snapshot(&live.db).await?;
    let saga = store::load(&mut tx, correlation_id).await?.ok_or_else(|| {
        QueryError::NotFound(format!("the saga tracker has no saga {correlation_id}"))
    })?;
    let steps = store::steps(&mut tx, correlation_id).await?;
    tx.commit().await?;
    Ok(Json(detail(&saga, &steps)))
}

/// `GET /sagas?state=&older_than=&sort=&limit=&cursor=&position=`: a page of sagas, by
/// correlation id or (`sort=quiet`, one page) the longest quiet first; `next_cursor` is the
/// `cursor` of the next page, `null` on the last; `truncated` says whether more sagas match
/// than the page holds. See [`super::page`] for what a walk through the pages promises.
pub(super) async fn list(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let params = Params::of(
        query,
        &["state", "older_than", "sort", "limit", "cursor", "position"],
    )?;
    let listing = params.parse("state", Listing::parse)?;
    let older_than = params.parse("older_than", parse_duration)?;
    let sort = params.parse("sort", Sort::parse)?.unwrap_or(Sort::Started);
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let cursor = params.parse("cursor", decode_cursor)?;
    if sort == Sort::Quiet && cursor.is_some() {
        return Err(QueryError::invalid("cursor", QUIET_IS_ONE_PAGE));
    }
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    // Every page of a walk measures quiet time from its first page's clock.
    let as_of = cursor.map_or_else(Utc::now, |c| c.as_of);
    let filter = filter(listing, older_than, as_of);
    let mut conn = live.db.pool.acquire().await?;
    // One more than asked for tells whether more sagas match.
    let mut sagas = match sort {
        Sort::Started => {
            let after = cursor.map(|c| c.after);
            store::walk(&mut conn, &filter, after, limit + 1).await?
        }
        Sort::Quiet => store::quietest(&mut conn, &filter, limit + 1).await?,
    };
    let more = sagas.len() > limit as usize;
    sagas.truncate(limit as usize);
    let next_cursor = sagas
        .last()
        .filter(|_| more && sort == Sort::Started)
        .map(|last| encode_cursor(as_of, last));
    let items: Vec<Value> = sagas.iter().map(|s| Value::Object(summary(s))).collect();
    Ok(Json(json!({
        "items": items,
        "next_cursor": next_cursor,
        "truncated": more,
    })))
}

/// A saga as listed: where it stands, without its steps.
fn summary(saga: &Saga) -> Map<String, Value> {
    let fields = json!({
        "correlation_id": saga.correlation_id,
        "order_id": saga.order_id,
        "state": saga.state.as_str(),
        "step": saga.step.as_str(),
        "waiting_for": saga.waiting_for.map(|s| s.as_str()),
        "started_at": timestamp::to_rfc3339(&saga.started_at),
        "last_event_at": timestamp::to_rfc3339(&saga.last_event_at),
        "step_count": saga.step_count,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A saga in full: its summary and its steps (by `occurred_at`, then event id).
fn detail(saga: &Saga, steps: &[SagaStep]) -> Value {
    let mut fields = summary(saga);
    let steps: Vec<Value> = steps
        .iter()
        .map(|step| {
            json!({
                "event_type": step.event_type,
                "step": step.step.as_str(),
                "service": step.service().as_str(),
                "event_id": step.event_id,
                "causation_id": step.causation_id,
                "order_id": step.order_id,
                "occurred_at": timestamp::to_rfc3339(&step.occurred_at),
            })
        })
        .collect();
    fields.insert("steps".into(), json!(steps));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::saga::{Service, Step};

    fn now() -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000).unwrap()
    }

    #[test]
    fn stuck_means_unfinished_and_quiet_for_thirty_seconds_unless_told_otherwise() {
        let stuck = filter(Some(Listing::Stuck), None, now());
        assert_eq!(
            stuck.states,
            [saga::State::Running, saga::State::Compensating]
        );
        assert_eq!(stuck.quiet_since, Some(1_700_000_000_000 - 30_000));
        let stuck = filter(Some(Listing::Stuck), Some(Duration::from_secs(300)), now());
        assert_eq!(stuck.quiet_since, Some(1_700_000_000_000 - 300_000));
    }

    #[test]
    fn older_than_filters_other_states_only_when_given() {
        let confirmed = filter(Some(Listing::In(saga::State::Confirmed)), None, now());
        assert_eq!(
            (confirmed.states, confirmed.quiet_since),
            (vec![saga::State::Confirmed], None)
        );
        let everything = filter(None, Some(Duration::from_secs(5)), now());
        assert_eq!(
            (everything.states, everything.quiet_since),
            (vec![], Some(1_700_000_000_000 - 5_000))
        );
        // A duration longer than time itself lets nothing through rather than overflowing.
        let forever = filter(None, Some(Duration::MAX), now());
        assert_eq!(forever.quiet_since, Some(1_700_000_000_000 - i64::MAX));
    }

    #[test]
    fn state_and_older_than_are_read_or_refused_with_what_is_expected() {
        assert_eq!(Listing::parse("stuck"), Ok(Listing::Stuck));
        assert_eq!(
            Listing::parse("compensating"),
            Ok(Listing::In(saga::State::Compensating))
        );
        let refused = Listing::parse("RUNNING").unwrap_err();
        assert!(
            refused.contains("running, compensating, confirmed, cancelled, stuck"),
            "{refused}"
        );
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        for bad in ["soon", "", "-5s", "30"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_saga_is_shown_with_its_steps() {
        let at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let (correlation_id, order_id, event_id) =
            (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let saga = Saga {
            correlation_id,
            order_id,
            state: saga::State::Running,
            step: Step::Created,
            waiting_for: Some(Service::Inventory),
            started_at: at,
            last_event_at: at,
            step_count: 1,
        };
        let steps = [SagaStep {
            correlation_id,
            event_id,
            event_type: "order.created".into(),
            step: Step::Created,
            order_id,
            causation_id: None,
            occurred_at: at,
        }];
        assert_eq!(
            detail(&saga, &steps),
            json!({
                "correlation_id": correlation_id,
                "order_id": order_id,
                "state": "running",
                "step": "CREATED",
                "waiting_for": "inventory",
                "started_at": "2023-11-14T22:13:20.123Z",
                "last_event_at": "2023-11-14T22:13:20.123Z",
                "step_count": 1,
                "steps": [{"event_type": "order.created", "step": "CREATED",
                           "service": "orders", "event_id": event_id,
                           "causation_id": null, "order_id": order_id,
                           "occurred_at": "2023-11-14T22:13:20.123Z"}],
            })
        );
        let mut done = saga;
        done.waiting_for = None;
        assert_eq!(summary(&done)["waiting_for"], Value::Null);
    }
}
