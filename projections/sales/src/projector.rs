//! The projector: applies each `orders` event to the model, exactly once, inside the
//! consumer's transaction (so the figures and the consumer's offsets commit together). An
//! order's sale is added to the figures in the transaction that makes it one; nothing is
//! ever emitted.

use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::Engine;
use sqlx::AnyConnection;

use crate::sale::{self, OrderSale};
use crate::store;

/// The consumer's handler; see the [module docs](self).
#[derive(Debug)]
pub struct Projector {
    /// The database engine, for the one statement whose syntax differs.
    pub(crate) engine: Engine,
}

impl Handler for Projector {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let Some((order_id, change)) = sale::change_of(event.event()) else {
            return Ok(());
        };
        let current = store::load_for_update(tx, self.engine, order_id).await?;
        let was_counted = current.as_ref().is_some_and(OrderSale::is_counted);
        let next = OrderSale::fold(current.clone(), order_id, &change);
        if current.as_ref() == Some(&next) {
            return Ok(());
        }
        // Computed before anything is written: an order that cannot be counted leaves no
        // trace, and its event goes to the dead-letter topic with the reason.
        let sale = if was_counted {
            None
        } else {
            next.sale()
                .map_err(|e| HandlerError::permanent(format!("order {order_id}: {e}")))?
        };
        match current {
            None => {
                if !store::insert(tx, &next).await? {
                    // Another partition's transaction added the order since this one
                    // looked: apply this event again on top of it.
                    return Err(HandlerError::transient(format!(
                        "order {order_id} was added to sales concurrently"
                    )));
                }
            }
            Some(_) => store::update(tx, &next).await?,
        }
        if let Some(sale) = sale {
            store::count(tx, &sale).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The projector against a real database: whatever order the orders' events arrive in,
    //! and however often, the tables end row for row the same.

    use chrono::{DateTime, TimeZone, Utc};
    use eventmart_events::orders::{
        CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
    };
    use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
    use eventmart_runtime::db::{self, Db, Engine};
    use eventmart_runtime::on_both_engines;
    use eventmart_runtime::testing::{TestDatabase, apply_in_order};
    use sqlx::Row;
    use uuid::Uuid;

    use super::*;

    /// `seconds` after 2023-11-14T22:13:20Z.
    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    fn decoded(event: Event) -> Decoded {
        Decoded {
            envelope: Envelope::new(&event),
            event,
            format: Format::Json,
        }
    }

    fn created(order_id: Uuid, lines: &[(u128, i32, i64, Currency)]) -> Decoded {
        let lines: Vec<OrderLine> = lines
            .iter()
            .map(|&(product, quantity, cents, currency)| OrderLine {
                product_id: Uuid::from_u128(product),
                quantity,
                unit_price: Money::new(cents, currency),
            })
            .collect();
        let total = lines
            .iter()
            .map(|l| i64::from(l.quantity) * l.unit_price.cents)
            .sum();
        decoded(
            OrderCreated {
                order_id,
                user_id: Uuid::from_u128(99),
                lines,
                total: Money::new(total, Currency::EUR),
                payment_token: None,
                created_at: at(0),
            }
            .into(),
        )
    }

    fn confirmed(order_id: Uuid, seconds: i64) -> Decoded {
        decoded(
            OrderConfirmed {
                order_id,
                payment_id: Uuid::now_v7(),
                confirmed_at: at(seconds),
            }
            .into(),
        )
    }

    fn cancelled(order_id: Uuid, seconds: i64) -> Decoded {
        decoded(
            OrderCancelled {
                order_id,
                reason: CancellationReason::PaymentDeclined,
                detail: None,
                cancelled_at: at(seconds),
            }
            .into(),
        )
    }

    /// Three orders of two products: two confirmed on different days (one of them in
    /// dollars too), one cancelled; each order's events in the order they happened.
    fn orders() -> Vec<Decoded> {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        vec![
            created(
                a,
                &[(1, 2, 1250, Currency::EUR), (2, 1, 300, Currency::EUR)],
            ),
            confirmed(a, 10),
            created(
                b,
                &[(1, 1, 1250, Currency::EUR), (2, 4, 250, Currency::USD)],
            ),
            confirmed(b, 86_400),
            created(c, &[(1, 5, 1250, Currency::EUR)]),
            cancelled(c, 20),
        ]
    }

    /// Every row of the three tables, as text, in a stable order.
    async fn rows(db: &Db) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        let orders = sqlx::query(
            "SELECT order_id, lines, total_cents, currency, created_at, decision, decided_at, \
             counted FROM sales_orders ORDER BY order_id",
        )
        .fetch_all(&db.pool)
        .await?;
        for row in orders {
            out.push(format!(
                "{:?}",
                (
                    row.try_get::<String, _>(0)?,
                    row.try_get::<Option<String>, _>(1)?,
                    row.try_get::<Option<i64>, _>(2)?,
                    row.try_get::<Option<String>, _>(3)?,
                    row.try_get::<Option<i64>, _>(4)?,
                    row.try_get::<Option<String>, _>(5)?,
                    row.try_get::<Option<i64>, _>(6)?,
                    row.try_get::<i64, _>(7)?,
                )
            ));
        }
        let daily = sqlx::query(
            "SELECT product_id, day, currency, units, revenue_cents, orders FROM sales_daily \
             ORDER BY product_id, day, currency",
        )
        .fetch_all(&db.pool)
        .await?;
        for row in daily {
            out.push(format!(
                "{:?}",
                (
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<String, _>(2)?,
                    row.try_get::<i64, _>(3)?,
                    row.try_get::<i64, _>(4)?,
                    row.try_get::<i64, _>(5)?,
                )
            ));
        }
        let days = sqlx::query("SELECT day, orders FROM sales_days ORDER BY day")
            .fetch_all(&db.pool)
            .await?;
        for row in days {
            out.push(format!(
                "{:?}",
                (row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?)
            ));
        }
        Ok(out)
    }

