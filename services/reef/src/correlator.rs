//! `reef correlator`: join worker entries with Kubernetes and process context and
//! publish them to REEF_ENRICHED.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args as ClapArgs;
use reef_correlator::CorrelatorConfig;
use reef_correlator::config::{self as defaults, ExtraMetrics, StreamLimits};
use tokio::sync::mpsc;

#[derive(ClapArgs)]
pub struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "REEF_NATS", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Serve Prometheus metrics here (e.g. 0.0.0.0:9101); off by default.
    #[arg(long, env = "REEF_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
    /// Durable consumer on REEF_RAW shared by every replica.
    #[arg(long, env = "REEF_CORRELATOR_DURABLE", default_value = defaults::DEFAULT_DURABLE)]
    durable: String,
    /// Entry batches held, enriched or publishing at once per replica.
    #[arg(long, default_value_t = defaults::DEFAULT_IN_FLIGHT)]
    in_flight: usize,
    /// Milliseconds a batch with unknown IPs waits for the Kubernetes index (0: never).
    #[arg(long, default_value_t = defaults::UNRESOLVED_WAIT.as_millis() as u64)]
    unresolved_wait_ms: u64,
    /// OS events are read from this many seconds before the start (0: all retained).
    #[arg(long, default_value_t = defaults::DEFAULT_OS_LOOKBACK.as_secs())]
    os_lookback: u64,
    /// Compression of the Arrow buffers in published batches: lz4 or none.
    #[arg(long, env = "REEF_COMPRESSION", default_value = "lz4")]
    compression: reef_schema::ipc::Compression,
    /// REEF_ENRICHED retention: seconds.
    #[arg(long, env = "REEF_ENRICHED_MAX_AGE", default_value_t = defaults::DEFAULT_STREAM_MAX_AGE.as_secs())]
    stream_max_age: u64,
    /// REEF_ENRICHED retention: bytes.
    #[arg(long, env = "REEF_ENRICHED_MAX_BYTES", default_value_t = defaults::DEFAULT_STREAM_MAX_BYTES)]
    stream_max_bytes: i64,
    /// Do not look for a Kubernetes API server (entries get process context only).
    #[arg(long)]
    no_kubernetes: bool,
}

/// Watch events waiting for the correlator: a burst (a relist of a large cluster)
/// slows the watch rather than growing without bound.
const K8S_EVENT_QUEUE: usize = 4096;

/// Starts the Kubernetes watchers on a thread of their own (the kube client belongs to
/// the runtime it was made on) and returns their events; None when no Kubernetes is
/// configured.
fn kubernetes(
    counters: Arc<reef_k8s_watch::Counters>,
) -> anyhow::Result<Option<mpsc::Receiver<reef_k8s_index::Event>>> {
    let (found_tx, found_rx) = std::sync::mpsc::channel::<Result<bool, String>>();
    let (tx, rx) = mpsc::channel(K8S_EVENT_QUEUE);
    std::thread::Builder::new()
        .name("reef-k8s-watch".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = found_tx.send(Err(format!("starting its runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                match reef_k8s_watch::client().await {
                    Ok(Some(client)) => {
                        let _ = found_tx.send(Ok(true));
                        reef_k8s_watch::run(client, tx, &counters).await;
                    }
                    Ok(None) => {
                        let _ = found_tx.send(Ok(false));
                    }
                    Err(e) => {
                        let _ = found_tx.send(Err(e.to_string()));
                    }
                }
            });
        })
        .context("starting the Kubernetes watch thread")?;
    match found_rx.recv() {
        Ok(Ok(true)) => Ok(Some(rx)),
        Ok(Ok(false)) => Ok(None),
        Ok(Err(e)) => anyhow::bail!(
            "a Kubernetes configuration was found but cannot be used: {e}; fix it \
             (in-cluster service account, KUBECONFIG or ~/.kube/config) or run with --no-kubernetes"
        ),
        Err(_) => anyhow::bail!("the Kubernetes watch thread ended before it started"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::worker::init_logs();
    let mut cfg = CorrelatorConfig::new(args.nats);
    cfg.metrics_listen = args.metrics_listen;
    cfg.durable = args.durable;
    cfg.in_flight = args.in_flight.max(1);
    cfg.unresolved_wait = Duration::from_millis(args.unresolved_wait_ms);
    cfg.os_lookback = (args.os_lookback > 0).then(|| Duration::from_secs(args.os_lookback));
    cfg.compression = args.compression;
    cfg.stream = StreamLimits {
        max_age: Duration::from_secs(args.stream_max_age),
        max_bytes: args.stream_max_bytes,
        ..StreamLimits::default()
    };
    let k8s = if args.no_kubernetes {
        None
    } else {
        let counters = Arc::new(reef_k8s_watch::Counters::default());
        let rx = kubernetes(counters.clone())?;
        if rx.is_some() {
            cfg.extra_metrics = Some(ExtraMetrics(Arc::new(move || counters.prometheus_text())));
        }
        rx
    };
    let report = reef_correlator::run_blocking(cfg, k8s)?;
    eprintln!(
        "reef correlator: {} batches ({} entries) in, {} batches ({} entries) out, {} poison",
        report.batches_in, report.entries_in, report.batches_out, report.entries_out, report.poison
    );
    Ok(ExitCode::SUCCESS)
}
