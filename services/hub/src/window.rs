//! The bounded in-memory window of recent batches that live subscriptions, `/api/sql`,
//! the service map and the schema's frequent values read.
//!
//! The window holds every stored message from `covered_from` on, in sequence order
//! (ingest reads the stream with one ordered consumer), so a subscription at sequence
//! `n >= covered_from` can be served from memory with no gap. Older positions are read
//! from the bus.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use crate::batch::Batch;

/// Default byte limit of the window: the Arrow data of the batches it holds and their
/// rendered summaries.
pub const DEFAULT_WINDOW_BYTES: usize = 256 << 20;

#[derive(Default)]
struct Inner {
    batches: VecDeque<Arc<Batch>>,
    bytes: usize,
    entries: usize,
    covered_from: Option<u64>,
}

pub struct Window {
    inner: RwLock<Inner>,
    max_bytes: usize,
    /// Bumped on every change, so waiting readers wake.
    changed: watch::Sender<u64>,
}

/// A snapshot of the window's size.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct WindowStats {
    pub batches: usize,
    pub entries: usize,
    pub bytes: usize,
    pub max_bytes: usize,
    /// Store time of the oldest and newest batch (ns).
    pub oldest_ns: Option<i64>,
    pub newest_ns: Option<i64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
}

impl Window {
    pub fn new(max_bytes: usize) -> Window {
        Window {
            inner: RwLock::new(Inner::default()),
            max_bytes,
            changed: watch::channel(0).0,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Waits for the next change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Ingest starts following the stream: everything stored from `seq` on will come.
    pub fn start_covering(&self, seq: u64) {
        let mut w = self.write();
        let from = match w.batches.back() {
            // Ingest resumed right after the newest batch: still contiguous.
            Some(b) if b.seq + 1 >= seq => w.batches.front().map_or(seq, |f| f.seq),
            Some(_) => {
                w.batches.clear();
                w.bytes = 0;
                w.entries = 0;
                seq
            }
            None => seq,
        };
        w.covered_from = Some(from);
        drop(w);
        self.bump();
    }

    /// Ingest stopped: the window keeps its batches but no longer promises what follows.
    pub fn stop_covering(&self) {
        self.write().covered_from = None;
        self.bump();
    }

    /// Messages from `from_seq` to `to_seq` were removed before ingest read them.
    pub fn skipped(&self, to_seq: u64) {
        let mut w = self.write();
        if let Some(c) = w.covered_from
            && c <= to_seq
        {
            w.covered_from = Some(to_seq + 1);
        }
    }

    /// Appends the next batch (sequences increase) and evicts the oldest past the limit.
    pub fn push(&self, batch: Arc<Batch>) {
        // Live readers render every batch anyway; doing it here, outside the lock, lets
        // the limit count the summaries (a batch that fails to render keeps its error,
        // which readers report).
        let _ = batch.summaries();
        let size = batch.resident_bytes();
        let mut w = self.write();
        if w.batches.back().is_some_and(|b| b.seq >= batch.seq) {
            return;
        }
        if w.covered_from.is_none_or(|c| c > batch.seq) {
            // The first batch of a read that began before the promised position.
            w.covered_from = Some(batch.seq);
        }
        w.bytes += size;
        w.entries += batch.rows();
        w.batches.push_back(batch);
        while w.bytes > self.max_bytes && w.batches.len() > 1 {
            if let Some(old) = w.batches.pop_front() {
                // The same as when it came: its summaries were rendered before.
                w.bytes -= old.resident_bytes();
                w.entries -= old.rows();
                w.covered_from = Some(old.seq + 1);
            }
        }
        drop(w);
        self.bump();
    }

    /// Batches with sequence `>= seq`, or None when the window does not cover `seq`
    /// (read it from the bus).
    pub fn from_seq(&self, seq: u64, max: usize) -> Option<Vec<Arc<Batch>>> {
        let w = self.read();
        let covered = w.covered_from?;
        if seq < covered {
            return None;
        }
        let start = w.batches.partition_point(|b| b.seq < seq);
        Some(w.batches.iter().skip(start).take(max).cloned().collect())
    }

    /// The first sequence stored at or after `time_ns`, when the window can tell: it
    /// covers a stretch that begins before that time.
    pub fn seq_at_time(&self, time_ns: i64) -> Option<u64> {
        let w = self.read();
        let covered = w.covered_from?;
        let first = w.batches.front()?;
        if first.seq != covered || first.time_ns > time_ns {
            return None;
        }
        let i = w.batches.partition_point(|b| b.time_ns < time_ns);
        Some(match w.batches.get(i) {
            Some(b) => b.seq,
            None => w.batches.back().map_or(covered, |b| b.seq + 1),
        })
    }

    /// Every batch in the window, oldest first.
    pub fn all(&self) -> Vec<Arc<Batch>> {
        self.read().batches.iter().cloned().collect()
    }

    /// The batch holding `seq`.
    pub fn get(&self, seq: u64) -> Option<Arc<Batch>> {
        let w = self.read();
        let i = w.batches.partition_point(|b| b.seq < seq);
        w.batches.get(i).filter(|b| b.seq == seq).cloned()
    }

    pub fn stats(&self) -> WindowStats {
        let w = self.read();
        WindowStats {
            batches: w.batches.len(),
            entries: w.entries,
            bytes: w.bytes,
            max_bytes: self.max_bytes,
            oldest_ns: w.batches.front().map(|b| b.time_ns),
            newest_ns: w.batches.back().map(|b| b.time_ns),
            first_seq: w.batches.front().map(|b| b.seq),
            last_seq: w.batches.back().map(|b| b.seq),
        }
    }

    pub fn covered_from(&self) -> Option<u64> {
        self.read().covered_from
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reef_schema::Entry;

    fn batch(seq: u64, rows: usize) -> Arc<Batch> {
        let e = Entry {
            id: format!("e{seq}"),
            ..Entry::default()
        };
        Arc::new(Batch::new(
            seq,
            seq as i64 * 1000,
            Entry::batch(&vec![e; rows]),
        ))
    }

    #[test]
    fn covers_from_the_promised_sequence_and_evicts_by_bytes() {
        let one = {
            let b = batch(1, 10);
            b.summaries().unwrap();
            b.resident_bytes()
        };
        assert!(one > batch(1, 10).bytes, "summaries are counted too");
        let w = Window::new(one * 3);
        assert!(w.from_seq(1, 10).is_none(), "nothing promised yet");
        w.start_covering(5);
        assert_eq!(w.from_seq(5, 10).unwrap().len(), 0, "covered, nothing yet");
        assert!(w.from_seq(4, 10).is_none());
        // The read began at an earlier time and delivers seq 3 first.
        w.push(batch(3, 10));
        w.push(batch(4, 10));
        w.push(batch(5, 10));
        assert_eq!(w.covered_from(), Some(3));
        let got: Vec<u64> = w.from_seq(4, 10).unwrap().iter().map(|b| b.seq).collect();
        assert_eq!(got, vec![4, 5]);
        w.push(batch(6, 10));
        assert_eq!(w.covered_from(), Some(4), "3 evicted");
        assert!(w.from_seq(3, 10).is_none());
        assert_eq!(w.stats().entries, 30);
        assert_eq!(w.seq_at_time(5000), Some(5));
        assert_eq!(w.seq_at_time(5001), Some(6));
        assert_eq!(w.seq_at_time(9000), Some(7));
        assert_eq!(w.seq_at_time(1000), None, "before the window");
        assert_eq!(w.get(5).unwrap().seq, 5);
        assert!(w.get(3).is_none());
        // Stopping keeps the data but promises nothing; resuming right after is contiguous.
        w.stop_covering();
        assert!(w.from_seq(5, 10).is_none());
        w.start_covering(7);
        assert_eq!(w.covered_from(), Some(4));
        // A restart with a hole clears the window.
        w.start_covering(20);
        assert_eq!(w.stats().batches, 0);
        assert_eq!(w.covered_from(), Some(20));
    }
}
