//! `eventmart schemas register`: registers every event schema under its subject, by the
//! topic-and-record-name strategy (`<topic>-<record full name>`), as the codec does.

use anyhow::{Context, bail};
use eventmart_events::catalog;
use serde_json::json;

use eventmart_runtime::process::Connections;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

pub(crate) async fn register(conn: &Connections) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let topics = conn.topics();
    let base = conn.registry_url.trim_end_matches('/');
    for entry in catalog() {
        let subject = entry.subject(&topics.name(entry.topic));
        let url = format!("{base}/subjects/{}/versions", encode_path(&subject));
        let response = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&json!({ "schema": entry.avsc, "schemaType": "AVRO" }))
            .send()
            .await
            .with_context(|| format!("schema registry at {base} is unreachable"))?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("registering {subject} failed with {status}: {body}");
        }
        println!("{subject}\tid {}", body["id"]);
    }
    Ok(())
}

/// Percent-encodes the characters a subject may hold that a path segment may not.
fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::encode_path;

    #[test]
    fn subjects_with_slashes_are_escaped() {
        assert_eq!(encode_path("a/b-c.D"), "a%2Fb-c.D");
    }
}
