//! `eventmart dlq`: list a topic's dead letters, and replay them onto the topic once their
//! cause is fixed.

use eventmart_events::topics;
use eventmart_runtime::dlq::{self, Selection};
use eventmart_runtime::kafka::client_config;
use eventmart_runtime::process::Connections;

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
        "replayed {} dead letters from {dlq_topic} (up to {:?}); {} of other kinds left alone",
        report.replayed.len(),
        report.ends,
        report.not_selected,
    );
    Ok(())
}
