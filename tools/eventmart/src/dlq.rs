//! `eventmart dlq`: list a topic's dead letters, show one in full, and replay them onto the
//! topic once their cause is fixed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use eventmart_events::{Codec, RawRecord, to_json, topics};
use eventmart_runtime::dlq::{self, DeadLetter, Selection};
use eventmart_runtime::kafka::client_config;
use eventmart_runtime::process::Connections;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// Which dead letters.
#[derive(Debug, clap::Args)]
pub(crate) struct DlqArgs {
    /// The topic whose dead letters to read, as named without the prefix (orders, users, …).
    #[arg(long, short)]
    topic: String,
    /// Only dead letters of this kind (undecodable, schema_invalid, unknown_event_type,
    /// bad_envelope, handler_failed).
    #[arg(long)]
    kind: Option<String>,
    /// Only dead letters at or after this offset (in every partition of the dead-letter topic).
    #[arg(long)]
    from_offset: Option<i64>,
    /// Only this partition of the dead-letter topic.
    #[arg(long)]
    partition: Option<i32>,
}

impl DlqArgs {
    fn dlq_topic(&self, conn: &Connections) -> String {
        topics::dlq(&format!("{}{}", conn.topic_prefix, self.topic))
    }

    fn selection(&self) -> Selection {
        Selection {
            kind: self.kind.clone(),
            from_offset: self.from_offset,
            partition: self.partition,
        }
    }
}

/// One line per dead letter: its partition:offset, kind, original position and message.
pub(crate) async fn list(conn: &Connections, args: DlqArgs) -> anyhow::Result<()> {
    let kafka = client_config(&conn.bootstrap_servers, &conn.kafka);
    let letters = dlq::list(&kafka, &args.dlq_topic(conn), &args.selection()).await?;
    for letter in &letters {
        println!(
            "{}:{}\t{}\t{}\t{}",
            letter.partition,
            letter.offset,
            letter.error_kind,
            letter.original_position(),
            letter.error_message.replace('\n', " "),
        );
    }
    eprintln!("{} dead letters", letters.len());
    Ok(())
}

/// Puts the selected dead letters back on their topic, one line per record.
pub(crate) async fn replay(conn: &Connections, args: DlqArgs) -> anyhow::Result<()> {
    let kafka = client_config(&conn.bootstrap_servers, &conn.kafka);
    let dlq_topic = args.dlq_topic(conn);
    let report = dlq::replay(&kafka, &dlq_topic, &args.selection()).await?;
    for replayed in &report.replayed {
        let (topic, partition, offset) = &replayed.original;
        println!(
            "{}:{}\t{}\t{topic}/{partition}@{offset}\t-> {topic}/{}@{}",
            replayed.from.0, replayed.from.1, replayed.kind, replayed.to.0, replayed.to.1,
        );
    }
    for (partition, offset) in &report.unreplayable {
        eprintln!("{partition}:{offset}\tskipped: it does not say which topic it came from");
    }
    eprintln!(
        "replayed {} dead letters from {dlq_topic} (up to {:?}); {} of other kinds left alone; \
         {} more dead letters of records put back once (another consumer group failed on them \
         too)",
        report.replayed.len(),
        report.ends,
        report.not_selected,
        report.copies.len(),
    );
    Ok(())
}

/// Which dead letter to show.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The topic whose dead letter to show, as named without the prefix (orders, users, …).
    #[arg(long, short)]
    topic: String,
    /// Where the dead letter is in the dead-letter topic, as `dlq list` prints it.
    #[arg(value_name = "PARTITION:OFFSET")]
    position: Position,
    /// How long the broker may take to answer.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// A record's place in a topic: `partition:offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    partition: i32,
    offset: i64,
}

