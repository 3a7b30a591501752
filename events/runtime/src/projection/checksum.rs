//! Content checksums of a read model's tables, and the rows where two versions differ.
//!
//! A row is written canonically as a JSON array of its column values (integers as numbers,
//! text as strings, NULL as null) in the table's column order, less the columns the table
//! says to [ignore](super::Table::ignore); rows are ordered by their key columns' canonical
//! values (not by the database's collation, so SQLite and PostgreSQL order alike); a table's
//! checksum is the SHA-256 of its rows, one per line. Two versions with equal checksums hold
//! the same rows.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Column, Row};

use super::Table;
use crate::db::Db;

/// One table's checksum.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSum {
    /// The table.
    pub table: String,
    /// How many rows it holds.
    pub rows: u64,
    /// SHA-256 of its canonical rows, hex.
    pub sha256: String,
}

/// A row two versions disagree on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowDiff {
    /// The table.
    pub table: String,
    /// The row's key columns, canonical.
    pub key: String,
    /// The row in the first version (None: missing there).
    pub left: Option<String>,
    /// The row in the second version (None: missing there).
    pub right: Option<String>,
}

/// The checksum of each of `tables` in `db`.
pub async fn checksums(db: &Db, tables: &[Table]) -> anyhow::Result<Vec<TableSum>> {
    let mut out = Vec::with_capacity(tables.len());
    for table in tables {
        let rows = rows(db, table).await?;
        let mut hash = Sha256::new();
        for row in rows.values() {
            hash.update(row.as_bytes());
            hash.update(b"\n");
        }
        out.push(TableSum {
            table: table.name.to_owned(),
            rows: rows.len() as u64,
            sha256: hex(&hash.finalize()),
        });
    }
    Ok(out)
}

/// Up to `max` rows per table where `left` and `right` differ, by key.
pub async fn differences(
    left: &Db,
    right: &Db,
    tables: &[Table],
    max: usize,
) -> anyhow::Result<Vec<RowDiff>> {
    let mut out = Vec::new();
    for table in tables {
        let (a, b) = (rows(left, table).await?, rows(right, table).await?);
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        out.extend(
            keys.into_iter()
                .filter(|key| a.get(*key) != b.get(*key))
                .take(max)
                .map(|key| RowDiff {
                    table: table.name.to_owned(),
                    key: key.clone(),
                    left: a.get(key).cloned(),
                    right: b.get(key).cloned(),
                }),
        );
    }
    Ok(out)
}

/// Every row of `table`, canonical, by canonical key.
async fn rows(db: &Db, table: &Table) -> anyhow::Result<BTreeMap<String, String>> {
    let sql = format!("SELECT * FROM {}", table.name);
    let fetched = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(&db.pool)
        .await?;
    let mut out = BTreeMap::new();
    for row in &fetched {
        let mut values = Vec::with_capacity(row.len());
        let mut key = vec![Value::Null; table.key.len()];
        for (i, column) in row.columns().iter().enumerate() {
            if table.ignore.contains(&column.name()) {
                continue;
            }
            let value = canonical(row, i)?;
            if let Some(k) = table.key.iter().position(|k| *k == column.name()) {
                key[k] = value.clone();
            }
            values.push(value);
        }
        out.insert(
            Value::Array(key).to_string(),
            Value::Array(values).to_string(),
        );
    }
    Ok(out)
}

/// Column `i` of `row` as JSON, whatever its type.
fn canonical(row: &AnyRow, i: usize) -> anyhow::Result<Value> {
    if let Ok(value) = row.try_get::<Option<i64>, _>(i) {
        return Ok(value.map_or(Value::Null, Value::from));
    }
    if let Ok(value) = row.try_get::<Option<String>, _>(i) {
        return Ok(value.map_or(Value::Null, Value::from));
    }
    if let Ok(value) = row.try_get::<Option<f64>, _>(i) {
        return Ok(value.map_or(Value::Null, Value::from));
    }
    if let Ok(value) = row.try_get::<Option<bool>, _>(i) {
        return Ok(value.map_or(Value::Null, Value::from));
    }
    let value = row.try_get::<Option<Vec<u8>>, _>(i)?;
    Ok(value.map_or(Value::Null, |bytes| Value::from(hex(&bytes))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;
    use crate::on_both_engines;
    use crate::testing::TestDatabase;

    const TABLES: &[Table] = &[Table {
        name: "things",
        key: &["id"],
        ignore: &[],
    }];

    async fn with_rows(
        engine: crate::db::Engine,
        rows: &[(&str, i64, Option<&str>)],
    ) -> anyhow::Result<(TestDatabase, Db)> {
        let database = TestDatabase::create(engine).await?;
        let db = db::connect(&database.url, &db::Migrations::none()).await?;
        sqlx::raw_sql("CREATE TABLE things (id TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)")
            .execute(&db.pool)
            .await?;
        for (id, n, note) in rows {
            sqlx::query("INSERT INTO things (id, n, note) VALUES ($1, $2, $3)")
                .bind(*id)
                .bind(*n)
                .bind(*note)
                .execute(&db.pool)
                .await?;
        }
        Ok((database, db))
    }

    async fn the_same_rows_inserted_in_any_order_have_the_same_checksum(
        engine: crate::db::Engine,
    ) -> anyhow::Result<()> {
        let (_a, a) = with_rows(engine, &[("b", 2, None), ("a", 1, Some("x"))]).await?;
        let (_b, b) = with_rows(engine, &[("a", 1, Some("x")), ("b", 2, None)]).await?;
        let (_c, c) = with_rows(engine, &[("a", 1, Some("y")), ("b", 2, None)]).await?;
        let (sa, sb, sc) = (
            checksums(&a, TABLES).await?,
            checksums(&b, TABLES).await?,
            checksums(&c, TABLES).await?,
        );
        assert_eq!(sa, sb);
        assert_eq!(sa[0].rows, 2);
        assert_ne!(sa, sc);
        assert!(differences(&a, &b, TABLES, 10).await?.is_empty());
        let diffs = differences(&a, &c, TABLES, 10).await?;
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert_eq!(diffs[0].key, r#"["a"]"#);
        assert_eq!(diffs[0].left.as_deref(), Some(r#"["a",1,"x"]"#));
        assert_eq!(diffs[0].right.as_deref(), Some(r#"["a",1,"y"]"#));
        Ok(())
    }

    on_both_engines!(the_same_rows_inserted_in_any_order_have_the_same_checksum);
}
