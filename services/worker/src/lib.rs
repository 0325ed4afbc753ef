//! The worker: runs on every node, captures (or replays captures), dissects with the
//! same engine as `reef dissect`, redacts, and publishes Arrow batches of entries and
//! flow records to NATS JetStream (`reef.v1.node.<node>.entries` / `.flows` in the
//! REEF_RAW stream), whether or not anyone is watching.

pub mod batch;
pub mod config;
pub mod metrics;
pub mod outbox;
pub mod producer;
pub mod publish;
pub mod sources;

use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use async_nats::jetstream;
use reef_schema::{CaptureSource, subjects};

pub use config::{Source, Speed, WorkerConfig};
use outbox::{Kind, Outbox};
use producer::{Producer, Shared};
pub use reef_capture::Control as CaptureControl;

/// How long a stopping live worker keeps publishing what it has buffered.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// What a run produced and published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub produced_entries: u64,
    pub published_entries: u64,
    pub dropped_entries: u64,
    pub produced_flows: u64,
    pub published_flows: u64,
    pub dropped_flows: u64,
    pub published_batches: u64,
    pub publish_failures: u64,
}

fn report(o: &Outbox) -> Report {
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let (e, f) = (o.count(Kind::Entries), o.count(Kind::Flows));
    Report {
        produced_entries: ld(&e.produced_rows),
        published_entries: ld(&e.published_rows),
        dropped_entries: ld(&e.dropped_rows),
        produced_flows: ld(&f.produced_rows),
        published_flows: ld(&f.published_rows),
        dropped_flows: ld(&f.dropped_rows),
        published_batches: ld(&e.published_batches) + ld(&f.published_batches),
        publish_failures: ld(&o.failures),
    }
}

/// The TCP endpoints of the NATS servers in `url` (`nats://user:pw@host:port,...`),
/// so that the capture filter can leave the worker's own traffic out.
pub fn nats_endpoints(url: &str) -> Vec<(IpAddr, u16)> {
    url.split(',')
        .filter_map(|u| {
            let u = u.trim();
            let u = u.split_once("://").map_or(u, |(_, rest)| rest);
            let u = u.rsplit_once('@').map_or(u, |(_, host)| host);
            let u = u.split('/').next().unwrap_or(u);
            let with_port = if u
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            {
                u.to_string()
            } else {
                format!("{u}:4222")
            };
            with_port.to_socket_addrs().ok()
        })
        .flatten()
        .map(|a| (a.ip(), a.port()))
        .collect()
}

/// Runs the worker to its end: a replay once everything is published and
/// acknowledged, a live capture on SIGINT or SIGTERM.
pub fn run(cfg: WorkerConfig) -> anyhow::Result<Report> {
    run_until(cfg, wait_for_signal())
}

/// Like [`run`], but a live capture stops when `stop` resolves (and a replay is cut
/// short), instead of on a signal.
pub fn run_until(
    cfg: WorkerConfig,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("reef-publish")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run_async(cfg, stop))
}

/// The capture side of a worker, without NATS (`reef local` runs it in-process).
pub struct Producing {
    pub threads: Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
    /// The capture sockets' control (targets, kernel counters), live capture only.
    pub control: Option<Arc<reef_capture::Control>>,
    pub shared: Arc<Shared>,
    pub id: String,
}

