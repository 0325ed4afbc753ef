//! The NATS service: REEF_RAW entries in, REEF_ENRICHED batches out.
//!
//! - One durable pull consumer on `reef.v1.node.*.entries` is shared by every replica,
//!   so each entry batch goes to one of them; a batch is acknowledged only once all of
//!   its enriched parts are acknowledged by JetStream (else it is given back, nak, and
//!   redelivered). Every part has a `Nats-Msg-Id` derived from the input's stream
//!   sequence, so a redelivered batch is stored once within the duplicate window.
//! - Messages that are not entry batches are terminated (never redelivered) and counted.
//! - A batch with IPs the Kubernetes index does not know is held up to
//!   `unresolved_wait` and re-enriched when the index changes, then published anyway.
//! - Each replica reads all OS events with its own ordered consumer (from a start time),
//!   and applies Kubernetes events from the channel the watchers feed.
//! - At most `in_flight` input batches are held, enriched or publishing at once;
//!   publishes run concurrently (never one awaited acknowledgment at a time).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use arrow_array::RecordBatch;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reef_k8s_index::{Event, K8sIndex, Object};
use reef_schema::ipc::{self, Compression};
use reef_schema::subjects::{self, headers};
use tokio::sync::mpsc;

use crate::config::{self, CorrelatorConfig, StreamLimits};
use crate::enrich::{EnrichStats, Enricher, split_by_subject};
use crate::metrics::{self, Metrics};
use crate::os_index::OsIndex;

/// What a run did, for its caller and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub batches_in: u64,
    pub entries_in: u64,
    pub batches_out: u64,
    pub entries_out: u64,
    pub poison: u64,
    pub redelivered: u64,
}

/// Creates REEF_ENRICHED or brings its limits up to date; safe on every start.
pub async fn ensure_stream(js: &jetstream::Context, limits: &StreamLimits) -> anyhow::Result<()> {
    let config = stream::Config {
        name: subjects::ENRICHED_STREAM.to_string(),
        subjects: vec![subjects::ENRICHED_SUBJECTS.to_string()],
        max_age: limits.max_age,
        max_bytes: limits.max_bytes,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: config::DUPLICATE_WINDOW,
        description: Some(
            "Reef correlators: entries with Kubernetes and process context, by server \
             namespace and protocol (Arrow IPC batches)"
                .into(),
        ),
        ..stream::Config::default()
    };
    js.create_or_update_stream(config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot create or update stream {}: {e}",
            subjects::ENRICHED_STREAM
        )
    })?;
    Ok(())
}

/// Creates or updates the stream of Kubernetes object changes. Its duplicate window
/// lets every replica publish each change: the server keeps one copy.
pub async fn ensure_k8s_stream(js: &jetstream::Context) -> anyhow::Result<()> {
    let config = stream::Config {
        name: subjects::K8S_STREAM.to_string(),
        subjects: vec![subjects::K8S_SUBJECTS.to_string()],
        max_age: config::K8S_STREAM_MAX_AGE,
        max_bytes: config::K8S_STREAM_MAX_BYTES,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: config::DUPLICATE_WINDOW,
        description: Some(
            "Reef correlators: Kubernetes object changes (JSON), one copy per change".into(),
        ),
        ..stream::Config::default()
    };
    js.create_or_update_stream(config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot create or update stream {}: {e}",
            subjects::K8S_STREAM
        )
    })?;
    Ok(())
}

/// The message id of a change: the same from every replica that applies it.
fn k8s_msg_id(summary: &serde_json::Value) -> String {
    let field = |k: &str| summary.get(k).map(|v| v.to_string()).unwrap_or_default();
    format!(
        "k8s.{}.{}.{}",
        summary.get("op").and_then(|v| v.as_str()).unwrap_or("?"),
        field("uid").trim_matches('"'),
        field("resource_version")
    )
}

/// State shared by the tasks of one replica.
struct Shared {
    k8s: Arc<RwLock<K8sIndex>>,
    /// Bumped on every Kubernetes event: held batches are re-enriched only when it moved.
    k8s_generation: AtomicU64,
    /// False when no watcher feeds the index: nothing is worth waiting for.
    k8s_configured: bool,
    os: Arc<RwLock<OsIndex>>,
    metrics: Arc<Metrics>,
}

