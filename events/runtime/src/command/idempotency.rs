//! The idempotency-key store (table `idempotency_keys`, migration `9003_idempotency.sql`).
//!
//! A command with a key first claims it inside its transaction: the insert of the key either
//! succeeds (the command runs and its response is written to the claimed row before commit),
//! or meets a committed row (its response is answered again). On PostgreSQL a claim by a
//! concurrent request with the same key waits for that request to commit or roll back, so
//! concurrent repeats run the command once and all get the first response.

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, AnyPool, Row};

use super::CommandError;

/// Longest key accepted.
const MAX_KEY_LEN: usize = 255;

/// What a claim found.
#[derive(Debug)]
pub(super) enum Claim {
    /// The key is new: run the command and [`store`] its response.
    Claimed,
    /// A request with this key and the same fingerprint was answered this way.
    Answered {
        status: StatusCode,
        body: serde_json::Value,
    },
    /// The key was used for a different request.
    Reused,
}

/// Checks that `key` is a usable idempotency key: 1 to 255 visible ASCII characters.
pub(super) fn validate(key: &str) -> Result<(), CommandError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(CommandError::InvalidIdempotencyKey(format!(
            "must be 1 to {MAX_KEY_LEN} characters long, got {}",
            key.len()
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CommandError::InvalidIdempotencyKey(
            "must be visible ASCII characters (a UUID is a good key)".to_owned(),
        ));
    }
    Ok(())
}

/// The stored form of a request fingerprint: SHA-256, hex.
pub(super) fn hash(fingerprint: &[u8]) -> String {
    Sha256::digest(fingerprint)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) async fn claim(
    tx: &mut AnyConnection,
    key: &str,
    request_hash: &str,
    now: i64,
) -> Result<Claim, CommandError> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys \
         (idempotency_key, request_hash, status, response, created_at) \
         VALUES ($1, $2, 0, '', $3) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Claimed);
    }
    let row = sqlx::query(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE idempotency_key = $1",
    )
    .bind(key)
    .fetch_one(&mut *tx)
    .await?;
    let stored_hash: String = row.try_get("request_hash")?;
    if stored_hash != request_hash {
        return Ok(Claim::Reused);
    }
    let status: i32 = row.try_get("status")?;
    let response: String = row.try_get("response")?;
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| {
            CommandError::Internal(format!(
                "stored status {status} of key {key:?} is no status"
            ))
        })?;
    let body = serde_json::from_str(&response)?;
    Ok(Claim::Answered { status, body })
}

/// Writes the response of a claimed key; committed with the command or not at all.
pub(super) async fn store(
    tx: &mut AnyConnection,
    key: &str,
    status: StatusCode,
    body: &serde_json::Value,
) -> Result<(), CommandError> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $2, response = $3 WHERE idempotency_key = $1",
    )
    .bind(key)
    .bind(i32::from(status.as_u16()))
    .bind(body.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes keys stored before `before_millis` (epoch milliseconds).
pub(super) async fn forget(pool: &AnyPool, before_millis: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before_millis)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(validate("0190c2a8-7a8e-7cc4-9f3c-2b4a6c1d5e7f").is_ok());
        assert!(validate("").is_err());
        assert!(validate("with space").is_err());
        assert!(validate("naïve").is_err());
        assert!(validate(&"k".repeat(256)).is_err());
    }

    #[test]
    fn fingerprints_are_stored_as_sha256_hex() {
        assert_eq!(
            hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
