//! One registry of counters for the whole node, exposed later as Prometheus text.

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;

type Labels = Vec<(String, String)>;

/// The node's metrics registry.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
    counters: Mutex<HashMap<String, Family<Labels, Counter>>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// The counter `name` with these labels, registered on first use; increment it with
    /// `.inc()` (a relaxed atomic add).
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        let mut counters = self.counters.lock();
        let family = counters.entry(name.to_string()).or_insert_with(|| {
            let family = Family::<Labels, Counter>::default();
            self.registry.lock().register(name, help, family.clone());
            family
        });
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let counter = family.get_or_create(&labels).clone();
        counter
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_per_name_and_labels() {
        let m = Metrics::new();
        let a = m.counter("stage_messages_in", "Messages handled", &[("stage", "a")]);
        let a2 = m.counter("stage_messages_in", "Messages handled", &[("stage", "a")]);
        let b = m.counter("stage_messages_in", "Messages handled", &[("stage", "b")]);
        a.inc();
        a2.inc();
        b.inc();
        assert_eq!(a.get(), 2);
        let text = m.encode();
        assert!(
            text.contains(r#"stage_messages_in_total{stage="a"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"stage_messages_in_total{stage="b"} 1"#),
            "{text}"
        );
    }
}
