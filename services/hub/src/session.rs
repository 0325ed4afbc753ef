//! One subscription: a filter and a position in the stream, read from the window when it
//! covers the position and from the bus otherwise, delivered in order to a bounded queue.
//!
//! Positions are stream sequences, the same on every hub, so replay-then-live has no gap
//! and no duplicate: the session reads the bus from its start until the window covers
//! its next sequence, then the window. Pausing stops reading; resuming goes on from the
//! same place.
//!
//! Backpressure: history read from the bus waits for the client (it is the client's own
//! read). Live delivery from the window never waits long: when a client's queue stays
//! full, its batches are dropped and counted, and it gets `lost` — the window, ingest and
//! other clients are never held up.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow_array::Array;
use futures_util::StreamExt;
use reef_filter::Filter;
use tokio::sync::{mpsc, watch};

use crate::batch::Batch;
use crate::source::{Item, SharedSource, Start};
use crate::window::Window;

/// Messages a client's queue holds by default (each up to [`MAX_ENTRIES_PER_MESSAGE`] entries).
pub const CLIENT_QUEUE_MESSAGES: usize = 64;
/// Entries per `entries` message at most.
pub const MAX_ENTRIES_PER_MESSAGE: usize = 1000;
/// How long live delivery waits for room in a full queue before dropping.
pub const SLOW_CLIENT_WAIT: Duration = Duration::from_millis(250);
/// Batches taken from the window per step.
const WINDOW_STEP: usize = 64;
/// How often a subscription reports `stats`.
pub const STATS_EVERY: Duration = Duration::from_secs(1);
/// Wait between attempts to read the bus when it fails.
const READ_RETRY: Duration = Duration::from_secs(1);
const CLOSED: &str = "the connection closed";
/// A bounded subscription (`until`) ends once the bus has been quiet this long past it.
const UNTIL_SETTLE: Duration = Duration::from_millis(1500);

/// Where a subscription begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// Right after this entry (a cursor the client saw).
    After { seq: u64, row: usize },
    /// At this sequence.
    Seq(u64),
    /// The first batch stored at or after this time (ns).
    TimeNs(i64),
    /// The oldest stored batch.
    First,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub sub: u64,
    pub filter: Arc<Filter>,
    pub from: From,
    pub until_ns: Option<i64>,
    pub limit: Option<u64>,
    /// Live delivery drops for a slow reader; false: always wait (REST).
    pub drop_when_slow: bool,
}

/// What a session sends its client.
#[derive(Debug)]
pub enum Out {
    Entries {
        sub: u64,
        batch: Arc<Batch>,
        rows: Vec<u32>,
    },
    Lost {
        sub: u64,
        count: u64,
        reason: String,
    },
    Stats {
        sub: u64,
        seen: u64,
        matched: u64,
        lag_ms: Option<u64>,
        paused: bool,
    },
    Complete {
        sub: u64,
        reason: &'static str,
    },
    Error {
        message: String,
    },
    /// A message already rendered (replies to the client's own messages).
    Text(String),
}

/// Counters shared with the hub's metrics.
pub trait Counters: Send + Sync {
    fn delivered(&self, entries: u64);
    fn lost(&self, entries: u64);
}

pub struct Session {
    spec: Spec,
    source: SharedSource,
    window: Arc<Window>,
    out: mpsc::Sender<Out>,
    paused: watch::Receiver<bool>,
    counters: Arc<dyn Counters>,
    seen: u64,
    matched: u64,
    lost_unreported: u64,
    lost_reason: String,
    newest_ns: Option<i64>,
    /// Nothing newer to read: `lag_ms` is then 0, however old the newest batch.
    caught_up: bool,
    congested: bool,
    last_stats: tokio::time::Instant,
}

enum Step {
    Go,
    Done(&'static str),
}

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl Session {
    pub fn new(
        spec: Spec,
        source: SharedSource,
        window: Arc<Window>,
        out: mpsc::Sender<Out>,
        paused: watch::Receiver<bool>,
        counters: Arc<dyn Counters>,
    ) -> Session {
        Session {
            spec,
            source,
            window,
            out,
            paused,
            counters,
            seen: 0,
            matched: 0,
            lost_unreported: 0,
            lost_reason: String::new(),
            newest_ns: None,
            caught_up: false,
            congested: false,
            last_stats: tokio::time::Instant::now(),
        }
    }

    /// Runs until the subscription completes, the client goes away or the task is
    /// aborted (a new subscription).
    pub async fn run(mut self) {
        let sub = self.spec.sub;
        match self.run_inner().await {
            Ok(Some(reason)) => {
                self.report_lost().await;
                self.send_stats().await;
                let _ = self.out.send(Out::Complete { sub, reason }).await;
            }
            Ok(None) => {}
            Err(e) => {
                let _ = self.out.send(Out::Error { message: e }).await;
            }
        }
    }

    async fn run_inner(&mut self) -> Result<Option<&'static str>, String> {
        // `next`: the sequence to read next; `skip`: rows of that batch already seen.
        let (mut next, mut skip) = match self.spec.from {
            From::After { seq, row } => (Some(seq), Some((seq, row))),
            From::Seq(seq) => (Some(seq), None),
            From::TimeNs(ns) => (self.window.seq_at_time(ns), None),
            From::First => (None, None),
        };
        loop {
            self.wait_while_paused().await?;
            // From the window while it covers the position.
            if let Some(seq) = next
                && self.window.from_seq(seq, 0).is_some()
            {
                match self.read_window(seq, &mut skip).await? {
                    (Step::Done(r), _) => return Ok(Some(r)),
                    (Step::Go, n) => {
                        next = Some(n);
                        continue;
                    }
                }
            }
            // Else from the bus, until the window covers it.
            let start = match (next, self.spec.from) {
                (Some(seq), _) => Start::Seq(seq),
                (None, From::TimeNs(ns)) => Start::TimeNs(ns),
                (None, _) => Start::First,
            };
            match self.read_bus(start, &mut skip).await? {
                (Step::Done(r), _) => return Ok(Some(r)),
                (Step::Go, n) => next = n.or(next),
            }
        }
    }

