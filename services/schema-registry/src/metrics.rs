//! The registry's own figures, served at `/metrics` in the Prometheus text format.
//!
//! The runtime's `Metrics` count events consumed and relayed, which a registry never does;
//! what an operator wants from a registry is whether producers keep registering schemas and
//! how often a schema is turned away. Every series exists from the start at zero, as in the
//! rest of the project, so that rates and alerts work before the first registration.
//!
//! Not here: latency or request counts per route (a proxy or mesh measures those).

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// What became of a registration, the `outcome` label of
/// `eventmart_schema_registrations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The schema became a new version of the subject.
    Registered,
    /// The schema already was a live version of the subject: its id was returned again.
    Existing,
    /// The subject's compatibility level refused it (HTTP 409).
    Incompatible,
    /// It is not a valid Avro schema, or its references do not resolve (HTTP 422).
    Invalid,
    /// Anything else: the database failed, or stored data did not make sense (HTTP 500).
    Failed,
}

impl Outcome {
    const ALL: [Self; 5] = [
        Self::Registered,
        Self::Existing,
        Self::Incompatible,
        Self::Invalid,
        Self::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::Existing => "existing",
            Self::Incompatible => "incompatible",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
        }
    }
}

/// The registry's metrics; cheap to clone, one per process.
#[derive(Debug, Clone)]
pub(crate) struct RegistryMetrics {
    registry: Registry,
    registrations: IntCounterVec,
}

impl RegistryMetrics {
    /// Every series at zero.
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let registrations = IntCounterVec::new(
            Opts::new(
                "eventmart_schema_registrations_total",
                "Schema registrations (POST /subjects/{subject}/versions), by outcome.",
            ),
            &["outcome"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(registrations.clone()))
            .expect("a metric registered once");
        for outcome in Outcome::ALL {
            registrations
                .with_label_values(&[outcome.label()])
                .inc_by(0);
        }
        Self {
            registry,
            registrations,
        }
    }

    /// A registration ended with `outcome`.
    pub(crate) fn registration(&self, outcome: Outcome) {
        self.registrations
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// Every series in the Prometheus text format (version 0.0.4), the content type of
    /// `eventmart_runtime::metrics::Metrics::CONTENT_TYPE`.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_is_exported_at_zero_before_the_first_registration() {
        // given / when
        let text = RegistryMetrics::new().render();
        // then
        for outcome in Outcome::ALL {
            let series = format!(
                "eventmart_schema_registrations_total{{outcome=\"{}\"}} 0",
                outcome.label()
            );
            assert!(text.contains(&series), "{series} missing from:\n{text}");
        }
    }

    #[test]
    fn a_registration_counts_under_its_outcome_only() {
        // given
        let metrics = RegistryMetrics::new();
        // when
        metrics.registration(Outcome::Incompatible);
        // then
        let text = metrics.render();
        assert!(text.contains("eventmart_schema_registrations_total{outcome=\"incompatible\"} 1"));
        assert!(text.contains("eventmart_schema_registrations_total{outcome=\"registered\"} 0"));
    }
}
