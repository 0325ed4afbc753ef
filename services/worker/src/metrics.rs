//! Prometheus metrics, computed from the threads' snapshots when scraped. Every name is
//! listed in the README.

use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::outbox::{Kind, Outbox};
use crate::producer::{PairCounts, Shared, Snapshot};

/// Where the numbers come from.
#[derive(Clone)]
pub struct Sources {
    pub shared: Arc<Shared>,
    pub outbox: Arc<Outbox>,
    pub capture: Option<Arc<reef_capture::Control>>,
}

pub struct Metrics {
    registry: Registry,
    counters: Vec<(&'static str, IntCounter)>,
    labelled: Vec<(&'static str, IntCounterVec)>,
    gauges: Vec<(&'static str, IntGauge)>,
    sources: Sources,
}

/// (name, help, label) of the counters that have a label.
const LABELLED: &[(&str, &str, &str)] = &[
    (
        "reef_entries_total",
        "Entries produced, by protocol.",
        "protocol",
    ),
    (
        "reef_matched_pairs_total",
        "Entries whose request and response were both seen, by protocol.",
        "protocol",
    ),
    (
        "reef_unmatched_requests_total",
        "Requests emitted without a response (no_response), by protocol.",
        "protocol",
    ),
    (
        "reef_unmatched_responses_total",
        "Responses emitted without a request (no_request), by protocol.",
        "protocol",
    ),
    (
        "reef_reassembly_dropped_bytes_total",
        "TCP bytes given up on, by reason.",
        "reason",
    ),
    (
        "reef_undecoded_packets_total",
        "Frames without a usable IP packet, by reason.",
        "reason",
    ),
    (
        "reef_produced_rows_total",
        "Rows put into batches, by kind (entries, flows).",
        "kind",
    ),
    (
        "reef_published_batches_total",
        "Batches acknowledged by JetStream, by kind.",
        "kind",
    ),
    (
        "reef_published_rows_total",
        "Rows in acknowledged batches, by kind.",
        "kind",
    ),
    (
        "reef_published_bytes_total",
        "Bytes of acknowledged batches, by kind.",
        "kind",
    ),
    (
        "reef_dropped_batches_total",
        "Batches dropped unpublished (buffer full or refused), by kind.",
        "kind",
    ),
    (
        "reef_dropped_rows_total",
        "Rows in dropped batches, by kind.",
        "kind",
    ),
];

/// (name, help) of the counters without labels.
const COUNTERS: &[(&str, &str)] = &[
    (
        "reef_received_packets_total",
        "Packets the kernel delivered to the capture sockets (live) or read from files (replay).",
    ),
    (
        "reef_dropped_packets_total",
        "Packets the kernel dropped because a capture ring was full.",
    ),
    ("reef_processed_packets_total", "Packets dissected."),
    (
        "reef_received_bytes_total",
        "Bytes of the packets dissected.",
    ),
    (
        "reef_tcp_gap_bytes_total",
        "TCP bytes the capture missed (reported as gaps).",
    ),
    (
        "reef_publish_failures_total",
        "Publishes that failed or were not acknowledged (retried).",
    ),
    (
        "reef_redacted_values_total",
        "Header and JSON values replaced by [REDACTED].",
    ),
];

/// (name, help) of the gauges.
const GAUGES: &[(&str, &str)] = &[
    ("reef_live_tcp_streams", "TCP connections tracked now."),
    (
        "reef_buffered_bytes",
        "Encoded batches waiting to be published.",
    ),
    (
        "reef_kept_body_bytes",
        "Body bytes held by messages in progress.",
    ),
];

/// Raises a counter to a total computed elsewhere (counters here only ever grow).
fn raise(c: &IntCounter, total: u64) {
    c.inc_by(total.saturating_sub(c.get()));
}

impl Metrics {
    pub fn new(sources: Sources) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let mut counters = Vec::new();
        for (name, help) in COUNTERS {
            let c = IntCounter::new(*name, *help)?;
            registry.register(Box::new(c.clone()))?;
            counters.push((*name, c));
        }
        let mut labelled = Vec::new();
        for (name, help, label) in LABELLED {
            let v = IntCounterVec::new(Opts::new(*name, *help), &[label])?;
            registry.register(Box::new(v.clone()))?;
            labelled.push((*name, v));
        }
        let mut gauges = Vec::new();
        for (name, help) in GAUGES {
            let g = IntGauge::new(*name, *help)?;
            registry.register(Box::new(g.clone()))?;
            gauges.push((*name, g));
        }
        Ok(Metrics {
            registry,
            counters,
            labelled,
            gauges,
            sources,
        })
    }

    fn counter(&self, name: &str, total: u64) {
        if let Some((_, c)) = self.counters.iter().find(|(n, _)| *n == name) {
            raise(c, total);
        }
    }

    fn labelled(&self, name: &str, label: &str, total: u64) {
        if let Some((_, v)) = self.labelled.iter().find(|(n, _)| *n == name) {
            raise(&v.with_label_values(&[label]), total);
        }
    }

    fn gauge(&self, name: &str, v: i64) {
        if let Some((_, g)) = self.gauges.iter().find(|(n, _)| *n == name) {
            g.set(v);
        }
    }

    /// The metrics in Prometheus text format, brought up to date.
    pub fn render(&self) -> String {
        let snaps = self.sources.shared.snapshots();
        let sum = |f: &dyn Fn(&Snapshot) -> u64| snaps.iter().map(f).sum::<u64>();
        let (kernel_received, kernel_dropped) = match &self.sources.capture {
            Some(c) => c.kernel_counts().unwrap_or((0, 0)),
            None => (sum(&|s| s.engine.packets), 0),
        };
        let o = &self.sources.outbox;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.counter("reef_received_packets_total", kernel_received);
        self.counter("reef_dropped_packets_total", kernel_dropped);
        self.counter("reef_processed_packets_total", sum(&|s| s.engine.packets));
        self.counter("reef_received_bytes_total", sum(&|s| s.engine.bytes));
        self.counter(
            "reef_tcp_gap_bytes_total",
            sum(&|s| s.engine.reassembly.gap_bytes),
        );
        self.counter("reef_publish_failures_total", ld(&o.failures));
        self.counter("reef_redacted_values_total", sum(&|s| s.redacted_values));

        let mut by_protocol = BTreeMap::<&str, PairCounts>::new();
        let mut drops = BTreeMap::<&str, u64>::new();
        let mut undecoded = BTreeMap::<&str, u64>::new();
        for s in &snaps {
            for (p, c) in &s.by_protocol {
                let t = by_protocol.entry(p).or_default();
                t.entries += c.entries;
                t.matched += c.matched;
                t.unmatched_requests += c.unmatched_requests;
                t.unmatched_responses += c.unmatched_responses;
            }
            for (reason, n) in s.engine.tcp_drops() {
                *drops.entry(reason).or_default() += n;
            }
            for (r, n) in &s.engine.undecoded {
                *undecoded.entry(r).or_default() += n;
            }
        }
        for (p, c) in by_protocol {
            self.labelled("reef_entries_total", p, c.entries);
            self.labelled("reef_matched_pairs_total", p, c.matched);
            self.labelled("reef_unmatched_requests_total", p, c.unmatched_requests);
            self.labelled("reef_unmatched_responses_total", p, c.unmatched_responses);
        }
        for (r, n) in drops {
            self.labelled("reef_reassembly_dropped_bytes_total", r, n);
        }
        for (r, n) in undecoded {
            self.labelled("reef_undecoded_packets_total", r, n);
        }
        for k in Kind::ALL {
            let c = o.count(k);
            self.labelled("reef_produced_rows_total", k.as_str(), ld(&c.produced_rows));
            self.labelled(
                "reef_published_batches_total",
                k.as_str(),
                ld(&c.published_batches),
            );
            self.labelled(
                "reef_published_rows_total",
                k.as_str(),
                ld(&c.published_rows),
            );
            self.labelled(
                "reef_published_bytes_total",
                k.as_str(),
                ld(&c.published_bytes),
            );
            self.labelled(
                "reef_dropped_batches_total",
                k.as_str(),
                ld(&c.dropped_batches),
            );
            self.labelled("reef_dropped_rows_total", k.as_str(), ld(&c.dropped_rows));
        }
        self.gauge(
            "reef_live_tcp_streams",
            snaps.iter().map(|s| s.engine.live_flows as i64).sum(),
        );
        self.gauge("reef_buffered_bytes", o.buffered_bytes() as i64);
        self.gauge(
            "reef_kept_body_bytes",
            snaps.iter().map(|s| s.engine.kept_body_bytes as i64).sum(),
        );
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => format!("# encoding failed: {e}\n"),
        }
    }
}

/// Serves `/metrics` and `/healthz` on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    use axum::routing::get;
    let m = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
    axum::serve(listener, app)
        .await
        .map_err(|e| anyhow::anyhow!("metrics server: {e}"))
}
