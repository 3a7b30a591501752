//! schemathesis against the sales binary's own OpenAPI document.

mod common;

use common::{confirmed, created, position};
use eventmart_events::{Currency, timestamp};
use eventmart_runtime::db::Engine;
use eventmart_runtime::testing::{TestComponent, schemathesis};
use uuid::Uuid;

/// [`schemathesis`] against the sales model's own OpenAPI document, with a confirmed order.
/// Besides made-up cursors and position tokens, a `from` after `to` and a ranking by revenue
/// over sales in several currencies without `currency` are rightly refused with 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() -> anyhow::Result<()> {
    let sales = TestComponent::start("sales", Engine::Sqlite, &[("SALES_WAIT_MAX", "1s")]).await?;
    let order = Uuid::now_v7();
    let placed = created(order, &[(Uuid::now_v7(), 2, 450, Currency::EUR)]);
    let paid = confirmed(order, timestamp::now());
    sales.produce(&[&placed, &paid]).await?;
    sales
        .ok(&format!(
            "/sales/daily?position={}",
            position(&[&placed, &paid])
        ))
        .await?;
    schemathesis(&sales.base).await
}
