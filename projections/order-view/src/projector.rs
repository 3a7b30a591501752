//! The projector: applies each event of `orders`, `inventory` and `payments` to the view,
//! exactly once, inside the consumer's transaction (so the view and the consumer's offsets
//! commit together). Events about no order are skipped; nothing is ever emitted.

use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Engine;
use sqlx::AnyConnection;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store;
use crate::view::{self, Change, OrderView};

/// The consumer's handler; see the [module docs](self).
#[derive(Debug)]
pub struct Projector {
    /// The database engine, for the one statement whose syntax differs.
    pub(crate) engine: Engine,
}

impl Handler for Projector {
    /// A batch in a few statements: every timeline entry in multi-row inserts, then each
    /// order's changes folded in event order and its row written once — the rows one event
    /// at a time would give.
    async fn handle_batch(
        &self,
        tx: &mut AnyConnection,
        events: &[Incoming<'_>],
    ) -> Result<(), (usize, HandlerError)> {
        let projected: Vec<(usize, view::Projection, DateTime<Utc>)> = events
            .iter()
            .enumerate()
            .filter_map(|(index, event)| {
                view::project(event.event(), event.envelope())
                    .map(|p| (index, p, event.envelope().occurred_at))
            })
            .collect();
        self.write(tx, &projected).await
    }

    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        self.handle_batch(tx, std::slice::from_ref(event))
            .await
            .map_err(|(_, error)| error)
    }
}

/// An order's changes in a batch: each with its event's index and time.
type Changes<'a> = Vec<(usize, &'a Change, DateTime<Utc>)>;

impl Projector {
    /// Writes what a batch's events project to, in a few statements whatever the batch's
    /// size: the timeline entries, then each order's changes folded (in event order) into its
    /// row, read and written once. A failure names the first event concerned.
    async fn write(
        &self,
        tx: &mut AnyConnection,
        projected: &[(usize, view::Projection, DateTime<Utc>)],
    ) -> Result<(), (usize, HandlerError)> {
        let Some(first) = projected.first().map(|(index, _, _)| *index) else {
            return Ok(());
        };
        let failed = |error: store::StoreError| (first, HandlerError::from(error));
        let entries: Vec<&view::TimelineEntry> =
            projected.iter().map(|(_, p, _)| &p.entry).collect();
        store::add_all_to_timeline(tx, &entries)
            .await
            .map_err(failed)?;
        // Each order's changes, in event order; orders in the order they first changed.
        let mut orders: Vec<Uuid> = Vec::new();
        let mut changes: HashMap<Uuid, Changes<'_>> = HashMap::new();
        for (index, projection, at) in projected {
            let Some(change) = &projection.change else {
                continue;
            };
            let order_id = projection.entry.order_id;
            let list = changes.entry(order_id).or_default();
            if list.is_empty() {
                orders.push(order_id);
            }
            list.push((*index, change, *at));
        }
        if orders.is_empty() {
            return Ok(());
        }
        let mut current = store::load_all_for_update(tx, self.engine, &orders)
            .await
            .map_err(failed)?;
        let (mut added, mut changed) = (Vec::new(), Vec::new());
        for order_id in &orders {
            let list = &changes[order_id];
            let before = current.remove(order_id);
            let mut next = before.clone();
            for (_, change, at) in list {
                next = Some(OrderView::fold(next, *order_id, change, *at));
            }
            match (before, next) {
                (None, Some(next)) => added.push((list[0].0, next)),
                (Some(before), Some(next)) if before != next => changed.push(next),
                _ => {}
            }
        }
        let new: Vec<&OrderView> = added.iter().map(|(_, view)| view).collect();
        let inserted = store::insert_all(tx, &new).await.map_err(failed)?;
        if inserted < new.len() {
            // Another partition's event about one of these orders got there first: apply
            // them again on top of it.
            return Err((
                added[0].0,
                HandlerError::transient("an order was added to the view concurrently"),
            ));
        }
        let changed: Vec<&OrderView> = changed.iter().collect();
        store::update_all(tx, &changed).await.map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The projector against a real database: whatever order an order's events arrive in,
    //! the tables end row for row the same.

    use chrono::{DateTime, TimeZone, Utc};
    use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
    use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderCreated, OrderLine};
    use eventmart_events::payments::PaymentFailed;
    use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
    use eventmart_runtime::db::{self, Db, Engine};
    use eventmart_runtime::on_both_engines;
    use eventmart_runtime::testing::{TestDatabase, apply_in_order};
    use sqlx::Row;
    use uuid::Uuid;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    /// An order's saga that ends in a cancellation, each event with its envelope.
    fn saga(order_id: Uuid) -> Vec<Decoded> {
        let product = Uuid::from_u128(3);
        let user = Uuid::from_u128(2);
        let events: [Event; 4] = [
            OrderCreated {
                order_id,
                user_id: user,
                lines: vec![OrderLine {
                    product_id: product,
                    quantity: 1,
                    unit_price: Money::new(700, Currency::EUR),
                }],
                total: Money::new(700, Currency::EUR),
                payment_token: Some("tok_declined".into()),
                created_at: at(0),
            }
            .into(),
            InventoryUpdated {
                change: InventoryChange::Reserved,
                order_id: Some(order_id),
                lines: vec![StockLine {
                    product_id: product,
                    quantity: 1,
                }],
                reason: None,
                updated_at: at(1),
            }
            .into(),
            PaymentFailed {
                payment_id: Uuid::from_u128(4),
                order_id,
                user_id: user,
                amount: Money::new(700, Currency::EUR),
                reason: "card_declined".into(),
                failed_at: at(2),
            }
            .into(),
            OrderCancelled {
                order_id,
                reason: CancellationReason::PaymentDeclined,
                detail: None,
                cancelled_at: at(3),
            }
            .into(),
        ];
        events
            .into_iter()
            .map(|event| Decoded {
                envelope: Envelope::new(&event),
                event,
                format: Format::Json,
            })
            .collect()
    }