impl FromStr for Position {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected PARTITION:OFFSET (e.g. 0:17), got {s:?}");
        let (partition, offset) = s.split_once(':').ok_or_else(expected)?;
        let partition: i32 = partition.trim().parse().map_err(|_| expected())?;
        let offset: i64 = offset.trim().parse().map_err(|_| expected())?;
        if partition < 0 || offset < 0 {
            return Err(expected());
        }
        Ok(Self { partition, offset })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

/// Prints one dead letter in full: why and where it failed, its headers, its key, and its
/// value (as the event it decodes to, or as it is).
pub(crate) async fn show(conn: &Connections, args: ShowArgs) -> anyhow::Result<()> {
    let dlq_topic = topics::dlq(&format!("{}{}", conn.topic_prefix, args.topic));
    let Position { partition, offset } = args.position;
    let consumer: StreamConsumer = client_config(&conn.bootstrap_servers, &conn.kafka)
        // Assigned, never subscribed: the group is neither joined nor committed.
        .set("group.id", "eventmart-dlq-show")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating the Kafka consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(&dlq_topic), args.timeout)
        .with_context(|| format!("reading metadata of {dlq_topic}"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == dlq_topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        bail!("topic {dlq_topic} does not exist (run `eventmart topics create`)");
    }
    if !partitions.contains(&partition) {
        bail!(
            "{dlq_topic} has no partition {partition} (it has {} partitions)",
            partitions.len()
        );
    }
    let (low, high) = consumer
        .fetch_watermarks(&dlq_topic, partition, args.timeout)
        .with_context(|| format!("reading the ends of {dlq_topic}/{partition}"))?;
    if offset < low || offset >= high {
        let holds = if low >= high {
            "holds no records".to_owned()
        } else {
            format!("holds offsets {low} to {}", high - 1)
        };
        bail!("no dead letter at {dlq_topic} {partition}:{offset}: partition {partition} {holds}");
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&dlq_topic, partition, Offset::Offset(offset))?;
    consumer.assign(&assignment)?;
    let message = tokio::time::timeout(args.timeout, consumer.recv())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no record arrived from {dlq_topic} within {:?}",
                args.timeout
            )
        })?
        .with_context(|| format!("reading {dlq_topic} {partition}:{offset}"))?;
    if message.offset() != offset {
        bail!(
            "no dead letter at {dlq_topic} {partition}:{offset}: the next record is at {}",
            message.offset()
        );
    }
    let letter = DeadLetter::from_message(&message);
    let written = message
        .timestamp()
        .to_millis()
        .and_then(chrono::DateTime::from_timestamp_millis);
    let all_headers: Vec<(String, Option<Vec<u8>>)> = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    let value = describe_value(&Codec::new(&conn.registry_url), &letter, &all_headers).await;
    print!(
        "{}",
        render(&dlq_topic, &letter, written, &all_headers, &value)
    );
    Ok(())
}

/// A dead letter's value as shown: what it is, then its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShownValue {
    /// How the value was read (decoded, or why not).
    label: String,
    /// The value: pretty JSON, text or escaped bytes.
    text: String,
}

/// Decodes the value as the consumer would have at its original position; failing that,
/// shows it as JSON, text or escaped bytes, with the reason it does not decode.
async fn describe_value(
    codec: &Codec,
    letter: &DeadLetter,
    headers: &[(String, Option<Vec<u8>>)],
) -> ShownValue {
    let Some(bytes) = letter.value.as_deref() else {
        return ShownValue {
            label: "none (a tombstone)".to_owned(),
            text: String::new(),
        };
    };
    let (topic, partition, offset) = letter
        .original
        .clone()
        .unwrap_or_else(|| (String::new(), letter.partition, letter.offset));
    let mut record = RawRecord::new(&topic, partition, offset, Some(bytes)).with_headers(headers);
    if let Some(key) = letter.key.as_deref() {
        record = record.with_key(key);
    }
    match codec.decode(&record).await {
        Ok(decoded) => ShownValue {
            label: format!("{}, decoded", decoded.format),
            text: pretty(&to_json(&decoded.event, &decoded.envelope)),
        },
        Err(error) => {
            let why = format!("does not decode ({}: {error})", error.kind());
            match serde_json::from_slice::<serde_json::Value>(bytes) {
                Ok(json) => ShownValue {
                    label: format!("json, {why}"),
                    text: pretty(&json),
                },
                Err(_) => ShownValue {
                    label: format!("{} bytes, {why}", bytes.len()),
                    text: printable(bytes),
                },
            }
        }
    }
}

fn pretty(json: &serde_json::Value) -> String {
    serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string())
}

/// `bytes` as text when they are readable UTF-8, else with every unprintable byte escaped.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t') =>
        {
            text.to_owned()
        }
        _ => bytes.escape_ascii().to_string(),
    }
}