/// One input message on its way.
struct Pending {
    msg: jetstream::Message,
    node: String,
    input: Vec<RecordBatch>,
    enriched: Vec<RecordBatch>,
    stats: EnrichStats,
    arrived: Instant,
    generation: u64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// `reef.v1.node.<node>.<kind>` → `<node>`.
fn node_of(subject: &str) -> &str {
    subject.split('.').nth(3).unwrap_or("_")
}

impl Shared {
    /// Enriches `p.input` with the indexes as they are now.
    fn enrich(&self, enricher: &mut Enricher, p: &mut Pending) -> Result<(), crate::EnrichError> {
        p.generation = self.k8s_generation.load(Ordering::Acquire);
        // A writer that panicked left an index that is still the best there is.
        let k8s = self.k8s.read().unwrap_or_else(PoisonError::into_inner);
        let os = self.os.read().unwrap_or_else(PoisonError::into_inner);
        p.enriched.clear();
        p.stats = EnrichStats::default();
        for b in &p.input {
            let (out, stats) = enricher.enrich(b, &p.node, &k8s, &os)?;
            p.enriched.push(out);
            p.stats.add(&stats);
        }
        Ok(())
    }
}

/// Runs a correlator replica until `stop` resolves. `k8s_events` is what the Kubernetes
/// watchers produce; with None, entries get process context only.
pub async fn run(
    cfg: CorrelatorConfig,
    k8s_events: Option<mpsc::Receiver<Event>>,
    stop: impl Future<Output = ()> + Send,
) -> anyhow::Result<Report> {
    let client = async_nats::ConnectOptions::new()
        .name("reef-correlator")
        .connection_timeout(cfg.connect_timeout)
        .event_callback(|ev| async move {
            match ev {
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                other => tracing::debug!(event = %other, "NATS"),
            }
        })
        .connect(cfg.nats_url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach NATS at {}: {e}", cfg.nats_url))?;
    let js = jetstream::new(client.clone());
    ensure_stream(&js, &cfg.stream).await?;
    ensure_k8s_stream(&js).await?;

    let k8s = Arc::new(RwLock::new(K8sIndex::new()));
    let os = Arc::new(RwLock::new(OsIndex::new()));
    let metrics = Arc::new(
        Metrics::new(k8s.clone(), os.clone(), cfg.extra_metrics.clone()).context("metrics")?,
    );
    let metrics_task = match cfg.metrics_listen {
        Some(addr) => {
            let listener = metrics::bind(addr).await?;
            let m = metrics.clone();
            Some(tokio::spawn(async move {
                if let Err(e) = metrics::serve(listener, m).await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            }))
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        k8s,
        k8s_generation: AtomicU64::new(0),
        k8s_configured: k8s_events.is_some(),
        os,
        metrics,
    });

    tokio::pin!(stop);
    // Workers create REEF_RAW; wait for it rather than guess its limits.
    let raw = loop {
        match js.get_stream(subjects::RAW_STREAM).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, stream = subjects::RAW_STREAM, "waiting for the workers' stream");
                tokio::select! {
                    _ = &mut stop => return Ok(Report::default()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };

    // Kubernetes: what is already queued is applied before the first entry batch.
    let mut tasks = Vec::new();
    match k8s_events {
        Some(mut rx) => {
            while let Ok(ev) = rx.try_recv() {
                apply_k8s(&shared, &js, ev).await;
            }
            let (shared, js) = (shared.clone(), js.clone());
            tasks.push(tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    apply_k8s(&shared, &js, ev).await;
                }
                tracing::warn!("the Kubernetes watchers stopped; the index is no longer updated");
            }));
        }
        None => tracing::info!(
            "no Kubernetes configured: entries are published with process context only"
        ),
    }

