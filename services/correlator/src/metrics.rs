//! Prometheus metrics: counters updated as batches go through, gauges read when
//! scraped. Every name is listed in the README.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use reef_k8s_index::K8sIndex;

use crate::config::ExtraMetrics;
use crate::enrich::EnrichStats;
use crate::os_index::OsIndex;

const SIDES: [&str; 2] = ["src", "dst"];

pub struct Metrics {
    registry: Registry,
    pub batches_in: IntCounter,
    pub entries_in: IntCounter,
    pub batches_out: IntCounter,
    pub entries_out: IntCounter,
    pub bytes_out: IntCounter,
    pub poison: IntCounter,
    pub publish_failures: IntCounter,
    pub redelivered: IntCounter,
    pub waited: IntCounter,
    pub resolved: IntCounterVec,
    pub unresolved: IntCounterVec,
    pub process: IntCounterVec,
    pub k8s_events: IntCounter,
    pub os_events: IntCounter,
    pub lag: IntGauge,
    pub held: IntGauge,
    k8s_ips: IntGauge,
    os_connections: IntGauge,
    k8s: Arc<RwLock<K8sIndex>>,
    os: Arc<RwLock<OsIndex>>,
    extra: Option<ExtraMetrics>,
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn by_side(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["side"])?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    pub fn new(
        k8s: Arc<RwLock<K8sIndex>>,
        os: Arc<RwLock<OsIndex>>,
        extra: Option<ExtraMetrics>,
    ) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        Ok(Metrics {
            batches_in: counter(
                &r,
                "reef_correlator_batches_in_total",
                "Entry batches (messages) received from REEF_RAW, redeliveries included.",
            )?,
            entries_in: counter(&r, "reef_correlator_entries_in_total", "Entries received.")?,
            batches_out: counter(
                &r,
                "reef_correlator_batches_out_total",
                "Enriched batches acknowledged by REEF_ENRICHED.",
            )?,
            entries_out: counter(
                &r,
                "reef_correlator_entries_out_total",
                "Entries in acknowledged enriched batches.",
            )?,
            bytes_out: counter(
                &r,
                "reef_correlator_bytes_out_total",
                "Bytes of acknowledged enriched batches.",
            )?,
            poison: counter(
                &r,
                "reef_correlator_poison_total",
                "Messages that are not entry batches, terminated (never redelivered).",
            )?,
            publish_failures: counter(
                &r,
                "reef_correlator_publish_failures_total",
                "Publishes that failed or were not acknowledged (retried).",
            )?,
            redelivered: counter(
                &r,
                "reef_correlator_redelivered_total",
                "Entry batches given back for redelivery (publishing kept failing, or stopping).",
            )?,
            waited: counter(
                &r,
                "reef_correlator_waited_batches_total",
                "Entry batches held back for the Kubernetes index to learn an IP.",
            )?,
            resolved: by_side(
                &r,
                "reef_correlator_resolved_total",
                "Published entries whose IP the Kubernetes index knew, by side (src, dst).",
            )?,
            unresolved: by_side(
                &r,
                "reef_correlator_unresolved_total",
                "Published entries whose IP it did not know, by side.",
            )?,
            process: by_side(
                &r,
                "reef_correlator_process_resolved_total",
                "Published entries whose process the OS events named, by side.",
            )?,
            k8s_events: counter(
                &r,
                "reef_correlator_k8s_events_total",
                "Kubernetes watch events applied to the index.",
            )?,
            os_events: counter(
                &r,
                "reef_correlator_os_events_total",
                "OS events (connect, accept, close) applied to the process index.",
            )?,
            lag: gauge(
                &r,
                "reef_correlator_lag_messages",
                "Entry batches in REEF_RAW not yet delivered to or acknowledged by the correlators.",
            )?,
            held: gauge(
                &r,
                "reef_correlator_held_batches",
                "Entry batches held now, waiting for the Kubernetes index.",
            )?,
            k8s_ips: gauge(
                &r,
                "reef_correlator_k8s_tracked_ips",
                "IP addresses the Kubernetes index knows.",
            )?,
            os_connections: gauge(
                &r,
                "reef_correlator_os_connections",
                "Connections the process index holds.",
            )?,
            registry: r,
            k8s,
            os,
            extra,
        })
    }

    /// Counts a published batch's resolution outcome.
    pub fn published(&self, s: &EnrichStats) {
        for (i, side) in SIDES.iter().enumerate() {
            self.resolved
                .with_label_values(&[side])
                .inc_by(s.resolved[i] as u64);
            self.unresolved
                .with_label_values(&[side])
                .inc_by(s.unresolved[i] as u64);
            self.process
                .with_label_values(&[side])
                .inc_by(s.process[i] as u64);
        }
    }

    /// The metrics in Prometheus text format.
    pub fn render(&self) -> String {
        if let Ok(k) = self.k8s.read() {
            self.k8s_ips.set(k.tracked_ips() as i64);
        }
        if let Ok(o) = self.os.read() {
            self.os_connections.set(o.len() as i64);
        }
        let mut buf = Vec::new();
        let mut text = match TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(e) => format!("# encoding failed: {e}\n"),
        };
        if let Some(extra) = &self.extra {
            text.push_str(&(extra.0)());
        }
        text
    }
}

/// Serves `/metrics` and `/healthz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move { ([("content-type", "text/plain; version=0.0.4")], m.render()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }));
    axum::serve(listener, app)
        .await
        .map_err(|e| anyhow::anyhow!("metrics server: {e}"))
}

/// Binds the metrics address (an error here is the user's: a taken port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))
}
