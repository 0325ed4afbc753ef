//! Encoded batches between the capture threads and the publisher.
//!
//! Capture threads must never wait on the network: they push and go on. The outbox is
//! bounded in bytes; when NATS is slow or away and it fills, the oldest batches are
//! dropped and counted, so that `published + dropped = produced` holds exactly.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Entries,
    Flows,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Entries, Kind::Flows];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Entries => "entries",
            Kind::Flows => "flows",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One encoded batch on its way to NATS.
#[derive(Debug, Clone)]
pub struct Msg {
    pub kind: Kind,
    /// Per worker and kind: 1, 2, 3...
    pub seq: u64,
    pub rows: u64,
    pub payload: Bytes,
}

/// Counters per kind.
#[derive(Debug, Default)]
pub struct Counts {
    pub produced_batches: AtomicU64,
    pub produced_rows: AtomicU64,
    pub published_batches: AtomicU64,
    pub published_rows: AtomicU64,
    pub published_bytes: AtomicU64,
    pub dropped_batches: AtomicU64,
    pub dropped_rows: AtomicU64,
}

#[derive(Default)]
struct Queue {
    msgs: VecDeque<Msg>,
    bytes: usize,
}

pub struct Outbox {
    queue: Mutex<Queue>,
    limit: usize,
    notify: Notify,
    closed: AtomicBool,
    seq: [AtomicU64; 2],
    pub counts: [Counts; 2],
    /// Publishes that failed (and were retried).
    pub failures: AtomicU64,
    /// Batches the server refused for their size (dropped).
    pub refused: AtomicU64,
}

impl Outbox {
    pub fn new(limit: usize) -> Outbox {
        Outbox {
            queue: Mutex::new(Queue::default()),
            limit,
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            seq: [AtomicU64::new(0), AtomicU64::new(0)],
            counts: [Counts::default(), Counts::default()],
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves a consistent queue: keep going.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a batch; drops the oldest ones if the outbox would exceed its limit.
    pub fn push(&self, kind: Kind, rows: u64, payload: Bytes) {
        let seq = self.seq[kind.index()].fetch_add(1, Ordering::Relaxed) + 1;
        let c = &self.counts[kind.index()];
        c.produced_batches.fetch_add(1, Ordering::Relaxed);
        c.produced_rows.fetch_add(rows, Ordering::Relaxed);
        let msg = Msg {
            kind,
            seq,
            rows,
            payload,
        };
        {
            let mut q = self.lock();
            while q.bytes + msg.payload.len() > self.limit {
                let Some(old) = q.msgs.pop_front() else { break };
                q.bytes -= old.payload.len();
                self.dropped(&old);
            }
            q.bytes += msg.payload.len();
            q.msgs.push_back(msg);
        }
        self.notify.notify_one();
    }

    fn dropped(&self, m: &Msg) {
        let c = &self.counts[m.kind.index()];
        c.dropped_batches.fetch_add(1, Ordering::Relaxed);
        c.dropped_rows.fetch_add(m.rows, Ordering::Relaxed);
    }

    /// The oldest batch, if any.
    pub fn pop(&self) -> Option<Msg> {
        let mut q = self.lock();
        let m = q.msgs.pop_front()?;
        q.bytes -= m.payload.len();
        Some(m)
    }

    /// A batch whose publish failed goes back to the front, to be retried first.
    pub fn retry(&self, m: Msg) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut q = self.lock();
        if q.bytes + m.payload.len() > self.limit {
            // No room for it any more: it is the oldest, so it is the one dropped.
            self.dropped(&m);
            return;
        }
        q.bytes += m.payload.len();
        q.msgs.push_front(m);
    }

    /// A batch the server will never take (larger than its max_payload): dropped,
    /// counted, not retried.
    pub fn retry_never(&self, m: Msg) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.dropped(&m);
    }

    pub fn published(&self, m: &Msg) {
        let c = &self.counts[m.kind.index()];
        c.published_batches.fetch_add(1, Ordering::Relaxed);
        c.published_rows.fetch_add(m.rows, Ordering::Relaxed);
        c.published_bytes
            .fetch_add(m.payload.len() as u64, Ordering::Relaxed);
    }

    pub fn buffered_bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.lock().msgs.is_empty()
    }

    /// No more batches will come (end of a replay).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Resolves when a batch was pushed or the outbox closed since the last wait.
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    pub fn count(&self, kind: Kind) -> &Counts {
        &self.counts[kind.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(c: &Counts) -> [u64; 6] {
        [
            c.produced_batches.load(Ordering::Relaxed),
            c.produced_rows.load(Ordering::Relaxed),
            c.published_batches.load(Ordering::Relaxed),
            c.published_rows.load(Ordering::Relaxed),
            c.dropped_batches.load(Ordering::Relaxed),
            c.dropped_rows.load(Ordering::Relaxed),
        ]
    }

    #[test]
    fn full_outbox_drops_the_oldest_and_counts_them() {
        let o = Outbox::new(25);
        for rows in 1..=4 {
            o.push(Kind::Entries, rows, Bytes::from(vec![0u8; 10]));
        }
        // Four batches of 10 bytes in 25: the first two were dropped.
        assert_eq!(o.buffered_bytes(), 20);
        let first = o.pop().unwrap();
        assert_eq!((first.seq, first.rows), (3, 3));
        o.published(&first);
        let second = o.pop().unwrap();
        o.retry(second.clone());
        assert_eq!(
            o.pop().unwrap().seq,
            second.seq,
            "a retried batch goes first"
        );
        o.published(&second);
        let [produced_b, produced_r, pub_b, pub_r, drop_b, drop_r] = load(o.count(Kind::Entries));
        assert_eq!((produced_b, produced_r), (4, 10));
        assert_eq!((pub_b, pub_r), (2, 7));
        assert_eq!((drop_b, drop_r), (2, 3));
        assert_eq!(pub_r + drop_r, produced_r);
        assert_eq!(o.failures.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn sequences_are_per_kind() {
        let o = Outbox::new(1 << 20);
        o.push(Kind::Entries, 1, Bytes::from_static(b"a"));
        o.push(Kind::Flows, 1, Bytes::from_static(b"b"));
        o.push(Kind::Entries, 1, Bytes::from_static(b"c"));
        let seqs: Vec<_> = std::iter::from_fn(|| o.pop())
            .map(|m| (m.kind, m.seq))
            .collect();
        assert_eq!(
            seqs,
            vec![(Kind::Entries, 1), (Kind::Flows, 1), (Kind::Entries, 2)]
        );
    }
}