    // OS events: caught up before the first entry batch, then followed.
    let (caught_up_tx, caught_up) = tokio::sync::oneshot::channel();
    {
        let (raw, shared, lookback) = (raw.clone(), shared.clone(), cfg.os_lookback);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = follow_os_events(raw, lookback, shared, caught_up_tx).await {
                tracing::error!(error = %e, "OS events are not followed");
            }
        }));
    }
    tokio::select! {
        _ = &mut stop => return Ok(Report::default()),
        _ = caught_up => {}
    }

    let consumer: consumer::PullConsumer = raw
        .get_or_create_consumer(
            &cfg.durable,
            consumer::pull::Config {
                durable_name: Some(cfg.durable.clone()),
                description: Some("Reef correlators (shared by every replica)".into()),
                filter_subject: subjects::ALL_NODE_ENTRIES.to_string(),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: cfg.ack_wait,
                // Room for every replica's window; the server stops delivering beyond.
                max_ack_pending: (cfg.in_flight.max(1) * 16) as i64,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the consumer {}: {e}", cfg.durable))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(cfg.in_flight.max(1))
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("cannot consume {}: {e}", subjects::ALL_NODE_ENTRIES))?;
    tracing::info!(consumer = %cfg.durable, "enriching");

    {
        let (raw, shared, durable) = (raw.clone(), shared.clone(), cfg.durable.clone());
        tasks.push(tokio::spawn(async move {
            housekeeping(raw, durable, shared).await
        }));
    }

    let publisher = Publisher {
        js: js.clone(),
        compression: cfg.compression,
        max_payload: client.server_info().max_payload.max(1024),
        metrics: shared.metrics.clone(),
    };
    let mut enricher = Enricher::new();
    let mut held: Vec<Pending> = Vec::new();
    let mut jobs = FuturesUnordered::new();
    let mut tick = tokio::time::interval(config::UNRESOLVED_RETRY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let window = cfg.in_flight.max(1);
    let m = shared.metrics.clone();
    loop {
        let room = held.len() + jobs.len() < window;
        tokio::select! {
            _ = &mut stop => break,
            Some(()) = jobs.next(), if !jobs.is_empty() => {}
            _ = tick.tick(), if !held.is_empty() => {
                let generation = shared.k8s_generation.load(Ordering::Acquire);
                for mut p in std::mem::take(&mut held) {
                    let expired = p.arrived.elapsed() >= cfg.unresolved_wait;
                    if p.generation != generation
                        && let Err(e) = shared.enrich(&mut enricher, &mut p)
                    {
                        poison(&m, &p.msg, &e.to_string()).await;
                        continue;
                    }
                    if expired || !p.stats.any_unresolved() {
                        jobs.push(publisher.clone().publish(p));
                    } else {
                        held.push(p);
                    }
                }
                m.held.set(held.len() as i64);
            }
            next = messages.next(), if room => {
                let msg = match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "consuming entries");
                        continue;
                    }
                    None => anyhow::bail!("the entries consumer ended"),
                };
                m.batches_in.inc();
                let input = match ipc::decode(&msg.payload) {
                    Ok(b) => b,
                    Err(e) => {
                        poison(&m, &msg, &format!("not Arrow IPC stream bytes: {e}")).await;
                        continue;
                    }
                };
                m.entries_in.inc_by(input.iter().map(|b| b.num_rows() as u64).sum());
                let mut p = Pending {
                    node: node_of(msg.subject.as_str()).to_string(),
                    msg,
                    input,
                    enriched: Vec::new(),
                    stats: EnrichStats::default(),
                    arrived: Instant::now(),
                    generation: 0,
                };
                if let Err(e) = shared.enrich(&mut enricher, &mut p) {
                    poison(&m, &p.msg, &format!("not an entry batch: {e}")).await;
                    continue;
                }
                if shared.k8s_configured && p.stats.any_unresolved() && !cfg.unresolved_wait.is_zero() {
                    m.waited.inc();
                    held.push(p);
                    m.held.set(held.len() as i64);
                } else {
                    jobs.push(publisher.clone().publish(p));
                }
            }
        }
    }

    tracing::info!(
        held = held.len(),
        publishing = jobs.len(),
        "stopping: finishing the batches in flight"
    );
    drop(messages);
    // Held batches go back to the shared consumer now, for another replica.
    for p in held.drain(..) {
        give_back(&m, &p.msg).await;
    }
    m.held.set(0);
    let drained = tokio::time::timeout(config::SHUTDOWN_DRAIN, async {
        while jobs.next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopped before every batch was published; they will be redelivered");
    }
    let _ = client.flush().await;
    for t in tasks {
        t.abort();
    }
    if let Some(t) = metrics_task {
        t.abort();
    }
    Ok(Report {
        batches_in: m.batches_in.get(),
        entries_in: m.entries_in.get(),
        batches_out: m.batches_out.get(),
        entries_out: m.entries_out.get(),
        poison: m.poison.get(),
        redelivered: m.redelivered.get(),
    })
}

/// Like [`run`] on its own runtime, until SIGINT or SIGTERM.
pub fn run_blocking(
    cfg: CorrelatorConfig,
    k8s_events: Option<mpsc::Receiver<Event>>,
) -> anyhow::Result<Report> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("reef-correlator")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(cfg, k8s_events, wait_for_signal()))
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

