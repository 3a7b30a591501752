//! The relay's Kafka side: how its producer is configured, and how an event's envelope
//! becomes record headers.

use eventmart_events::Envelope;
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;

use super::RelayConfig;
use crate::kafka::client_config;

/// The relay's producer.
pub(super) type RelayProducer = FutureProducer<RelayContext>;

/// The relay's producer: idempotent, `acks=all`, and no local message timeout, so that it
/// never gives up on (and so never skips) a record while the broker is away; a failure it
/// does report ends the round and the producer is replaced.
pub(super) fn producer(config: &RelayConfig) -> Result<RelayProducer, KafkaError> {
    let mut client = client_config(&config.bootstrap_servers, &[]);
    client.set("linger.ms", config.linger.as_millis().to_string());
    for (key, value) in &config.kafka {
        client.set(key, value);
    }
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0")
        // Turn an error that would leave a gap in a partition's series into a fatal one, so
        // that a later record never lands without an earlier one.
        .set("enable.gapless.guarantee", "true")
        .create_with_context(RelayContext)
}

/// librdkafka's logging, minus its warning that `enable.gapless.guarantee` is experimental
/// (set on purpose, and it would otherwise be logged at every start).
pub(super) struct RelayContext;

impl ClientContext for RelayContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        if fac == "CONFWARN" && message.contains("enable.gapless.guarantee") {
            tracing::debug!(target: "librdkafka", "{fac} {message}");
        } else {
            DefaultClientContext.log(level, fac, message);
        }
    }
}

/// The envelope as record headers, each name once.
pub(super) fn headers(envelope: &Envelope) -> OwnedHeaders {
    envelope
        .to_headers()
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header {
                key,
                value: Some(&value),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    #[test]
    fn every_envelope_field_becomes_one_header() {
        let event =
            eventmart_events::Event::UserRegistered(eventmart_events::users::UserRegistered {
                user_id: uuid::Uuid::now_v7(),
                email: "a@example.com".to_owned(),
                name: "A".to_owned(),
                registered_at: eventmart_events::timestamp::now(),
            });
        let cause = Envelope::new(&event);
        let envelope = Envelope::new(&event)
            .caused_by(&cause)
            .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let headers = headers(&envelope);
        let keys: Vec<&str> = headers.iter().map(|h| h.key).collect();
        assert_eq!(keys, eventmart_events::envelope::headers::ALL);
        let event_id = headers.iter().find(|h| h.key == "event_id").unwrap();
        assert_eq!(
            event_id.value,
            Some(envelope.event_id.to_string().as_bytes())
        );
    }
}
