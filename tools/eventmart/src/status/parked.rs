//! The events each component's consumer groups have parked for their key, read from the
//! components' own databases (the broker knows nothing of them).
//!
//! A database is named with `--database-url NAME=URL`; a component not named is looked for
//! at `sqlite://var/<name>.db`, the local default, and left out when that file does not
//! exist. A read model's rebuilt versions live in databases of their own, which its main
//! database lists: those are read too.

use std::path::Path;

use eventmart_runtime::consumer::{self, ParkedSummary};
use eventmart_runtime::db;

/// Every component's parked events, and the databases that could not be read (with why).
pub(super) async fn read(
    components: &[&str],
    named: &[(String, String)],
) -> (Vec<ParkedSummary>, Vec<String>, usize) {
    let mut parked = Vec::new();
    let mut problems = Vec::new();
    let mut read = 0;
    for component in components {
        let url = match named.iter().find(|(name, _)| name == component) {
            Some((_, url)) => url.clone(),
            None => {
                let file = format!("var/{component}.db");
                if !Path::new(&file).exists() {
                    continue;
                }
                format!("sqlite://{file}")
            }
        };
        match of_database(&url).await {
            Ok(found) => {
                read += 1;
                parked.extend(found);
            }
            Err(error) => problems.push(format!("{component} ({url}): {error}")),
        }
    }
    parked.sort_by(|a, b| (&a.group, &a.topic).cmp(&(&b.group, &b.topic)));
    parked.dedup();
    (parked, problems, read)
}

/// The parked events in the database at `url` and in its read-model versions' databases.
async fn of_database(url: &str) -> anyhow::Result<Vec<ParkedSummary>> {
    let main = db::open_as_is(url).await?;
    let mut urls = vec![url.to_owned()];
    // Only a read model's main database has versions; elsewhere the table is missing.
    let versions: Vec<String> = sqlx::query_scalar(
        "SELECT database_url FROM projection_versions WHERE state IN ('live', 'building')",
    )
    .fetch_all(&main.pool)
    .await
    .unwrap_or_default();
    urls.extend(versions.into_iter().filter(|v| v != url));
    main.pool.close().await;
    let mut out = Vec::new();
    for url in urls {
        let db = db::open_as_is(&url).await?;
        out.extend(consumer::parked(&db.pool).await?);
        db.pool.close().await;
    }
    Ok(out)
}