/// Terminates a message that can never be enriched: redelivering it would only block.
async fn poison(m: &Metrics, msg: &jetstream::Message, why: &str) {
    m.poison.inc();
    tracing::warn!(subject = %msg.subject, reason = why, "poison message terminated");
    if let Err(e) = msg.ack_with(AckKind::Term).await {
        tracing::warn!(error = %e, "terminating a poison message");
    }
}

/// Gives a message back for immediate redelivery (to any replica).
async fn give_back(m: &Metrics, msg: &jetstream::Message) {
    m.redelivered.inc();
    if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
        tracing::warn!(error = %e, "giving a batch back");
    }
}

#[derive(Clone)]
struct Publisher {
    js: jetstream::Context,
    compression: Compression,
    max_payload: usize,
    metrics: Arc<Metrics>,
}

/// One enriched part, encoded.
struct Part {
    subject: String,
    payload: bytes::Bytes,
    rows: usize,
}

impl Publisher {
    /// Encodes `batch`, halving it until each piece fits the server's max_payload
    /// (enrichment adds columns, so a batch that fitted on the way in may not).
    fn encode_fitting(
        &self,
        subject: &str,
        batch: &RecordBatch,
        out: &mut Vec<Part>,
    ) -> Result<(), arrow_schema::ArrowError> {
        let bytes = ipc::encode(batch, self.compression)?;
        if bytes.len() <= self.max_payload || batch.num_rows() <= 1 {
            if bytes.len() > self.max_payload {
                tracing::error!(
                    bytes = bytes.len(),
                    "one enriched entry is larger than the server's max_payload; dropped"
                );
                return Ok(());
            }
            out.push(Part {
                subject: subject.to_string(),
                payload: bytes.into(),
                rows: batch.num_rows(),
            });
            return Ok(());
        }
        let half = batch.num_rows() / 2;
        self.encode_fitting(subject, &batch.slice(0, half), out)?;
        self.encode_fitting(subject, &batch.slice(half, batch.num_rows() - half), out)
    }

    /// Publishes every part of `p` with their acknowledgments awaited together, then
    /// acknowledges the input; retries failed parts, and gives the input back when they
    /// keep failing.
    async fn publish(self, p: Pending) {
        let m = &self.metrics;
        let mut parts = Vec::new();
        for b in &p.enriched {
            let split = match split_by_subject(b) {
                Ok(s) => s,
                Err(e) => return poison(m, &p.msg, &e.to_string()).await,
            };
            for (subject, part) in split {
                if let Err(e) = self.encode_fitting(&subject, &part, &mut parts) {
                    return poison(m, &p.msg, &format!("cannot encode: {e}")).await;
                }
            }
        }
        // The input's stream sequence names its outputs: a redelivered batch publishes
        // the same ids and JetStream stores it once.
        let origin = p
            .msg
            .info()
            .map(|i| i.stream_sequence.to_string())
            .unwrap_or_default();
        let mut todo: Vec<usize> = (0..parts.len()).collect();
        let mut pause = config::PUBLISH_RETRY;
        for attempt in 1..=config::PUBLISH_ATTEMPTS {
            let mut acks = FuturesUnordered::new();
            let mut failed = Vec::new();
            for i in todo {
                let part = &parts[i];
                let mut h = async_nats::HeaderMap::new();
                h.insert(headers::SCHEMA, reef_schema::ENTRY_SCHEMA);
                h.insert(headers::CONTENT_TYPE, subjects::ARROW_STREAM);
                h.insert(headers::ROWS, part.rows.to_string().as_str());
                if !origin.is_empty() {
                    h.insert(headers::MSG_ID, format!("enriched.{origin}.{i}").as_str());
                }
                match self
                    .js
                    .publish_with_headers(part.subject.clone(), h, part.payload.clone())
                    .await
                {
                    Ok(ack) => acks.push(async move { (i, ack.await) }),
                    Err(e) => {
                        tracing::debug!(error = %e, "publish failed");
                        failed.push(i);
                    }
                }
            }
            while let Some((i, res)) = acks.next().await {
                match res {
                    Ok(_) => {
                        m.batches_out.inc();
                        m.entries_out.inc_by(parts[i].rows as u64);
                        m.bytes_out.inc_by(parts[i].payload.len() as u64);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "no acknowledgment");
                        failed.push(i);
                    }
                }
            }
            if failed.is_empty() {
                m.published(&p.stats);
                if let Err(e) = p.msg.ack().await {
                    tracing::warn!(error = %e, "acknowledging an entry batch");
                }
                return;
            }
            m.publish_failures.inc_by(failed.len() as u64);
            if attempt < config::PUBLISH_ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            todo = failed;
        }
        tracing::warn!("publishing an enriched batch kept failing; it will be redelivered");
        give_back(m, &p.msg).await;
    }
}

