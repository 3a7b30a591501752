//! Feeding a handler's own unit tests the way the consumer feeds it.

use crate::consumer::{Handler, Incoming};
use crate::db::Db;

/// Applies `events` to `db` through `handler` in order, each in its own committed
/// transaction, as read from partition 0 of `topic` at offsets 0, 1, 2…: what the consumer
/// does with one record per batch.
pub async fn apply_in_order(
    handler: &impl Handler,
    db: &Db,
    events: &[&eventmart_events::Decoded],
    topic: &str,
) -> anyhow::Result<()> {
    for (offset, decoded) in events.iter().enumerate() {
        let incoming = Incoming::new(decoded, topic, 0, offset as i64);
        let mut tx = db.pool.begin().await?;
        handler
            .handle(&mut tx, &incoming)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tx.commit().await?;
    }
    Ok(())
}