    async fn wait_while_paused(&mut self) -> Result<(), String> {
        while *self.paused.borrow() {
            tokio::select! {
                changed = self.paused.changed() => {
                    changed.map_err(|_| CLOSED.to_string())?;
                }
                _ = tokio::time::sleep(STATS_EVERY) => self.send_stats().await,
            }
        }
        Ok(())
    }

    /// Reads the window from `seq`; returns the next sequence when the window no longer
    /// covers it or a pause was asked.
    async fn read_window(
        &mut self,
        mut seq: u64,
        skip: &mut Option<(u64, usize)>,
    ) -> Result<(Step, u64), String> {
        let mut changed = self.window.subscribe();
        loop {
            if *self.paused.borrow() {
                return Ok((Step::Go, seq));
            }
            let Some(batches) = self.window.from_seq(seq, WINDOW_STEP) else {
                return Ok((Step::Go, seq));
            };
            self.caught_up = batches.is_empty();
            if batches.is_empty() {
                if let Some(r) = self.until_passed() {
                    return Ok((Step::Done(r), seq));
                }
                tokio::select! {
                    _ = changed.changed() => {}
                    r = self.paused.changed() => r.map_err(|_| CLOSED.to_string())?,
                    _ = tokio::time::sleep(STATS_EVERY) => {}
                }
                self.maybe_stats().await;
                continue;
            }
            for b in batches {
                seq = b.seq + 1;
                let first_row = take_skip(skip, &b);
                if let Step::Done(r) = self.deliver(&b, first_row, true).await? {
                    return Ok((Step::Done(r), seq));
                }
            }
            self.maybe_stats().await;
        }
    }

