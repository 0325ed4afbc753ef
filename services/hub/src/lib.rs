//! The hub: serves entries to people and programs.
//!
//! - Ingest reads the enriched stream (JetStream REEF_ENRICHED, or the local bus) into
//!   a bounded window, only while someone is connected.
//! - Each WebSocket subscription has its own SQL filter, compiled once
//!   ([`reef_filter::Filter`]) and evaluated on every batch; history is read from the
//!   bus by sequence or time and joins the live window with no gap and no duplicate.
//! - REST: entries, one entry, schema with frequent values, filter validation,
//!   read-only SQL over the window, the service map, stats.
//!
//! Nothing is kept that another hub would not also have: positions are stream
//! sequences, so any hub resumes any client. See schemas/hub-api.md for the protocol.

pub mod api;
pub mod batch;
pub mod ingest;
pub mod metrics;
pub mod servicemap;
pub mod session;
pub mod source;
pub mod sql;
pub mod values;
pub mod web;
pub mod window;
pub mod ws;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

pub use source::{JetStreamSource, LocalSource, SharedSource, Source, Start, Stored};
use window::Window;

/// How far back ingest starts when the window is empty.
pub const DEFAULT_BACKFILL: Duration = Duration::from_secs(15 * 60);
/// Ingest goes on this long after the last client left or the last API call.
pub const DEFAULT_IDLE_GRACE: Duration = Duration::from_secs(60);
/// Default listen address of `reef hub` and `reef local`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8899";

#[derive(Debug, Clone)]
pub struct HubConfig {
    pub window_bytes: usize,
    pub backfill: Duration,
    pub idle_grace: Duration,
    /// Required bearer token on /ws and /api, when set.
    pub token: Option<String>,
    /// The dashboard's built files (web/dist), when found.
    pub web_dir: Option<PathBuf>,
    /// Messages queued per WebSocket client before live batches are dropped for it.
    pub client_queue: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            window_bytes: window::DEFAULT_WINDOW_BYTES,
            backfill: DEFAULT_BACKFILL,
            idle_grace: DEFAULT_IDLE_GRACE,
            token: None,
            web_dir: None,
            client_queue: session::CLIENT_QUEUE_MESSAGES,
        }
    }
}

pub use reef_schema::WorkerStatus;

/// Entries ingested per second over the last few seconds.
#[derive(Default)]
pub struct Rate {
    buckets: Mutex<[(i64, u64); RATE_BUCKETS]>,
}

const RATE_BUCKETS: usize = 8;
const RATE_SECONDS: i64 = 5;

impl Rate {
    pub fn add(&self, n: u64) {
        let sec = session::now_ns() / 1_000_000_000;
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut b[sec.rem_euclid(RATE_BUCKETS as i64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
    }

    /// Average over the last complete seconds.
    pub fn per_second(&self) -> f64 {
        let now = session::now_ns() / 1_000_000_000;
        let b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let sum: u64 = b
            .iter()
            .filter(|(s, _)| *s < now && *s >= now - RATE_SECONDS)
            .map(|(_, n)| n)
            .sum();
        sum as f64 / RATE_SECONDS as f64
    }
}

pub struct HubInner {
    pub config: HubConfig,
    pub source: SharedSource,
    pub window: Arc<Window>,
    pub activity: Arc<ingest::Activity>,
    pub metrics: Arc<metrics::Metrics>,
    pub rate: Rate,
    pub workers: RwLock<BTreeMap<String, WorkerStatus>>,
    next_sub: AtomicU64,
}

/// A hub: cheap to clone, one per process.
#[derive(Clone)]
pub struct Hub(pub Arc<HubInner>);

impl Hub {
    pub fn new(source: SharedSource, config: HubConfig) -> Hub {
        Hub(Arc::new(HubInner {
            window: Arc::new(Window::new(config.window_bytes)),
            config,
            source,
            activity: Arc::new(ingest::Activity::default()),
            metrics: Arc::new(metrics::Metrics::default()),
            rate: Rate::default(),
            workers: RwLock::new(BTreeMap::new()),
            next_sub: AtomicU64::new(1),
        }))
    }

    pub fn next_sub(&self) -> u64 {
        self.0.next_sub.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a worker's report (from NATS, or from the worker in the same process).
    pub fn worker_status(&self, status: WorkerStatus) {
        self.0
            .workers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(status.node.clone(), status);
    }

    /// The HTTP service: dashboard, /ws, /api, /metrics, /healthz, /readyz.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/ws", get(ws::handler))
            .route("/api/entries", get(api::entries))
            .route("/api/entries/{id}", get(api::entry))
            .route("/api/schema", get(api::schema))
            .route("/api/validate", post(api::validate))
            .route("/api/sql", post(api::sql))
            .route("/api/servicemap", get(api::servicemap))
            .route("/api/stats", get(api::stats))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                api::authorize,
            ));
        Router::new()
            .merge(api)
            .route("/metrics", get(api::metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(api::readyz))
            .fallback(web::serve)
            .with_state(self.clone())
    }

    /// Runs ingest and serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let ingest = tokio::spawn(ingest::run(Arc::clone(&self.0)));
        let app = self.router();
        let result = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        ingest.abort();
        result.map_err(|e| anyhow::anyhow!("serving HTTP: {e}"))
    }
}

/// Follows the workers' reports on NATS (`reef.v1.status.<node>`, not stored).
pub async fn follow_worker_status(hub: Hub, client: async_nats::Client) {
    use futures_util::StreamExt;
    let mut sub = match client
        .subscribe(reef_schema::subjects::WORKER_STATUS_ALL)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot follow worker reports");
            return;
        }
    };
    while let Some(msg) = sub.next().await {
        match serde_json::from_slice::<WorkerStatus>(&msg.payload) {
            Ok(s) => hub.worker_status(s),
            Err(e) => tracing::debug!(error = %e, "not a worker report"),
        }
    }
}