/// Replays or captures into `outbox` on threads of its own, with the same engine,
/// batching and redaction as [`run`]. A replay closes the outbox when it is done; live
/// capture runs until `stop` is set (the caller then closes the outbox).
pub fn produce(
    cfg: &WorkerConfig,
    outbox: Arc<Outbox>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Producing> {
    let id = worker_id(&cfg.node);
    let shared = Arc::new(Shared::default());
    let engine_cfg = |source: CaptureSource, prefix: String| reef_engine::Config {
        capture_source: source,
        node: Some(cfg.node.clone()),
        id_prefix: prefix,
        flow_records: true,
        ..cfg.engine.clone()
    };
    let mut threads = Vec::new();
    let mut control = None;
    match &cfg.source {
        Source::Pcap { files, speed } => {
            let (files, speed, batch) = (files.clone(), *speed, cfg.batch.clone());
            let (outbox, shared, redactor, id) = (
                outbox.clone(),
                shared.clone(),
                cfg.redactor.clone(),
                id.clone(),
            );
            let ecfg = engine_cfg(CaptureSource::Pcap, String::new());
            threads.push(
                std::thread::Builder::new()
                    .name("reef-replay".into())
                    .spawn(move || {
                        let r = sources::replay(
                            &files,
                            speed,
                            |i| {
                                let mut e = ecfg.clone();
                                e.id_prefix = format!("{id}-p{i}");
                                Producer::new(
                                    e,
                                    batch.clone(),
                                    redactor.clone(),
                                    outbox.clone(),
                                    shared.clone(),
                                )
                            },
                            &stop,
                        );
                        outbox.close();
                        r
                    })
                    .context("starting the replay thread")?,
            );
        }
        Source::Live(capture) => {
            let (sockets, ctl) =
                reef_capture::open(capture).context("opening the capture sockets")?;
            control = Some(ctl);
            let engine = engine_cfg(CaptureSource::AfPacket, String::new());
            threads = spawn_capture_threads(cfg, sockets, &engine, &id, &outbox, &shared, &stop)?;
        }
    }
    Ok(Producing {
        threads,
        control,
        shared,
        id,
    })
}

fn worker_id(node: &str) -> String {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{:x}", subjects::token(node), started)
}

async fn connect(cfg: &WorkerConfig, retry: bool) -> anyhow::Result<async_nats::Client> {
    let mut opts = async_nats::ConnectOptions::new()
        .name("reef-worker")
        .connection_timeout(cfg.connect_timeout)
        .event_callback(|ev| async move {
            match ev {
                async_nats::Event::Disconnected => {
                    tracing::warn!("disconnected from NATS; buffering")
                }
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                other => tracing::debug!(event = %other, "NATS"),
            }
        });
    if retry {
        opts = opts.retry_on_initial_connect();
    }
    opts.connect(cfg.nats_url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach NATS at {}: {e}", cfg.nats_url))
}

fn max_payload(client: &async_nats::Client) -> usize {
    client.server_info().max_payload
}

async fn run_async(
    cfg: WorkerConfig,
    stop_when: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Report> {
    let id = worker_id(&cfg.node);
    let outbox = Arc::new(Outbox::new(cfg.outbox_bytes));
    let shared = Arc::new(Shared::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_cfg = |source: CaptureSource, prefix: String| reef_engine::Config {
        capture_source: source,
        node: Some(cfg.node.clone()),
        id_prefix: prefix,
        flow_records: true,
        ..cfg.engine.clone()
    };
    match &cfg.source {
        Source::Pcap { files, speed } => {
            let client = connect(&cfg, false).await?;
            let js = jetstream::new(client.clone());
            publish::ensure_stream(&js, &cfg.stream).await?;
            let payload_max = max_payload(&client);
            let mut batch = cfg.batch.clone();
            batch.bytes = batch.bytes.min(payload_max * 9 / 10);
            let publisher = publish::Publisher::new(js, &cfg, id.clone(), payload_max);
            let metrics = start_metrics(&cfg, &shared, &outbox, None);
            let (files, speed) = (files.clone(), *speed);
            let replay = {
                let (outbox, shared, stop) = (outbox.clone(), shared.clone(), stop.clone());
                let (redactor, id) = (cfg.redactor.clone(), id.clone());
                let ecfg = engine_cfg(CaptureSource::Pcap, String::new());
                tokio::task::spawn_blocking(move || {
                    let r = sources::replay(
                        &files,
                        speed,
                        |i| {
                            let mut e = ecfg.clone();
                            e.id_prefix = format!("{id}-p{i}");
                            Producer::new(
                                e,
                                batch.clone(),
                                redactor.clone(),
                                outbox.clone(),
                                shared.clone(),
                            )
                        },
                        &stop,
                    );
                    outbox.close();
                    r
                })
            };
            let published =
                publisher.run(outbox.clone(), Some(cfg.publish_timeout), stop_rx.clone());
            let cut_short = {
                let stop = stop.clone();
                tokio::spawn(async move {
                    stop_when.await;
                    stop.store(true, Ordering::Relaxed);
                })
            };
            let (replayed, published) = tokio::join!(replay, published);
            cut_short.abort();
            drop(metrics);
            replayed.context("the replay thread panicked")??;
            published?;
            drop(stop_tx);
            Ok(report(&outbox))
        }
        Source::Live(capture) => {
            let mut capture = capture.clone();
            capture.filter.exclude.extend(nats_endpoints(&cfg.nats_url));
            let (sockets, control) =
                reef_capture::open(&capture).context("opening the capture sockets")?;
            tracing::info!(
                node = %cfg.node,
                threads = sockets.len(),
                interfaces = ?capture.interfaces,
                "capturing"
            );
            let engine = engine_cfg(CaptureSource::AfPacket, String::new());
            let threads =
                spawn_capture_threads(&cfg, sockets, &engine, &id, &outbox, &shared, &stop)?;
            let metrics = start_metrics(&cfg, &shared, &outbox, Some(control.clone()));
            // NATS may be away at start: capture goes on and batches wait in the outbox.
            let publishing = {
                let (cfg, outbox, id, control) =
                    (cfg.clone(), outbox.clone(), id.clone(), control.clone());
                let stop_rx = stop_rx.clone();
                tokio::spawn(async move { publish_live(cfg, outbox, id, control, stop_rx).await })
            };
            stop_when.await;
            tracing::info!("stopping: flushing what was captured");
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                match t.join() {
                    Ok(Err(e)) => tracing::error!(error = %e, "capture thread failed"),
                    Err(_) => tracing::error!("capture thread panicked"),
                    Ok(Ok(())) => {}
                }
            }
            outbox.close();
            let drained = tokio::time::timeout(SHUTDOWN_DRAIN, async {
                while !outbox.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(
                    buffered = outbox.buffered_bytes(),
                    "stopped before everything was published"
                );
            }
            let _ = stop_tx.send(true);
            let _ = publishing.await;
            drop(metrics);
            Ok(report(&outbox))
        }
    }
}

/// Connects (retrying), makes sure of the stream, applies capture targets sent on the
/// control subject, and publishes until stopped.
async fn publish_live(
    cfg: WorkerConfig,
    outbox: Arc<Outbox>,
    id: String,
    control: Arc<reef_capture::Control>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = connect(&cfg, true).await?;
    let js = jetstream::new(client.clone());
    let mut pause = Duration::from_millis(200);
    while let Err(e) = publish::ensure_stream(&js, &cfg.stream).await {
        tracing::warn!(error = %e, "retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        if *stop.borrow() {
            return Ok(());
        }
    }
    let targets_subject = subjects::node_targets(&cfg.node);
    match client.subscribe(targets_subject.clone()).await {
        Ok(mut sub) => {
            let control = control.clone();
            tokio::spawn(async move {
                use futures_util::StreamExt;
                while let Some(msg) = sub.next().await {
                    apply_targets(&control, &msg.payload);
                }
            });
        }
        Err(e) => {
            tracing::warn!(error = %e, subject = %targets_subject, "cannot listen for capture targets")
        }
    }
    let status = tokio::spawn(report_status(
        client.clone(),
        cfg.node.clone(),
        id.clone(),
        outbox.clone(),
        control.clone(),
    ));
    let publisher = publish::Publisher::new(js, &cfg, id, max_payload(&client));
    let r = publisher.run(outbox, None, stop).await.map(|_| ());
    status.abort();
    r
}

/// One capture thread per socket, each with its own engine (engines stay on the thread
/// that made them); entry ids are prefixed `<worker>-t<i>`.
fn spawn_capture_threads(
    cfg: &WorkerConfig,
    sockets: Vec<reef_capture::Source>,
    engine: &reef_engine::Config,
    id: &str,
    outbox: &Arc<Outbox>,
    shared: &Arc<Shared>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<std::thread::JoinHandle<anyhow::Result<()>>>> {
    let mut threads = Vec::new();
    for (i, s) in sockets.into_iter().enumerate() {
        let ecfg = reef_engine::Config {
            id_prefix: format!("{id}-t{i}"),
            ..engine.clone()
        };
        let (batch, redactor) = (cfg.batch.clone(), cfg.redactor.clone());
        let (outbox, shared, stop) = (outbox.clone(), shared.clone(), stop.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("reef-capture-{i}"))
                .spawn(move || {
                    let p = Producer::new(ecfg, batch, redactor, outbox, shared);
                    sources::capture_thread(s, p, stop)
                })
                .context("starting a capture thread")?,
        );
    }
    Ok(threads)
}

/// A worker's counters as reported on `reef.v1.status.<node>` (and by `reef local`):
/// `kernel` is the capture sockets' (packets, drops), zeros when replaying.
pub fn worker_status(
    node: &str,
    id: &str,
    outbox: &Outbox,
    (packets, kernel_drops): (u64, u64),
) -> reef_schema::WorkerStatus {
    let c = outbox.count(Kind::Entries);
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    reef_schema::WorkerStatus {
        node: node.to_string(),
        worker: id.to_string(),
        packets,
        kernel_drops,
        dropped: ld(&c.dropped_rows),
        entries: ld(&c.produced_rows),
        batches: ld(&c.produced_batches),
        time_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64),
    }
}

/// Publishes the worker's counters every [`reef_schema::STATUS_EVERY`] on
/// `reef.v1.status.<node>`, for hubs (plain NATS: only the newest matters).
async fn report_status(
    client: async_nats::Client,
    node: String,
    id: String,
    outbox: Arc<Outbox>,
    control: Arc<reef_capture::Control>,
) {
    let subject = subjects::worker_status(&node);
    loop {
        let (packets, kernel_drops) = control.kernel_counts().unwrap_or((0, 0));
        let status = worker_status(&node, &id, &outbox, (packets, kernel_drops));
        match serde_json::to_vec(&status) {
            Ok(body) => {
                if let Err(e) = client.publish(subject.clone(), body.into()).await {
                    tracing::debug!(error = %e, "status report");
                }
            }
            Err(e) => tracing::debug!(error = %e, "status report"),
        }
        tokio::time::sleep(reef_schema::STATUS_EVERY).await;
    }
}

/// `{"targets": ["10.1.2.3", ...]}`: capture only traffic of these addresses; an empty
/// list captures everything again.
#[derive(serde::Deserialize)]
struct Targets {
    targets: Vec<IpAddr>,
}

fn apply_targets(control: &reef_capture::Control, payload: &[u8]) {
    match serde_json::from_slice::<Targets>(payload) {
        Ok(t) => {
            let n = t.targets.len();
            match control.set_targets(t.targets) {
                Ok(()) => tracing::info!(targets = n, "capture targets set"),
                Err(e) => tracing::error!(error = %e, "capture targets not applied"),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "capture targets: expected {{\"targets\": [\"ip\", ...]}}")
        }
    }
}

fn start_metrics(
    cfg: &WorkerConfig,
    shared: &Arc<Shared>,
    outbox: &Arc<Outbox>,
    capture: Option<Arc<reef_capture::Control>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let addr = cfg.metrics_listen?;
    let sources = metrics::Sources {
        shared: shared.clone(),
        outbox: outbox.clone(),
        capture,
    };
    let m = match metrics::Metrics::new(sources) {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::error!(error = %e, "metrics unavailable");
            return None;
        }
    };
    Some(tokio::spawn(async move {
        if let Err(e) = metrics::serve(addr, m).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }))
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/nats/streams/REEF_RAW.json says what the worker creates.
    #[test]
    fn deployed_stream_definition_matches_the_defaults() {
        let def: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/nats/streams/REEF_RAW.json"))
                .unwrap();
        assert_eq!(def["name"], subjects::RAW_STREAM);
        assert_eq!(def["subjects"][0], subjects::RAW_SUBJECTS);
        assert_eq!(
            def["max_age"].as_u64().unwrap(),
            config::DEFAULT_STREAM_MAX_AGE.as_nanos() as u64
        );
        assert_eq!(
            def["max_bytes"].as_i64().unwrap(),
            config::DEFAULT_STREAM_MAX_BYTES
        );
        assert_eq!(def["duplicate_window"].as_u64().unwrap(), 120_000_000_000);
    }

    #[test]
    fn nats_urls_to_endpoints() {
        let e = nats_endpoints("nats://127.0.0.1:4223");
        assert_eq!(e, vec![("127.0.0.1".parse().unwrap(), 4223)]);
        let e = nats_endpoints("user:pw@127.0.0.2, nats://[::1]:4333");
        assert!(e.contains(&("127.0.0.2".parse().unwrap(), 4222)));
        assert!(e.contains(&("::1".parse().unwrap(), 4333)));
    }
}