/// Applies one Kubernetes event and publishes its JSON summary.
async fn apply_k8s(shared: &Shared, js: &jetstream::Context, ev: Event) {
    let summary = summarize(&ev);
    shared
        .k8s
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .apply(ev);
    shared.k8s_generation.fetch_add(1, Ordering::AcqRel);
    shared.metrics.k8s_events.inc();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(subjects::headers::MSG_ID, k8s_msg_id(&summary).as_str());
    // The acknowledgment is not awaited: a relist of a large cluster must not apply at
    // one round trip per object, and a lost summary costs a consumer one change.
    if let Err(e) = js
        .publish_with_headers(subjects::K8S_EVENTS, headers, summary.to_string().into())
        .await
    {
        tracing::debug!(error = %e, "publishing a Kubernetes event summary");
    }
}

/// `{"op": "upsert"|"delete", "kind": "Pod", "namespace", "name", "uid",
/// "resource_version", "ips"}`: what changed, for dashboards and other consumers.
pub fn summarize(ev: &Event) -> serde_json::Value {
    let (op, object, at) = match ev {
        Event::Upsert(o) => ("upsert", o, None),
        Event::Delete { object, at } => ("delete", object, Some(*at)),
    };
    let ips = |v: &[std::net::IpAddr]| v.iter().map(|ip| ip.to_string()).collect::<Vec<_>>();
    let (kind, namespace, name, uid, rv, addrs) = match object {
        Object::Pod(p) => (
            "Pod",
            Some(&p.namespace),
            &p.name,
            &p.uid,
            p.resource_version,
            ips(&p.ips),
        ),
        Object::Service(s) => (
            "Service",
            Some(&s.namespace),
            &s.name,
            &s.uid,
            s.resource_version,
            ips(&s.cluster_ips),
        ),
        Object::EndpointSlice(s) => (
            "EndpointSlice",
            Some(&s.namespace),
            &s.name,
            &s.uid,
            s.resource_version,
            Vec::new(),
        ),
        Object::Node(n) => (
            "Node",
            None,
            &n.name,
            &n.uid,
            n.resource_version,
            ips(&n.ips),
        ),
        Object::ReplicaSet(c) => (
            "ReplicaSet",
            Some(&c.namespace),
            &c.name,
            &c.uid,
            c.resource_version,
            Vec::new(),
        ),
        Object::Job(c) => (
            "Job",
            Some(&c.namespace),
            &c.name,
            &c.uid,
            c.resource_version,
            Vec::new(),
        ),
        Object::Namespace(n) => (
            "Namespace",
            None,
            &n.name,
            &n.uid,
            n.resource_version,
            Vec::new(),
        ),
    };
    let mut v = serde_json::json!({
        "op": op,
        "kind": kind,
        "name": name,
        "uid": uid,
        "resource_version": rv,
    });
    if let Some(ns) = namespace {
        v["namespace"] = ns.as_str().into();
    }
    if !addrs.is_empty() {
        v["ips"] = addrs.into();
    }
    if let Some(at) = at {
        v["at"] = at.into();
    }
    v
}

