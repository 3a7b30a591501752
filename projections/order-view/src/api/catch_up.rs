//! Read-your-writes: a read that carries the `position` a command returned waits until the
//! view has processed the command's events, polling the consumer's record of processed
//! events (which commits with the view's rows), up to the configured wait.

use std::time::Duration;

use eventmart_runtime::command::PositionToken;
use eventmart_runtime::consumer;
use eventmart_runtime::db::Db;
use tokio::time::Instant;

use super::error::QueryError;

/// The first pause between two looks; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// The longest pause between two looks.
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Reads `position`: a command's token, or a 400 naming the parameter.
pub(super) fn parse_position(text: Option<&str>) -> Result<Option<PositionToken>, QueryError> {
    text.map(|text| {
        PositionToken::decode(text).map_err(|e| QueryError::invalid("position", e.to_string()))
    })
    .transpose()
}

/// Waits until consumer group `group` has processed every event of `position` (at once
/// without one), or fails with [`QueryError::NotCaughtUp`] after `wait_max`.
///
/// The database connection is held only while looking, never while pausing: on SQLite it is
/// the projector's only one.
pub(super) async fn catch_up(
    db: &Db,
    group: &str,
    position: Option<&PositionToken>,
    wait_max: Duration,
) -> Result<(), QueryError> {
    let Some(position) = position else {
        return Ok(());
    };
    let until = Instant::now() + wait_max;
    let mut pause = FIRST_PAUSE;
    loop {
        let done = {
            let mut conn = db.pool.acquire().await?;
            consumer::processed(&mut conn, group, position.event_ids()).await?
        };
        if done {
            return Ok(());
        }
        let now = Instant::now();
        if now >= until {
            return Err(QueryError::NotCaughtUp { waited: wait_max });
        }
        tokio::time::sleep(pause.min(until - now)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_position_is_a_commands_token_and_anything_else_is_named() {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let token = PositionToken::encode(&ids);
        let position = parse_position(Some(&token)).unwrap().unwrap();
        assert_eq!(position.event_ids(), ids);
        assert!(parse_position(None).unwrap().is_none());
        match parse_position(Some("not-a-token!")) {
            Err(QueryError::Invalid { field, .. }) => assert_eq!(field, "position"),
            other => panic!("{other:?}"),
        }
    }
}
