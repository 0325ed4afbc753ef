//! Publishing batches to JetStream with many acknowledgments in flight.
//!
//! Awaiting each acknowledgment in turn runs at about 10 k msg/s here; a window of them
//! at about 235 k msg/s (DESIGN §8). Every batch carries a `Nats-Msg-Id`, so a publish
//! retried after a timeout is stored once even if the first attempt had landed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use reef_schema::subjects::{self, headers};

use crate::config::{StreamLimits, WorkerConfig};
use crate::outbox::{Kind, Msg, Outbox};

/// Pause after a failed publish, doubling up to the maximum while NATS stays away.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// JetStream's de-duplication window for the worker's retries.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Creates REEF_RAW or brings its limits up to date; safe to run on every start.
pub async fn ensure_stream(
    js: &jetstream::Context,
    limits: &StreamLimits,
) -> Result<(), anyhow::Error> {
    let config = stream::Config {
        name: subjects::RAW_STREAM.to_string(),
        subjects: vec![subjects::RAW_SUBJECTS.to_string()],
        max_age: limits.max_age,
        max_bytes: limits.max_bytes,
        storage: stream::StorageType::File,
        num_replicas: limits.replicas,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: DUPLICATE_WINDOW,
        description: Some("Reef workers: entries and flows per node (Arrow IPC batches)".into()),
        ..stream::Config::default()
    };
    js.create_or_update_stream(config).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot create or update stream {}: {e}",
            subjects::RAW_STREAM
        )
    })?;
    Ok(())
}

pub struct Publisher {
    js: jetstream::Context,
    worker_id: String,
    subjects: [String; 2],
    window: usize,
    /// Encoded batches larger than this are refused by the server; they are dropped.
    max_payload: usize,
}

/// How a publish loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Done {
    /// The outbox was closed and everything in it is acknowledged.
    Drained,
    /// Stopped from outside (live capture shutting down).
    Stopped,
}

impl Publisher {
    pub fn new(
        js: jetstream::Context,
        cfg: &WorkerConfig,
        worker_id: String,
        max_payload: usize,
    ) -> Publisher {
        Publisher {
            js,
            worker_id,
            subjects: [
                subjects::node_entries(&cfg.node),
                subjects::node_flows(&cfg.node),
            ],
            window: cfg.in_flight.max(1),
            max_payload,
        }
    }

    fn headers(&self, m: &Msg) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        let schema = match m.kind {
            Kind::Entries => reef_schema::ENTRY_SCHEMA,
            Kind::Flows => reef_schema::FLOW_SCHEMA,
        };
        h.insert(headers::SCHEMA, schema);
        h.insert(headers::CONTENT_TYPE, subjects::ARROW_STREAM);
        h.insert(headers::WORKER, self.worker_id.as_str());
        h.insert(headers::BATCH_SEQ, m.seq.to_string().as_str());
        h.insert(headers::ROWS, m.rows.to_string().as_str());
        h.insert(
            headers::MSG_ID,
            format!("{}.{}.{}", self.worker_id, m.kind.as_str(), m.seq).as_str(),
        );
        h
    }

    /// Publishes until the outbox is closed and drained, `stop` resolves, or nothing was
    /// acknowledged for `give_up` while batches were waiting.
    pub async fn run(
        &self,
        outbox: Arc<Outbox>,
        give_up: Option<Duration>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Done, anyhow::Error> {
        let mut in_flight = FuturesUnordered::new();
        let mut pause = RETRY_MIN;
        let mut last_progress = Instant::now();
        loop {
            if *stop.borrow() {
                return Ok(Done::Stopped);
            }
            // Fill the window.
            let mut failed = false;
            while in_flight.len() < self.window {
                let Some(m) = outbox.pop() else { break };
                if m.payload.len() > self.max_payload {
                    tracing::error!(
                        bytes = m.payload.len(),
                        max = self.max_payload,
                        "batch larger than the server's max_payload; dropped"
                    );
                    outbox.retry_never(m);
                    continue;
                }
                let subject = self.subjects[m.kind as usize].clone();
                match self
                    .js
                    .publish_with_headers(subject, self.headers(&m), m.payload.clone())
                    .await
                {
                    Ok(ack) => in_flight.push(async move { (m, ack.await) }),
                    Err(e) => {
                        if e.kind() == PublishErrorKind::MaxPayloadExceeded {
                            outbox.retry_never(m);
                            continue;
                        }
                        tracing::debug!(error = %e, "publish failed; will retry");
                        outbox.retry(m);
                        failed = true;
                        break;
                    }
                }
            }
            if in_flight.is_empty() {
                if outbox.is_closed() && outbox.is_empty() {
                    return Ok(Done::Drained);
                }
                if failed || !outbox.is_empty() {
                    if give_up.is_some_and(|g| last_progress.elapsed() > g) {
                        return Err(nats_gone(give_up));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RETRY_MAX);
                    continue;
                }
                tokio::select! {
                    _ = outbox.wait() => {}
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
            let deadline = give_up.map(|g| last_progress + g);
            tokio::select! {
                Some((m, res)) = in_flight.next() => match res {
                    Ok(_) => {
                        outbox.published(&m);
                        last_progress = Instant::now();
                        pause = RETRY_MIN;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, seq = m.seq, "no acknowledgment; will retry");
                        outbox.retry(m);
                    }
                },
                _ = outbox.wait(), if in_flight.len() < self.window => {}
                _ = stop.changed() => {}
                _ = sleep_until(deadline) => return Err(nats_gone(give_up)),
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn nats_gone(after: Option<Duration>) -> anyhow::Error {
    anyhow::anyhow!(
        "NATS acknowledged nothing for {}s while batches were waiting; is the server up and \
         the REEF_RAW stream writable?",
        after.map_or(0, |d| d.as_secs())
    )
}
