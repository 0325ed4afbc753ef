//! Single-machine Reef (`reef local`): the worker's capture, the correlator's
//! enrichment and the hub, in one process, over the embedded local bus (a segment log
//! on disk, so `since` and replay work across restarts). No NATS server, no cluster.
//!
//! The path is the cluster's, in-process: the worker's producers fill an outbox; each
//! entry batch is enriched as a correlator would (process context when OS events exist;
//! no Kubernetes here), split by subject, and appended to the bus; the hub reads the bus
//! like it reads REEF_ENRICHED.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use reef_hub::{Hub, HubConfig, LocalSource};
use reef_local_bus::{Limits, LocalBus};
use reef_schema::ipc::{self, Compression};
use reef_worker::outbox::{Kind, Outbox};
use reef_worker::{Source, WorkerConfig};
use tokio::sync::watch;

/// How often retention by age runs when nothing is appended.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

pub struct LocalConfig {
    /// What to capture or replay, and how (its NATS fields are not used).
    pub worker: WorkerConfig,
    pub data_dir: PathBuf,
    pub retention: Limits,
    pub hub: HubConfig,
}

/// What happened, for the caller's messages.
pub enum Progress {
    /// Serving; the bus is in this directory.
    Serving(std::net::SocketAddr),
    /// A replay is read and all of it is on the bus.
    Replayed { entries: u64, batches: u64 },
}

/// Runs until `stop` becomes true (a replay does not stop it: the hub keeps serving
/// what was stored).
pub async fn run(
    cfg: LocalConfig,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
    progress: impl Fn(Progress) + Send + 'static,
) -> anyhow::Result<()> {
    let bus = LocalBus::open(&cfg.data_dir, cfg.retention)?;
    let hub = Hub::new(Arc::new(LocalSource::new(bus.clone())), cfg.hub);
    let addr = listener.local_addr()?;
    let (serve_stop_tx, mut serve_stop) = watch::channel(false);
    let server = tokio::spawn(hub.clone().serve(listener, async move {
        let _ = serve_stop.wait_for(|s| *s).await;
    }));
    let outbox = Arc::new(Outbox::new(cfg.worker.outbox_bytes));
    let capture_stop = Arc::new(AtomicBool::new(false));
    let producing = reef_worker::produce(&cfg.worker, outbox.clone(), capture_stop.clone())?;
    progress(Progress::Serving(addr));
    let stored = Arc::new(AtomicU64::new(0));
    let pump = tokio::spawn(pump(
        outbox.clone(),
        bus.clone(),
        cfg.worker.node.clone(),
        stored.clone(),
    ));
    let status = tokio::spawn(report_status(
        hub.clone(),
        outbox.clone(),
        producing.control.clone(),
        producing.id.clone(),
        cfg.worker.node.clone(),
        bus.clone(),
    ));
    let replay = matches!(cfg.worker.source, Source::Pcap { .. });
    let mut replayed = false;
    loop {
        tokio::select! {
            r = stop.wait_for(|s| *s) => {
                let _ = r;
                break;
            }
            () = wait_replayed(&outbox), if replay && !replayed => {
                replayed = true;
                progress(Progress::Replayed {
                    entries: outbox.count(Kind::Entries).produced_rows.load(Ordering::Relaxed),
                    batches: stored.load(Ordering::Relaxed),
                });
            }
        }
    }
    capture_stop.store(true, Ordering::Relaxed);
    let threads = producing.threads;
    let joined = tokio::task::spawn_blocking(move || {
        for t in threads {
            match t.join() {
                Ok(Err(e)) => tracing::error!(error = %e, "capture failed"),
                Err(_) => tracing::error!("a capture thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    })
    .await;
    if joined.is_err() {
        tracing::error!("joining the capture threads failed");
    }
    outbox.close();
    let _ = pump.await;
    status.abort();
    bus.flush()?;
    let _ = serve_stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(r)) => r,
        // Clients still connected: the process is ending anyway.
        _ => Ok(()),
    }
}

async fn report_status(
    hub: Hub,
    outbox: Arc<Outbox>,
    control: Option<Arc<reef_worker::CaptureControl>>,
    id: String,
    node: String,
    bus: LocalBus,
) {
    let mut last_retention = tokio::time::Instant::now();
    loop {
        let kernel = control
            .as_ref()
            .and_then(|c| c.kernel_counts().ok())
            .unwrap_or((0, 0));
        hub.worker_status(reef_worker::worker_status(&node, &id, &outbox, kernel));
        if last_retention.elapsed() >= RETENTION_EVERY {
            last_retention = tokio::time::Instant::now();
            if let Err(e) = bus.enforce_retention() {
                tracing::warn!(error = %e, "local retention");
            }
        }
        tokio::time::sleep(reef_schema::STATUS_EVERY).await;
    }
}

/// Resolves once a replay has been read and everything it produced is on the bus.
async fn wait_replayed(outbox: &Outbox) {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    loop {
        if outbox.is_closed() && outbox.is_empty() {
            let done = [Kind::Entries, Kind::Flows].iter().all(|&k| {
                let c = outbox.count(k);
                ld(&c.produced_batches) == ld(&c.published_batches) + ld(&c.dropped_batches)
            });
            if done {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Worker → correlator → bus: each entry batch enriched, split by subject and appended.
async fn pump(outbox: Arc<Outbox>, bus: LocalBus, node: String, stored: Arc<AtomicU64>) {
    let mut enricher = reef_correlator::Enricher::new();
    let k8s = reef_k8s_index::K8sIndex::new();
    let os = reef_correlator::OsIndex::new();
    let node = reef_schema::subjects::token(&node);
    let headers = [(
        reef_schema::subjects::headers::SCHEMA.to_string(),
        reef_schema::ENTRY_SCHEMA.to_string(),
    )];
    loop {
        while let Some(m) = outbox.pop() {
            if m.kind == Kind::Entries {
                let appended = (|| -> anyhow::Result<()> {
                    for batch in ipc::decode(&m.payload).context("decoding a batch")? {
                        let (enriched, _) = enricher.enrich(&batch, &node, &k8s, &os)?;
                        for (subject, part) in reef_correlator::split_by_subject(&enriched)? {
                            let payload = ipc::encode(&part, Compression::Lz4)?;
                            bus.append(&subject, &headers, &payload)?;
                            stored.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = appended {
                    tracing::error!(error = %format!("{e:#}"), "a batch could not be stored");
                }
            }
            // Flow records are not kept locally: the hub serves entries.
            outbox.published(&m);
            // A replay can outpace this loop; let the hub's tasks run between batches so
            // the dashboard sees them as they come, not all at the end.
            tokio::task::yield_now().await;
        }
        if outbox.is_closed() && outbox.is_empty() {
            return;
        }
        tokio::select! {
            _ = outbox.wait() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
