//! Read-your-writes: a read that carries the `position` a command returned waits until the
//! read model has processed the command's events, polling the consumer's record of processed
//! events (which commits with the model's rows), up to the configured wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::error::QueryError;
use crate::command::PositionToken;
use crate::consumer;
use crate::db::Db;
use crate::projection::{Current, LiveDb};

/// The first pause between two looks; it doubles up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// The longest pause between two looks.
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Reads `position`: a command's token, or a 400 naming the parameter.
pub fn parse_position(text: Option<&str>) -> Result<Option<PositionToken>, QueryError> {
    text.map(|text| {
        PositionToken::decode(text).map_err(|e| QueryError::invalid("position", e.to_string()))
    })
    .transpose()
}

/// The version of a read model to answer a read from: the live one, once it has processed
/// every event of `position` (at once without one). If a rebuilt version is swapped in while
/// the read waits, the read waits on that one instead. Fails with
/// [`QueryError::NotCaughtUp`] after `wait_max`.
pub async fn read_live(
    live: &LiveDb,
    position: Option<&PositionToken>,
    wait_max: Duration,
) -> Result<Arc<Current>, QueryError> {
    let Some(position) = position else {
        return Ok(live.current());
    };
    let until = Instant::now() + wait_max;
    let mut pause = FIRST_PAUSE;
    loop {
        let current = live.current();
        let done = {
            let mut conn = current.db.pool.acquire().await?;
            consumer::processed(&mut conn, &current.group, position.event_ids()).await?
        };
        if done {
            return Ok(current);
        }
        let now = Instant::now();
        if now >= until {
            return Err(not_caught_up(&current.db, &current.group, wait_max).await);
        }
        tokio::time::sleep(pause.min(until - now)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// The answer to a read that waited `waited` in vain, with the model's position.
async fn not_caught_up(db: &Db, group: &str, waited: Duration) -> QueryError {
    match consumer::stored_offsets(&db.pool, group).await {
        Ok(offsets) => QueryError::NotCaughtUp {
            waited,
            position: offsets
                .into_iter()
                .map(|((topic, partition), next)| (format!("{topic}/{partition}"), next))
                .collect(),
        },
        Err(error) => QueryError::from(error),
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