/// The text `dlq show` prints: labelled lines, then the headers, key and value.
fn render(
    dlq_topic: &str,
    letter: &DeadLetter,
    written: Option<chrono::DateTime<chrono::Utc>>,
    headers: &[(String, Option<Vec<u8>>)],
    value: &ShownValue,
) -> String {
    let unknown = || "?".to_owned();
    let header_text =
        |v: &Option<Vec<u8>>| v.as_deref().map_or_else(|| "(null)".to_owned(), printable);
    let mut lines: Vec<(String, String)> = vec![
        (
            "dead letter".to_owned(),
            format!("{dlq_topic} {}:{}", letter.partition, letter.offset),
        ),
        (
            "written at".to_owned(),
            written.map_or_else(unknown, |w| {
                w.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            }),
        ),
        ("kind".to_owned(), or_unknown(&letter.error_kind)),
        ("reason".to_owned(), or_unknown(&letter.error_message)),
        ("original".to_owned(), letter.original_position()),
        (
            "consumer group".to_owned(),
            letter.consumer_group.clone().unwrap_or_else(unknown),
        ),
        (
            "failed at".to_owned(),
            letter.failed_at.clone().unwrap_or_else(unknown),
        ),
        (
            "key".to_owned(),
            letter
                .key
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), printable),
        ),
    ];
    let others: Vec<&(String, Option<Vec<u8>>)> = headers
        .iter()
        .filter(|(k, _)| {
            k.starts_with(dlq::headers::PREFIX) && !KNOWN_DLQ_HEADERS.contains(&k.as_str())
        })
        .collect();
    for (k, v) in others {
        lines.push((k.clone(), header_text(v)));
    }
    let mut out = labelled(&lines, "");
    out.push_str("headers:\n");
    let envelope: Vec<(String, String)> = letter
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), header_text(v)))
        .collect();
    if envelope.is_empty() {
        out.push_str("  (none)\n");
    } else {
        out.push_str(&labelled(&envelope, "  "));
    }
    out.push_str(&format!("value: {}\n", value.label));
    if !value.text.is_empty() {
        out.push_str(&value.text);
        out.push('\n');
    }
    out
}

/// The `dlq.*` headers [`render`] shows under their own labels.
const KNOWN_DLQ_HEADERS: [&str; 7] = [
    dlq::headers::ERROR_KIND,
    dlq::headers::ERROR_MESSAGE,
    dlq::headers::ORIGINAL_TOPIC,
    dlq::headers::ORIGINAL_PARTITION,
    dlq::headers::ORIGINAL_OFFSET,
    dlq::headers::CONSUMER_GROUP,
    dlq::headers::FAILED_AT,
];

fn or_unknown(text: &str) -> String {
    if text.is_empty() {
        "?".to_owned()
    } else {
        text.to_owned()
    }
}

/// `label:  value` lines with the values aligned; a value's later lines are indented to match.
fn labelled(lines: &[(String, String)], indent: &str) -> String {
    // The longest label, its colon and two spaces.
    let width = lines
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 3;
    let mut out = String::new();
    for (label, value) in lines {
        let mut value_lines = value.lines();
        let head = format!("{label}:");
        let first = format!("{indent}{head:<width$}{}", value_lines.next().unwrap_or(""));
        out.push_str(first.trim_end());
        out.push('\n');
        for more in value_lines {
            out.push_str(&format!("{indent}{:width$}{more}\n", ""));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_partition_colon_offset() {
        assert_eq!(
            "2:17".parse::<Position>(),
            Ok(Position {
                partition: 2,
                offset: 17
            })
        );
        for bad in ["2", "2:", ":3", "a:1", "-1:3", "1:-3", "1:2:3"] {
            assert!(bad.parse::<Position>().is_err(), "{bad}");
        }
    }

    #[test]
    fn readable_bytes_are_text_and_others_are_escaped() {
        assert_eq!(printable(b"order 1\nline 2"), "order 1\nline 2");
        assert_eq!(printable(b"\x00\x07ab\xff"), "\\x00\\x07ab\\xff");
    }

    #[test]
    fn a_dead_letter_shows_its_reason_origin_headers_key_and_value() {
        let letter = DeadLetter {
            partition: 1,
            offset: 4,
            error_kind: "schema_invalid".to_owned(),
            error_message: "field `email` is invalid:\nmissing".to_owned(),
            original: Some(("users".to_owned(), 2, 9)),
            consumer_group: Some("orders".to_owned()),
            failed_at: Some("2026-01-02T03:04:05.006Z".to_owned()),
            key: Some(b"u1".to_vec()),
            value: Some(b"{}".to_vec()),
            headers: vec![
                ("event_type".to_owned(), Some(b"user.registered".to_vec())),
                ("traceparent".to_owned(), None),
            ],
        };
        let value = ShownValue {
            label: "json, does not decode".to_owned(),
            text: "{}".to_owned(),
        };
        let text = render("users.dlq", &letter, None, &[], &value);
        assert_eq!(
            text,
            "dead letter:     users.dlq 1:4\n\
             written at:      ?\n\
             kind:            schema_invalid\n\
             reason:          field `email` is invalid:\n\
             \x20                missing\n\
             original:        users/2@9\n\
             consumer group:  orders\n\
             failed at:       2026-01-02T03:04:05.006Z\n\
             key:             u1\n\
             headers:\n\
             \x20 event_type:   user.registered\n\
             \x20 traceparent:  (null)\n\
             value: json, does not decode\n\
             {}\n"
        );
    }
}
