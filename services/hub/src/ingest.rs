//! Ingest: one ordered read of the enriched stream into the window, running only while
//! the hub has clients (WebSocket connections, or API calls in the last
//! [`crate::HubConfig::idle_grace`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};

use crate::HubInner;
use crate::batch::Batch;
use crate::session::now_ns;
use crate::source::{Item, Start};

/// With no message for this long, ingest has read everything stored.
const CAUGHT_UP_IDLE: Duration = Duration::from_millis(300);
/// Longest wait between retries of a failed read.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Who needs the window: connected clients and recent API calls.
pub struct Activity {
    started: Instant,
    clients: AtomicUsize,
    last_ms: AtomicU64,
    wake: Notify,
    pub ingesting: AtomicBool,
    caught_up: watch::Sender<bool>,
}

/// Held by a connected client; ingest may stop once none is left.
pub struct ClientGuard(Arc<Activity>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            started: Instant::now(),
            clients: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            wake: Notify::new(),
            ingesting: AtomicBool::new(false),
            caught_up: watch::channel(false).0,
        }
    }
}

impl Activity {
    pub fn enter(self: &Arc<Self>) -> ClientGuard {
        self.clients.fetch_add(1, Ordering::Relaxed);
        self.touch();
        ClientGuard(Arc::clone(self))
    }

    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    pub fn touch(&self) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn active(&self, grace: Duration) -> bool {
        if self.clients() > 0 {
            return true;
        }
        let idle = self.started.elapsed().as_millis() as u64 - self.last_ms.load(Ordering::Relaxed);
        idle < grace.as_millis() as u64
    }

    /// Marks an API call and waits (at most `max`) until ingest has read what is stored,
    /// so a first call after an idle time sees the window filled.
    pub async fn touch_and_wait(&self, max: Duration) {
        self.touch();
        let mut rx = self.caught_up.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|c| *c)).await;
    }
}

pub async fn run(hub: Arc<HubInner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        while !hub.activity.active(hub.config.idle_grace) {
            tokio::select! {
                _ = hub.activity.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        match ingest_once(&hub).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                hub.metrics.ingest_errors.inc();
                tracing::warn!(error = %format!("{e:#}"), "ingest: retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

struct Covering<'a>(&'a HubInner);

impl Drop for Covering<'_> {
    fn drop(&mut self) {
        self.0.window.stop_covering();
        self.0.activity.ingesting.store(false, Ordering::Relaxed);
        self.0.activity.caught_up.send_replace(false);
    }
}

async fn ingest_once(hub: &HubInner) -> anyhow::Result<()> {
    let resume = hub.window.stats().last_seq.map(|s| s + 1);
    let (start, promise) = match resume {
        Some(seq) => (Start::Seq(seq), seq),
        None => {
            let last = hub.source.last_seq().await?;
            let since = now_ns() - hub.config.backfill.as_nanos() as i64;
            (Start::TimeNs(since), last + 1)
        }
    };
    let mut items = hub.source.read(start).await?;
    hub.window.start_covering(promise);
    hub.activity.ingesting.store(true, Ordering::Relaxed);
    let _covering = Covering(hub);
    tracing::info!(?start, "ingest started");
    let schema = reef_schema::entry_schema();
    loop {
        if !hub.activity.active(hub.config.idle_grace) {
            tracing::info!("ingest stopped: no clients");
            return Ok(());
        }
        let item = match tokio::time::timeout(CAUGHT_UP_IDLE, items.next()).await {
            Err(_) => {
                hub.activity
                    .caught_up
                    .send_if_modified(|c| !std::mem::replace(c, true));
                continue;
            }
            Ok(None) => anyhow::bail!("the stream read ended"),
            Ok(Some(Err(e))) => return Err(e),
            Ok(Some(Ok(item))) => item,
        };
        match item {
            Item::Lost { from_seq, to_seq } => {
                tracing::warn!(from_seq, to_seq, "ingest: batches left retention unread");
                hub.window.skipped(to_seq);
            }
            Item::Batch(stored) => {
                match Batch::decode(&stored, &schema) {
                    Ok(b) => {
                        hub.metrics.ingest_batches.inc();
                        hub.metrics.ingest_entries.inc_by(b.rows() as u64);
                        hub.rate.add(b.rows() as u64);
                        hub.window.push(b);
                    }
                    Err(e) => {
                        hub.metrics.ingest_skipped.inc();
                        tracing::warn!(error = %e, "ingest: skipped a message");
                    }
                }
                if stored.pending == Some(0) {
                    hub.activity
                        .caught_up
                        .send_if_modified(|c| !std::mem::replace(c, true));
                }
            }
        }
    }
}
