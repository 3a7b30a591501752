//! The figures read back from real databases, after sales were counted in.

use std::collections::BTreeMap;

use eventmart_events::Currency;
use eventmart_runtime::db::{self, Db, Engine};
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::TestDatabase;
use uuid::Uuid;

use super::count;
use super::figures::{self, Figures, Period, Rank};
use crate::sale::{Day, Item, Sale};

const EUR: Currency = Currency::EUR;
const USD: Currency = Currency::USD;

const BOOK: Uuid = Uuid::from_u128(1);
const PEN: Uuid = Uuid::from_u128(2);
const INK: Uuid = Uuid::from_u128(3);
const CUP: Uuid = Uuid::from_u128(4);

fn day(text: &str) -> Day {
    Day::parse(text).unwrap()
}

fn item(product_id: Uuid, currency: Currency, units: i64, revenue_cents: i64) -> Item {
    Item {
        product_id,
        currency,
        units,
        revenue_cents,
    }
}

fn figures(orders: i64, units: i64, revenue: &[(Currency, i64)]) -> Figures {
    Figures {
        orders,
        units,
        revenue: revenue.iter().copied().collect(),
    }
}

/// Four orders over three days: books and pens in euros, ink in dollars, and cups (as many
/// units as pens, for a tie).
fn sales() -> Vec<Sale> {
    vec![
        Sale {
            day: day("2024-05-01"),
            items: vec![item(BOOK, EUR, 2, 2000), item(PEN, EUR, 1, 150)],
        },
        Sale {
            day: day("2024-05-01"),
            items: vec![item(BOOK, EUR, 1, 1000), item(INK, USD, 3, 900)],
        },
        Sale {
            day: day("2024-05-02"),
            items: vec![item(PEN, EUR, 2, 300), item(CUP, EUR, 3, 600)],
        },
        Sale {
            day: day("2024-05-04"),
            items: vec![item(BOOK, EUR, 1, 1000)],
        },
    ]
}

async fn counted(engine: Engine) -> anyhow::Result<(TestDatabase, Db)> {
    let database = TestDatabase::create(engine).await?;
    let db = db::connect_component(&database.url, crate::migrations()).await?;
    for sale in sales() {
        let mut tx = db.pool.begin().await?;
        count(&mut tx, &sale).await?;
        tx.commit().await?;
    }
    Ok((database, db))
}

fn period(from: &str, to: &str) -> Period {
    Period {
        from: day(from),
        to: day(to),
    }
}

async fn each_day_adds_up_what_every_product_sold(engine: Engine) -> anyhow::Result<()> {
    let (_database, db) = counted(engine).await?;
    let mut conn = db.pool.acquire().await?;
    let all = Period {
        from: Day::FIRST,
        to: Day::LAST,
    };
    let days = figures::days(&mut conn, all).await?;
    let expected: BTreeMap<Day, Figures> = [
        (day("2024-05-01"), figures(2, 7, &[(EUR, 3150), (USD, 900)])),
        (day("2024-05-02"), figures(1, 5, &[(EUR, 900)])),
        (day("2024-05-04"), figures(1, 1, &[(EUR, 1000)])),
    ]
    .into_iter()
    .collect();
    assert_eq!(days, expected);
    assert_eq!(
        Figures::total(days.values()),
        figures(4, 13, &[(EUR, 5050), (USD, 900)])
    );
    let days = figures::days(&mut conn, period("2024-05-02", "2024-05-03")).await?;
    assert_eq!(
        days.keys().copied().collect::<Vec<_>>(),
        [day("2024-05-02")]
    );
    assert!(
        figures::days(&mut conn, period("2024-06-01", "2024-06-30"))
            .await?
            .is_empty()
    );
    assert_eq!(figures::currencies(&mut conn, all).await?, [EUR, USD]);
    assert_eq!(
        figures::currencies(&mut conn, period("2024-05-02", "2024-05-04")).await?,
        [EUR]
    );
    Ok(())
}

async fn a_products_days_are_its_own(engine: Engine) -> anyhow::Result<()> {
    let (_database, db) = counted(engine).await?;
    let mut conn = db.pool.acquire().await?;
    let book = figures::product_days(&mut conn, BOOK, period("2024-05-01", "2024-05-04")).await?;
    let expected: BTreeMap<Day, Figures> = [
        (day("2024-05-01"), figures(2, 3, &[(EUR, 3000)])),
        (day("2024-05-04"), figures(1, 1, &[(EUR, 1000)])),
    ]
    .into_iter()
    .collect();
    assert_eq!(book, expected);
    let later = figures::product_days(&mut conn, BOOK, period("2024-05-05", "2024-05-31")).await?;
    assert!(later.is_empty());
    assert!(figures::ever_sold(&mut conn, BOOK).await?);
    assert!(!figures::ever_sold(&mut conn, Uuid::from_u128(77)).await?);
    Ok(())
}

async fn products_rank_by_units_or_revenue(engine: Engine) -> anyhow::Result<()> {
    let (_database, db) = counted(engine).await?;
    let mut conn = db.pool.acquire().await?;
    let all = Period {
        from: Day::FIRST,
        to: Day::LAST,
    };
    let ranking = |ranked: &[figures::Ranked]| -> Vec<(Uuid, i64)> {
        ranked.iter().map(|r| (r.product_id, r.figure)).collect()
    };

    // By units: books 4; pens, cups and ink 3 each, by product id.
    let units = figures::top(&mut conn, all, Rank::Units(None), 10).await?;
    assert_eq!(ranking(&units), [(BOOK, 4), (PEN, 3), (INK, 3), (CUP, 3)]);
    assert_eq!(units[0].figures, figures(3, 4, &[(EUR, 4000)]));
    assert_eq!(units[2].figures, figures(1, 3, &[(USD, 900)]));
    // The top two are the first two of the whole ranking.
    let two = figures::top(&mut conn, all, Rank::Units(None), 2).await?;
    assert_eq!(ranking(&two), ranking(&units[..2]));

    // Units in dollars only; revenue in euros, over a part of the period.
    let dollars = figures::top(&mut conn, all, Rank::Units(Some(USD)), 10).await?;
    assert_eq!(ranking(&dollars), [(INK, 3)]);
    let revenue = figures::top(
        &mut conn,
        period("2024-05-02", "2024-05-04"),
        Rank::Revenue(EUR),
        2,
    )
    .await?;
    assert_eq!(ranking(&revenue), [(BOOK, 1000), (CUP, 600)]);
    assert_eq!(revenue[1].figures, figures(1, 3, &[(EUR, 600)]));
    Ok(())
}

on_both_engines!(
    each_day_adds_up_what_every_product_sold,
    a_products_days_are_its_own,
    products_rank_by_units_or_revenue,
);