    /// Every row of both tables, as text, in a stable order.
    async fn rows(db: &Db) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let views = sqlx::query(
            "SELECT order_id, user_id, status, reason, total_cents, currency, payment_id, \
             lines, created_at, updated_at FROM order_view ORDER BY order_id",
        )
        .fetch_all(&db.pool)
        .await?;
        for row in views {
            out.push(format!(
                "{:?}",
                (
                    row.try_get::<String, _>(0)?,
                    row.try_get::<Option<String>, _>(1)?,
                    row.try_get::<String, _>(2)?,
                    row.try_get::<Option<String>, _>(3)?,
                    row.try_get::<Option<i64>, _>(4)?,
                    row.try_get::<Option<String>, _>(5)?,
                    row.try_get::<Option<String>, _>(6)?,
                    row.try_get::<Option<String>, _>(7)?,
                    row.try_get::<Option<i64>, _>(8)?,
                    row.try_get::<i64, _>(9)?,
                )
            ));
        }
        let entries = sqlx::query(
            "SELECT order_id, event_id, event_type, step, service, occurred_at \
             FROM order_timeline ORDER BY order_id, event_id",
        )
        .fetch_all(&db.pool)
        .await?;
        for row in entries {
            out.push(format!(
                "{:?}",
                (
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<String, _>(2)?,
                    row.try_get::<String, _>(3)?,
                    row.try_get::<String, _>(4)?,
                    row.try_get::<i64, _>(5)?,
                )
            ));
        }
        Ok(out)
    }

    async fn the_tables_end_the_same_whatever_the_arrival_order(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let order_id = Uuid::now_v7();
        let events = saga(order_id);
        // In topic order; the orders events reversed (the last one typed in first); the
        // other topics' events first; everything backwards.
        let orders: [[usize; 4]; 4] = [[0, 1, 2, 3], [3, 0, 1, 2], [1, 2, 3, 0], [3, 2, 1, 0]];
        let mut results = Vec::new();
        for order in orders {
            let database = TestDatabase::create(engine).await?;
            let db = db::connect_component(&database.url, crate::migrations()).await?;
            let arrival: Vec<&Decoded> = order.iter().map(|&i| &events[i]).collect();
            apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "orders").await?;
            let applied = rows(&db).await?;
            // Handed over again (the consumer skips what it has applied; the rows would not
            // change if it did not).
            apply_in_order(&Projector { engine: db.engine }, &db, &arrival, "orders").await?;
            assert_eq!(
                rows(&db).await?,
                applied,
                "applied twice in order {order:?}"
            );
            results.push(applied);
            db.pool.close().await;
        }
        assert_eq!(results[0].len(), 5, "{:#?}", results[0]);
        assert!(results[0][0].contains("CANCELLED"), "{}", results[0][0]);
        assert!(
            results[0][0].contains("payment_declined"),
            "{}",
            results[0][0]
        );
        for (order, result) in orders.iter().zip(&results) {
            assert_eq!(result, &results[0], "arrival order {order:?}");
        }
        Ok(())
    }

    on_both_engines!(the_tables_end_the_same_whatever_the_arrival_order);

    async fn a_batch_gives_the_rows_its_events_give_one_at_a_time(
        engine: Engine,
    ) -> anyhow::Result<()> {
        // Two sagas interleaved, so that a batch holds several events of each order.
        let (one, two) = (saga(Uuid::now_v7()), saga(Uuid::now_v7()));
        let events: Vec<&Decoded> = one.iter().zip(&two).flat_map(|(a, b)| [a, b]).collect();
        let by_one = TestDatabase::create(engine).await?;
        let by_one = db::connect_component(&by_one.url, crate::migrations()).await?;
        apply_in_order(&Projector { engine }, &by_one, &events, "orders").await?;
        let batched = TestDatabase::create(engine).await?;
        let batched = db::connect_component(&batched.url, crate::migrations()).await?;
        let incoming: Vec<Incoming<'_>> = events
            .iter()
            .enumerate()
            .map(|(offset, decoded)| Incoming::new(decoded, "orders", 0, offset as i64))
            .collect();
        let mut tx = batched.pool.begin().await?;
        Projector { engine }
            .handle_batch(&mut tx, &incoming)
            .await
            .map_err(|(index, e)| anyhow::anyhow!("event {index}: {e}"))?;
        tx.commit().await?;
        let expected = rows(&by_one).await?;
        assert_eq!(expected.len(), 2 + 8, "{expected:#?}");
        assert_eq!(rows(&batched).await?, expected);
        Ok(())
    }

    on_both_engines!(a_batch_gives_the_rows_its_events_give_one_at_a_time);
}
