//! `eventmart topics`: create every topic the system uses, and list what the broker has.

use std::time::Duration;

use eventmart_runtime::kafka::{self, Provisioned, TopicLayout};

use eventmart_runtime::process::Connections;

pub(crate) async fn create(
    conn: &Connections,
    partitions: i32,
    replication_factor: i32,
    wait: Duration,
) -> anyhow::Result<()> {
    kafka::wait_for_broker(&conn.bootstrap_servers, &conn.kafka, wait).await?;
    let layout = TopicLayout {
        partitions,
        replication_factor,
        ..TopicLayout::default()
    };
    let names = conn.topics().all();
    for outcome in
        kafka::provision_topics(&conn.bootstrap_servers, &conn.kafka, &names, &layout).await?
    {
        match outcome {
            Provisioned::Created(topic) => println!("created {topic}"),
            Provisioned::Existed(topic) => println!("exists  {topic}"),
        }
    }
    Ok(())
}

pub(crate) async fn list(conn: &Connections, names_only: bool) -> anyhow::Result<()> {
    for (topic, partitions) in kafka::list_topics(&conn.bootstrap_servers, &conn.kafka).await? {
        if names_only {
            println!("{topic}");
        } else {
            println!("{topic}\t{partitions} partitions");
        }
    }
    Ok(())
}