/// Reads every OS event from `lookback` before now (or all), into the process index.
/// `caught_up` fires once the backlog is read (or none came for a moment).
async fn follow_os_events(
    raw: stream::Stream,
    lookback: Option<Duration>,
    shared: Arc<Shared>,
    caught_up: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<()> {
    let mut caught_up = Some(caught_up);
    let deliver_policy = match lookback {
        Some(d) => {
            let start = i128::from(now_ns()) - d.as_nanos() as i128;
            consumer::DeliverPolicy::ByStartTime {
                start_time: async_nats::datetime::from_nanos(start)
                    .map_err(|e| anyhow::anyhow!("start time: {e}"))?,
            }
        }
        None => consumer::DeliverPolicy::All,
    };
    let os_consumer = raw
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subjects::ALL_NODE_OS.to_string(),
            deliver_policy,
            ..Default::default()
        })
        .await;
    let os_consumer = match os_consumer {
        Ok(c) => c,
        Err(e) => {
            if let Some(tx) = caught_up.take() {
                let _ = tx.send(());
            }
            anyhow::bail!("cannot create the OS events consumer: {e}");
        }
    };
    let mut msgs = match os_consumer.messages().await {
        Ok(m) => m,
        Err(e) => {
            if let Some(tx) = caught_up.take() {
                let _ = tx.send(());
            }
            anyhow::bail!("cannot consume OS events: {e}");
        }
    };
    loop {
        let next = if caught_up.is_some() {
            match tokio::time::timeout(config::OS_CATCH_UP_IDLE, msgs.next()).await {
                Ok(n) => n,
                Err(_) => {
                    if let Some(tx) = caught_up.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
            }
        } else {
            msgs.next().await
        };
        let msg = match next {
            None => return Ok(()),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "OS events");
                continue;
            }
            Some(Ok(m)) => m,
        };
        let pending = msg.info().map(|i| i.pending).ok();
        let node = node_of(msg.subject.as_str()).to_string();
        let events: Vec<reef_schema::OsEvent> = match ipc::decode(&msg.payload) {
            Ok(batches) => batches
                .iter()
                .filter_map(|b| match reef_schema::os_events_from_batch(b) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "not an OS event batch; skipped");
                        None
                    }
                })
                .flatten()
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, subject = %msg.subject, "undecodable OS events; skipped");
                Vec::new()
            }
        };
        {
            let mut os = shared.os.write().unwrap_or_else(PoisonError::into_inner);
            for ev in &events {
                os.apply(&node, ev);
            }
            os.prune();
        }
        shared.metrics.os_events.inc_by(events.len() as u64);
        if pending == Some(0)
            && let Some(tx) = caught_up.take()
        {
            let _ = tx.send(());
        }
    }
}

/// Every few seconds: the consumer's lag for `/metrics`, and pruning of the Kubernetes
/// index (objects closed long ago).
async fn housekeeping(raw: stream::Stream, durable: String, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(config::HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        match raw.consumer_info(&durable).await {
            Ok(info) => shared
                .metrics
                .lag
                .set((info.num_pending + info.num_ack_pending as u64) as i64),
            Err(e) => tracing::debug!(error = %e, "consumer info"),
        }
        if shared.k8s_configured {
            shared
                .k8s
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .prune(now_ns());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// deploy/nats/streams/REEF_ENRICHED.json says what the correlator creates.
    #[test]
    fn deployed_stream_definition_matches_the_defaults() {
        let def: serde_json::Value = serde_json::from_str(include_str!(
            "../../../deploy/nats/streams/REEF_ENRICHED.json"
        ))
        .unwrap();
        assert_eq!(def["name"], subjects::ENRICHED_STREAM);
        assert_eq!(def["subjects"][0], subjects::ENRICHED_SUBJECTS);
        assert_eq!(
            def["max_age"].as_u64().unwrap(),
            config::DEFAULT_STREAM_MAX_AGE.as_nanos() as u64
        );
        assert_eq!(
            def["max_bytes"].as_i64().unwrap(),
            config::DEFAULT_STREAM_MAX_BYTES
        );
        assert_eq!(
            def["duplicate_window"].as_u64().unwrap(),
            config::DUPLICATE_WINDOW.as_nanos() as u64
        );
    }

    #[test]
    fn deployed_k8s_stream_definition_matches_the_defaults() {
        let def: serde_json::Value =
            serde_json::from_str(include_str!("../../../deploy/nats/streams/REEF_K8S.json"))
                .unwrap();
        assert_eq!(def["name"], subjects::K8S_STREAM);
        assert_eq!(def["subjects"][0], subjects::K8S_SUBJECTS);
        assert_eq!(
            def["max_age"].as_u64().unwrap(),
            config::K8S_STREAM_MAX_AGE.as_nanos() as u64
        );
        assert_eq!(
            def["max_bytes"].as_i64().unwrap(),
            config::K8S_STREAM_MAX_BYTES
        );
    }

    #[test]
    fn summaries_name_the_object() {
        let ev = Event::Delete {
            object: Object::Pod(reef_k8s_index::Pod {
                uid: "u1".into(),
                resource_version: 7,
                namespace: "shop".into(),
                name: "web-1".into(),
                ips: vec!["10.0.0.1".parse().unwrap()],
                ..Default::default()
            }),
            at: 42,
        };
        assert_eq!(
            summarize(&ev),
            serde_json::json!({
                "op": "delete", "kind": "Pod", "namespace": "shop", "name": "web-1",
                "uid": "u1", "resource_version": 7, "ips": ["10.0.0.1"], "at": 42
            })
        );
        assert_eq!(node_of("reef.v1.node.n-1.entries"), "n-1");
        assert_eq!(node_of("odd"), "_");
    }
}
