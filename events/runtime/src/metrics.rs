//! Process metrics in the Prometheus text format, served at `/metrics`.
//!
//! One [`Metrics`] per process, cloned into every task that records something. Names follow
//! Prometheus conventions (`_total` for counters, base units in seconds).

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets from 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The runtime's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    consumed: IntCounterVec,
    produced: IntCounterVec,
    dead_lettered: IntCounterVec,
    duplicates: IntCounterVec,
    reread: IntCounterVec,
    parked: IntCounterVec,
    rejoins: IntCounterVec,
    handler_seconds: HistogramVec,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    lag: IntGaugeVec,
    outbox_backlog: IntGauge,
    relay_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            let h = HistogramVec::new(opts, labels).expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let consumed = counter(
            "eventmart_events_consumed_total",
            "Events whose effect was committed, by topic.",
            &["topic"],
        );
        let produced = counter(
            "eventmart_events_produced_total",
            "Events acknowledged by the broker, by topic.",
            &["topic"],
        );
        let dead_lettered = counter(
            "eventmart_events_dead_lettered_total",
            "Records sent to a dead-letter topic, by original topic and error kind.",
            &["topic", "kind"],
        );
        let duplicates = counter(
            "eventmart_events_duplicate_total",
            "Records skipped because their event had already been applied, by topic.",
            &["topic"],
        );
        let reread = counter(
            "eventmart_events_reread_total",
            "Records read again below the group's stored position (applied before, skipped \
             without decoding), by topic.",
            &["topic"],
        );
        let parked = counter(
            "eventmart_events_parked_total",
            "Events set aside for their key (waiting for a fact, or queued behind one that \
             waits), by topic.",
            &["topic"],
        );
        let rejoins = counter(
            "eventmart_consumer_rejoins_total",
            "Times a member left and rejoined its group because records waited in partitions \
             no live member owned, by group.",
            &["group"],
        );
        let handler_seconds = histogram(
            "eventmart_handler_duration_seconds",
            "Time to apply one event, including its database transaction, by topic.",
            &["topic"],
        );
        let relay_seconds = histogram(
            "eventmart_relay_latency_seconds",
            "Time from an event's commit in the outbox to the broker's acknowledgement.",
            &["topic"],
        );
        let http_requests = counter(
            "eventmart_http_requests_total",
            "HTTP requests answered, by method, route (its template) and status.",
            &["method", "route", "status"],
        );
        let http_seconds = histogram(
            "eventmart_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route (its template).",
            &["method", "route"],
        );
        let lag = IntGaugeVec::new(
            Opts::new(
                "eventmart_consumer_lag",
                "Records between the consumer's position and the partition's end.",
            ),
            &["topic", "partition"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(lag.clone()))
            .expect("unique metric");
        let outbox_backlog = IntGauge::new(
            "eventmart_outbox_backlog",
            "Committed events not yet acknowledged by the broker.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(outbox_backlog.clone()))
            .expect("unique metric");
        Self {
            inner: Arc::new(Inner {
                registry,
                consumed,
                produced,
                dead_lettered,
                duplicates,
                reread,
                parked,
                rejoins,
                handler_seconds,
                http_requests,
                http_seconds,
                lag,
                outbox_backlog,
                relay_seconds,
            }),
        }
    }

    /// Exports every series of a consumer of `group` reading `topics` at zero, so that a
    /// dashboard or alert sees the families (and rates start from zero) before the first
    /// event, dead letter or rejoin.
    pub fn consumer_started(&self, group: &str, topics: &[String]) {
        /// Every kind a record is dead-lettered for.
        const KINDS: [&str; 6] = [
            "undecodable",
            "schema_invalid",
            "unknown_event_type",
            "bad_envelope",
            crate::dlq::HANDLER_FAILED,
            crate::consumer::PARK_EXPIRED,
        ];
        let inner = &self.inner;
        inner.rejoins.with_label_values(&[group]).inc_by(0);
        for topic in topics {
            let topic = topic.as_str();
            for counter in [
                &inner.consumed,
                &inner.duplicates,
                &inner.reread,
                &inner.parked,
            ] {
                counter.with_label_values(&[topic]).inc_by(0);
            }
            for kind in KINDS {
                inner
                    .dead_lettered
                    .with_label_values(&[topic, kind])
                    .inc_by(0);
            }
            let _ = inner.handler_seconds.with_label_values(&[topic]);
        }
    }

    /// Exports the series of a relay publishing to `topic` at zero.
    pub fn relay_started(&self, topic: &str) {
        self.inner.produced.with_label_values(&[topic]).inc_by(0);
        let _ = self.inner.relay_seconds.with_label_values(&[topic]);
    }

    /// `n` events from `topic` had their effect committed.
    pub fn consumed(&self, topic: &str, n: u64) {
        self.inner.consumed.with_label_values(&[topic]).inc_by(n);
    }

    /// `n` events were acknowledged by the broker on `topic`.
    pub fn produced(&self, topic: &str, n: u64) {
        self.inner.produced.with_label_values(&[topic]).inc_by(n);
    }

    /// A record of `topic` went to its dead-letter topic for an error of `kind`.
    pub fn dead_lettered(&self, topic: &str, kind: &str) {
        self.inner
            .dead_lettered
            .with_label_values(&[topic, kind])
            .inc();
    }

    /// A record of `topic` carried an event already applied, and was skipped.
    pub fn duplicate(&self, topic: &str) {
        self.inner.duplicates.with_label_values(&[topic]).inc();
    }

    /// `n` records of `topic` were read again below the group's stored position.
    pub fn reread(&self, topic: &str, n: u64) {
        self.inner.reread.with_label_values(&[topic]).inc_by(n);
    }

    /// An event of `topic` was parked for its key.
    pub fn parked(&self, topic: &str) {
        self.inner.parked.with_label_values(&[topic]).inc();
    }

    /// A member of `group` left and rejoined it to get orphaned partitions assigned again.
    pub fn rejoined(&self, group: &str) {
        self.inner.rejoins.with_label_values(&[group]).inc();
    }

    /// Applying one event of `topic` took `seconds`.
    pub fn handled(&self, topic: &str, seconds: f64) {
        self.inner
            .handler_seconds
            .with_label_values(&[topic])
            .observe(seconds);
    }

    /// A `method` request to `route` was answered with `status` in `seconds`.
    pub fn http_request(&self, method: &str, route: &str, status: &str, seconds: f64) {
        self.inner
            .http_requests
            .with_label_values(&[method, route, status])
            .inc();
        self.inner
            .http_seconds
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The consumer of `topic`/`partition` is `lag` records behind the end.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.inner
            .lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// `n` committed events wait for the relay.
    pub fn set_outbox_backlog(&self, n: i64) {
        self.inner.outbox_backlog.set(n);
    }

    /// An event of `topic` reached the broker `seconds` after its commit.
    pub fn relayed(&self, topic: &str, seconds: f64) {
        self.inner
            .relay_seconds
            .with_label_values(&[topic])
            .observe(seconds);
    }

    /// Every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.inner.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The content type of [`Metrics::render`]'s output.
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4; charset=utf-8";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumers_and_a_relays_families_are_exported_at_zero_from_the_start() {
        let metrics = Metrics::new();
        metrics.consumer_started("orders", &["payments".to_owned()]);
        metrics.relay_started("orders");
        let text = metrics.render();
        for series in [
            "eventmart_events_consumed_total{topic=\"payments\"} 0",
            "eventmart_events_duplicate_total{topic=\"payments\"} 0",
            "eventmart_events_parked_total{topic=\"payments\"} 0",
            "eventmart_events_dead_lettered_total{kind=\"park_expired\",topic=\"payments\"} 0",
            "eventmart_events_dead_lettered_total{kind=\"undecodable\",topic=\"payments\"} 0",
            "eventmart_handler_duration_seconds_count{topic=\"payments\"} 0",
            "eventmart_consumer_rejoins_total{group=\"orders\"} 0",
            "eventmart_events_produced_total{topic=\"orders\"} 0",
            "eventmart_relay_latency_seconds_count{topic=\"orders\"} 0",
            "eventmart_outbox_backlog 0",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
    }

    #[test]
    fn recorded_figures_appear_in_the_text_format() {
        let metrics = Metrics::new();
        metrics.consumed("orders", 3);
        metrics.dead_lettered("orders", "schema_invalid");
        metrics.set_lag("orders", 2, 17);
        metrics.handled("orders", 0.002);
        let text = metrics.render();
        assert!(text.contains("eventmart_events_consumed_total{topic=\"orders\"} 3"));
        assert!(text.contains(
            "eventmart_events_dead_lettered_total{kind=\"schema_invalid\",topic=\"orders\"} 1"
        ));
        assert!(text.contains("eventmart_consumer_lag{partition=\"2\",topic=\"orders\"} 17"));
        assert!(text.contains("eventmart_handler_duration_seconds_count{topic=\"orders\"} 1"));
    }
}