    /// Reads the bus from `start` until the window covers the next sequence.
    async fn read_bus(
        &mut self,
        start: Start,
        skip: &mut Option<(u64, usize)>,
    ) -> Result<(Step, Option<u64>), String> {
        self.caught_up = false;
        // The bus may be down or the stream not created yet: retry, reporting stats.
        let mut items = loop {
            match self.source.read(start).await {
                Ok(items) => break items,
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "subscription: retrying the read");
                    tokio::select! {
                        _ = tokio::time::sleep(READ_RETRY) => {}
                        r = self.paused.changed() => r.map_err(|_| CLOSED.to_string())?,
                    }
                    if let Some(r) = self.until_passed() {
                        return Ok((Step::Done(r), None));
                    }
                    self.maybe_stats().await;
                    if *self.paused.borrow() {
                        return Ok((Step::Go, None));
                    }
                }
            }
        };
        let schema = reef_schema::entry_schema();
        let mut next = match start {
            Start::Seq(s) => Some(s),
            _ => None,
        };
        let mut changed = self.window.subscribe();
        loop {
            if *self.paused.borrow() {
                return Ok((Step::Go, next));
            }
            if let Some(seq) = next
                && self.window.from_seq(seq, 0).is_some()
            {
                return Ok((Step::Go, next));
            }
            let item = tokio::select! {
                item = items.next() => item,
                _ = changed.changed() => continue,
                r = self.paused.changed() => {
                    r.map_err(|_| CLOSED.to_string())?;
                    continue;
                }
                _ = tokio::time::sleep(STATS_EVERY) => {
                    if let Some(r) = self.until_passed() {
                        return Ok((Step::Done(r), next));
                    }
                    self.maybe_stats().await;
                    continue;
                }
            };
            match item {
                None => return Err("the stream ended".into()),
                Some(Err(e)) => return Err(format!("reading the stream: {e:#}")),
                Some(Ok(Item::Lost { from_seq, to_seq })) => {
                    self.lost_reason = format!(
                        "{} batches (sequences {from_seq}–{to_seq}) left retention before they were read",
                        to_seq - from_seq + 1
                    );
                    let _ = self
                        .out
                        .send(Out::Lost {
                            sub: self.spec.sub,
                            count: to_seq - from_seq + 1,
                            reason: std::mem::take(&mut self.lost_reason),
                        })
                        .await;
                    next = Some(to_seq + 1);
                }
                Some(Ok(Item::Batch(stored))) => {
                    next = Some(stored.seq + 1);
                    if let Some(until) = self.spec.until_ns
                        && stored.time_ns > until
                    {
                        return Ok((Step::Done("until"), next));
                    }
                    // The window may hold it decoded already.
                    let b = match self.window.get(stored.seq) {
                        Some(b) => b,
                        None => match Batch::decode(&stored, &schema) {
                            Ok(b) => b,
                            Err(e) => {
                                tracing::debug!(error = %e, "skipped");
                                continue;
                            }
                        },
                    };
                    let first_row = take_skip(skip, &b);
                    if let Step::Done(r) = self.deliver(&b, first_row, false).await? {
                        return Ok((Step::Done(r), next));
                    }
                    self.maybe_stats().await;
                }
            }
        }
    }

    fn until_passed(&self) -> Option<&'static str> {
        let until = self.spec.until_ns?;
        (now_ns() > until + UNTIL_SETTLE.as_nanos() as i64).then_some("until")
    }

    /// Filters one batch and queues its matching rows.
    async fn deliver(
        &mut self,
        b: &Arc<Batch>,
        first_row: usize,
        live: bool,
    ) -> Result<Step, String> {
        if let Some(until) = self.spec.until_ns
            && b.time_ns > until
        {
            return Ok(Step::Done("until"));
        }
        self.newest_ns = Some(b.time_ns);
        let n = b.rows();
        if first_row >= n {
            return Ok(Step::Go);
        }
        let mask = self
            .spec
            .filter
            .evaluate(&b.data)
            .map_err(|e| format!("the filter failed on batch {}: {e}", b.seq))?;
        self.seen += (n - first_row) as u64;
        let mut rows: Vec<u32> = (first_row..n)
            .filter(|&i| mask.is_valid(i) && mask.value(i))
            .map(|i| i as u32)
            .collect();
        let mut done = None;
        if let Some(limit) = self.spec.limit {
            let left = limit.saturating_sub(self.matched) as usize;
            if rows.len() >= left {
                rows.truncate(left);
                done = Some("limit");
            }
        }
        self.matched += rows.len() as u64;
        for chunk in rows.chunks(MAX_ENTRIES_PER_MESSAGE) {
            let msg = Out::Entries {
                sub: self.spec.sub,
                batch: Arc::clone(b),
                rows: chunk.to_vec(),
            };
            let count = chunk.len() as u64;
            if live && self.spec.drop_when_slow {
                if !self.send_or_drop(msg).await? {
                    self.lost_unreported += count;
                    self.counters.lost(count);
                    continue;
                }
            } else {
                self.report_lost().await;
                self.out
                    .send(msg)
                    .await
                    .map_err(|_| "the client went away".to_string())?;
            }
            self.counters.delivered(count);
        }
        Ok(match done {
            Some(r) => Step::Done(r),
            None => Step::Go,
        })
    }

    /// Live delivery: queues `msg` unless the client's queue stays full; false when
    /// dropped. A congested client gets nothing until its queue has half drained.
    async fn send_or_drop(&mut self, msg: Out) -> Result<bool, String> {
        if self.congested {
            if self.out.capacity() < self.out.max_capacity() / 2 {
                return Ok(false);
            }
            self.congested = false;
        }
        self.report_lost().await;
        match self.out.try_send(msg) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Err("the client went away".into()),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                match self.out.send_timeout(msg, SLOW_CLIENT_WAIT).await {
                    Ok(()) => Ok(true),
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                        Err("the client went away".into())
                    }
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        self.congested = true;
                        Ok(false)
                    }
                }
            }
        }
    }

    /// Tells the client about dropped entries, when its queue has room.
    async fn report_lost(&mut self) {
        if self.lost_unreported == 0 {
            return;
        }
        let msg = Out::Lost {
            sub: self.spec.sub,
            count: self.lost_unreported,
            reason: "slow client: its queue was full, so these entries were dropped".into(),
        };
        if self.out.try_send(msg).is_ok() {
            self.lost_unreported = 0;
        }
    }

    async fn maybe_stats(&mut self) {
        if self.last_stats.elapsed() >= STATS_EVERY {
            self.report_lost().await;
            self.send_stats().await;
        }
    }

    async fn send_stats(&mut self) {
        self.last_stats = tokio::time::Instant::now();
        let lag_ms = if self.caught_up {
            Some(0)
        } else {
            self.newest_ns
                .map(|t| ((now_ns() - t).max(0) / 1_000_000) as u64)
        };
        let msg = Out::Stats {
            sub: self.spec.sub,
            seen: self.seen,
            matched: self.matched,
            lag_ms,
            paused: *self.paused.borrow(),
        };
        // Stats are dropped rather than waited for: the next one follows in a second.
        let _ = self.out.try_send(msg);
    }
}

/// The first row of `b` not yet seen (the client resumed after a cursor in it).
fn take_skip(skip: &mut Option<(u64, usize)>, b: &Batch) -> usize {
    match *skip {
        Some((seq, row)) if seq == b.seq => {
            *skip = None;
            row + 1
        }
        Some((seq, _)) if seq < b.seq => {
            *skip = None;
            0
        }
        _ => 0,
    }
}
