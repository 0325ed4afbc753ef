//! Prometheus metrics of the hub (listed in the README).

use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};

use crate::session::Counters;
use crate::window::WindowStats;

pub struct Metrics {
    registry: Registry,
    pub ingest_batches: IntCounter,
    pub ingest_entries: IntCounter,
    pub ingest_skipped: IntCounter,
    pub ingest_errors: IntCounter,
    pub delivered: IntCounter,
    pub lost: IntCounter,
    pub subscriptions: IntCounter,
    pub filter_errors: IntCounter,
    pub api_requests: IntCounter,
    pub api_rejected: IntCounter,
    clients: IntGauge,
    window_bytes: IntGauge,
    window_entries: IntGauge,
    ingesting: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("a valid metric name");
    r.register(Box::new(c.clone()))
        .expect("each metric registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric name");
    r.register(Box::new(g.clone()))
        .expect("each metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        let r = Registry::new();
        Metrics {
            ingest_batches: counter(
                &r,
                "reef_hub_ingest_batches_total",
                "Batches read into the window",
            ),
            ingest_entries: counter(
                &r,
                "reef_hub_ingest_entries_total",
                "Entries read into the window",
            ),
            ingest_skipped: counter(
                &r,
                "reef_hub_ingest_skipped_total",
                "Stored messages that were not entry batches of this version",
            ),
            ingest_errors: counter(
                &r,
                "reef_hub_ingest_errors_total",
                "Failed reads of the stream (retried)",
            ),
            delivered: counter(
                &r,
                "reef_hub_delivered_entries_total",
                "Entries queued to clients",
            ),
            lost: counter(
                &r,
                "reef_hub_lost_entries_total",
                "Entries dropped for slow clients",
            ),
            subscriptions: counter(&r, "reef_hub_subscriptions_total", "Subscriptions accepted"),
            filter_errors: counter(&r, "reef_hub_filter_errors_total", "Filters refused"),
            api_requests: counter(&r, "reef_hub_api_requests_total", "REST requests"),
            api_rejected: counter(
                &r,
                "reef_hub_api_rejected_total",
                "REST and WebSocket requests answered 4xx",
            ),
            clients: gauge(&r, "reef_hub_clients", "Connected WebSocket clients"),
            window_bytes: gauge(
                &r,
                "reef_hub_window_bytes",
                "Arrow memory held by the window",
            ),
            window_entries: gauge(&r, "reef_hub_window_entries", "Entries in the window"),
            ingesting: gauge(&r, "reef_hub_ingesting", "1 while the hub reads the stream"),
            registry: r,
        }
    }
}

impl Metrics {
    pub fn render(&self, clients: usize, window: WindowStats, ingesting: bool) -> String {
        self.clients.set(clients as i64);
        self.window_bytes.set(window.bytes as i64);
        self.window_entries.set(window.entries as i64);
        self.ingesting.set(i64::from(ingesting));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Counters for Metrics {
    fn delivered(&self, entries: u64) {
        self.delivered.inc_by(entries);
    }
    fn lost(&self, entries: u64) {
        self.lost.inc_by(entries);
    }
}