    async fn the_tables_end_the_same_whatever_the_arrival_order(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let events = orders();
        // In topic order; every confirmation before its order; everything backwards; the
        // orders interleaved.
        let arrivals: [[usize; 6]; 4] = [
            [0, 1, 2, 3, 4, 5],
            [1, 3, 5, 0, 2, 4],
            [5, 4, 3, 2, 1, 0],
            [2, 4, 0, 5, 3, 1],
        ];
        let mut results = Vec::new();
        for arrival in arrivals {
            let database = TestDatabase::create(engine).await?;
            let db = db::connect_component(&database.url, crate::migrations()).await?;
            let events: Vec<&Decoded> = arrival.iter().map(|&i| &events[i]).collect();
            apply_in_order(&Projector { engine: db.engine }, &db, &events, "orders").await?;
            let applied = rows(&db).await?;
            // Handed over again (the consumer skips what it has applied; the rows would not
            // change if it did not).
            apply_in_order(&Projector { engine: db.engine }, &db, &events, "orders").await?;
            assert_eq!(
                rows(&db).await?,
                applied,
                "applied twice in order {arrival:?}"
            );
            results.push(applied);
            db.pool.close().await;
        }
        for (arrival, result) in arrivals.iter().zip(&results) {
            assert_eq!(result, &results[0], "arrival order {arrival:?}");
        }
        // Three orders; product 1 on both days, product 2 in euros on the first day and in
        // dollars on the second; one order on each day.
        let (first, second) = ("2023-11-14", "2023-11-15");
        let product = |n: u128| Uuid::from_u128(n).to_string();
        let expected_daily = [
            format!("{:?}", (product(1), first, "EUR", 2, 2500, 1)),
            format!("{:?}", (product(1), second, "EUR", 1, 1250, 1)),
            format!("{:?}", (product(2), first, "EUR", 1, 300, 1)),
            format!("{:?}", (product(2), second, "USD", 4, 1000, 1)),
            format!("{:?}", (first, 1)),
            format!("{:?}", (second, 1)),
        ];
        assert_eq!(
            results[0].len(),
            3 + expected_daily.len(),
            "{:#?}",
            results[0]
        );
        assert_eq!(results[0][3..], expected_daily, "{:#?}", results[0]);
        let counted: Vec<bool> = results[0][..3]
            .iter()
            .map(|r| r.ends_with(", 1)"))
            .collect();
        assert_eq!(
            counted.iter().filter(|c| **c).count(),
            2,
            "{:#?}",
            results[0]
        );
        Ok(())
    }

    on_both_engines!(the_tables_end_the_same_whatever_the_arrival_order);
}
