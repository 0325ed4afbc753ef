//! One capture thread's pipeline: packets into the engine, entries through redaction
//! into batches, batches into the outbox. The same engine `reef dissect` runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reef_engine::{Config, Engine, Stats};

use reef_redact::Redactor;
use reef_schema::{Entry, EntryBatchBuilder, Flags, FlowBatchBuilder};

use crate::batch::Batcher;
use crate::config::BatchLimits;
use crate::outbox::{Kind, Outbox};

/// Packets between two drains of the engine's finished entries.
const DRAIN_EVERY: u32 = 256;
/// How often a thread publishes its counters for `/metrics`.
const REPORT_EVERY: Duration = Duration::from_millis(500);

/// Entries of one protocol, by how their request and response were seen. Counted
/// from the entries themselves, so every protocol is covered the same way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PairCounts {
    pub entries: u64,
    /// Request and response both seen.
    pub matched: u64,
    /// Flagged `no_response`.
    pub unmatched_requests: u64,
    /// Flagged `no_request`.
    pub unmatched_responses: u64,
}

impl PairCounts {
    fn count(&mut self, e: &Entry) {
        self.entries += 1;
        if e.flags.contains(Flags::NO_RESPONSE) {
            self.unmatched_requests += 1;
        } else if e.flags.contains(Flags::NO_REQUEST) {
            self.unmatched_responses += 1;
        } else if e.request_size.is_some() && e.response_size.is_some() {
            self.matched += 1;
        }
    }
}

/// What one thread (or one replayed file) has counted.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub engine: Stats,
    pub by_protocol: BTreeMap<&'static str, PairCounts>,
    pub redacted_values: u64,
}

/// The counters of every producer, read by `/metrics` and the final report. A replayed
/// file has a producer of its own, whose last snapshot stays here when it is done.
#[derive(Default)]
pub struct Shared {
    slots: Mutex<Vec<Snapshot>>,
}

impl Shared {
    pub fn slot(&self) -> usize {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.push(Snapshot::default());
        s.len() - 1
    }

    fn set(&self, slot: usize, snap: Snapshot) {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(x) = s.get_mut(slot) {
            *x = snap;
        }
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.slots.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

pub struct Producer {
    engine: Engine,
    entries: Batcher<EntryBatchBuilder>,
    flows: Batcher<FlowBatchBuilder>,
    redactor: Option<Redactor>,
    outbox: Arc<Outbox>,
    shared: Arc<Shared>,
    slot: usize,
    by_protocol: BTreeMap<&'static str, PairCounts>,
    redacted: u64,
    since_drain: u32,
    last_report: Instant,
}

impl Producer {
    pub fn new(
        engine_cfg: Config,
        limits: BatchLimits,
        redactor: Option<Redactor>,
        outbox: Arc<Outbox>,
        shared: Arc<Shared>,
    ) -> Producer {
        let slot = shared.slot();
        Producer {
            engine: Engine::new(engine_cfg),
            entries: Batcher::new(
                EntryBatchBuilder::with_capacity(limits.rows.min(1024)),
                Kind::Entries,
                limits.clone(),
            ),
            flows: Batcher::new(FlowBatchBuilder::with_capacity(256), Kind::Flows, limits),
            redactor,
            outbox,
            shared,
            slot,
            by_protocol: BTreeMap::new(),
            redacted: 0,
            since_drain: 0,
            last_report: Instant::now(),
        }
    }

    pub fn packet(&mut self, ts: i64, link_type: u16, frame: &[u8]) {
        self.engine.packet(ts, link_type, frame);
        self.since_drain += 1;
        if self.since_drain >= DRAIN_EVERY {
            self.drain(Instant::now());
        }
    }

    /// Between packets: lets capture time pass (`now_ns`, for timeouts on a quiet
    /// link), publishes batches whose linger is over, reports counters.
    pub fn idle(&mut self, now_ns: Option<i64>) {
        if let Some(t) = now_ns {
            self.engine.advance(t);
        }
        let now = Instant::now();
        self.drain(now);
        if self.entries.due(now) {
            self.entries.flush(&self.outbox);
        }
        if self.flows.due(now) {
            self.flows.flush(&self.outbox);
        }
        if now.duration_since(self.last_report) >= REPORT_EVERY {
            self.report();
        }
    }

    /// When the next batch is due, so that a capture thread does not sleep past it.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.entries.deadline(), self.flows.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn drain(&mut self, now: Instant) {
        self.since_drain = 0;
        let Producer {
            engine,
            entries,
            flows,
            redactor,
            outbox,
            by_protocol,
            redacted,
            ..
        } = self;
        for mut e in engine.drain_entries() {
            if let Some(r) = redactor {
                *redacted += r.redact(&mut e) as u64;
            }
            by_protocol
                .entry(e.protocol.as_str())
                .or_default()
                .count(&e);
            entries.push(&e, now, outbox);
        }
        for f in engine.drain_flows() {
            flows.push(&f, now, outbox);
        }
    }

    /// Stops (end of a capture file, or of a live capture): every connection closes
    /// and everything is flushed.
    pub fn finish(mut self) {
        self.engine.finish();
        self.drain(Instant::now());
        self.entries.flush(&self.outbox);
        self.flows.flush(&self.outbox);
        self.report();
    }

    fn report(&mut self) {
        self.last_report = Instant::now();
        self.shared.set(
            self.slot,
            Snapshot {
                engine: self.engine.stats(),
                by_protocol: self.by_protocol.clone(),
                redacted_values: self.redacted,
            },
        );
    }
}
