//! schemathesis against the sales binary's own OpenAPI document.

mod common;

use common::{Sales, confirmed, created, position};
use eventmart_events::{Currency, timestamp};
use eventmart_runtime::db::Engine;
use uuid::Uuid;

/// schemathesis (from PyPI; `scripts/test` installs it and names it in `EVENTMART_SCHEMATHESIS`)
/// generates requests from `/openapi.json`, valid and not, and checks every answer: no server
/// error, and every response matching its documented status and schema. Only
/// `positive_data_acceptance` is left out: cursors and position tokens are opaque strings that
/// a schema cannot describe, so a made-up one is rightly refused with 400 (as are a `from`
/// after `to`, and a ranking by revenue over sales in several currencies without `currency`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() -> anyhow::Result<()> {
    let st = std::env::var("EVENTMART_SCHEMATHESIS")
        .expect("EVENTMART_SCHEMATHESIS names schemathesis' `st` (scripts/test sets it)");
    let sales = Sales::start(Engine::Sqlite, &[("SALES_WAIT_MAX", "1s")]).await?;
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
    let output = tokio::process::Command::new(st)
        .args(["run", &format!("{}/openapi.json", sales.base)])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "100", "--no-color"])
        // It keeps a cache folder where it runs: not in the source tree.
        .current_dir(std::env::temp_dir())
        .output()
        .await?;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    Ok(())
}
