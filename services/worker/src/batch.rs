//! Rows into Arrow batches into Arrow IPC bytes, flushed by row count, by size or after
//! a short linger.

use std::time::Instant;

use arrow_array::RecordBatch;
use bytes::Bytes;
use reef_schema::ipc::Compression;
use reef_schema::{Entry, EntryBatchBuilder, FlowBatchBuilder, FlowRecord};

use crate::config::BatchLimits;
use crate::outbox::{Kind, Outbox};

/// A builder of one record type.
pub trait Rows {
    type Row;
    fn push(&mut self, row: &Self::Row);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn finish(&mut self) -> RecordBatch;
    /// About how many encoded bytes a row takes, to flush before a batch is too big.
    fn estimate(row: &Self::Row) -> usize;
}

impl Rows for EntryBatchBuilder {
    type Row = Entry;
    fn push(&mut self, row: &Entry) {
        EntryBatchBuilder::push(self, row)
    }
    fn len(&self) -> usize {
        EntryBatchBuilder::len(self)
    }
    fn finish(&mut self) -> RecordBatch {
        EntryBatchBuilder::finish(self)
    }
    fn estimate(e: &Entry) -> usize {
        let headers = |h: &Option<reef_schema::Headers>| {
            h.as_ref()
                .map_or(0, |h| h.iter().map(|(n, v)| n.len() + v.len() + 8).sum())
        };
        let body = |b: &Option<reef_schema::Body>| b.as_ref().map_or(0, |b| b.0.len());
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        // Fixed-width columns and offsets of ~90 columns, then what varies.
        400 + headers(&e.request_headers)
            + headers(&e.response_headers)
            + body(&e.request_body)
            + body(&e.response_body)
            + text(&e.path)
            + text(&e.summary)
    }
}

impl Rows for FlowBatchBuilder {
    type Row = FlowRecord;
    fn push(&mut self, row: &FlowRecord) {
        FlowBatchBuilder::push(self, row)
    }
    fn len(&self) -> usize {
        FlowBatchBuilder::len(self)
    }
    fn finish(&mut self) -> RecordBatch {
        FlowBatchBuilder::finish(self)
    }
    fn estimate(_: &FlowRecord) -> usize {
        200
    }
}

/// The most a compressed batch is expected to shrink when sizing the next one: beyond
/// it, a batch of incompressible rows would be encoded, found too big, and split.
pub const MAX_EXPECTED_COMPRESSION: f64 = 8.0;

pub struct Batcher<B: Rows> {
    builder: B,
    kind: Kind,
    limits: BatchLimits,
    estimated: usize,
    first_at: Option<Instant>,
    /// Uncompressed estimate over encoded bytes, as the last batch turned out (with a
    /// margin): how far past `limits.bytes` the estimate of the next may grow.
    shrink: f64,
}

impl<B: Rows> Batcher<B> {
    pub fn new(builder: B, kind: Kind, limits: BatchLimits) -> Self {
        Batcher {
            builder,
            kind,
            limits,
            estimated: 0,
            first_at: None,
            shrink: 1.0,
        }
    }

    pub fn push(&mut self, row: &B::Row, now: Instant, outbox: &Outbox) {
        if self.builder.len() == 0 {
            self.first_at = Some(now);
        }
        self.builder.push(row);
        self.estimated += B::estimate(row);
        if self.builder.len() >= self.limits.rows
            || self.estimated as f64 >= self.limits.bytes as f64 * self.shrink
        {
            self.flush(outbox);
        }
    }

    /// The linger has passed since the first row waiting.
    pub fn due(&self, now: Instant) -> bool {
        self.first_at
            .is_some_and(|t| now.duration_since(t) >= self.limits.linger)
    }

    /// When the first waiting row will be due, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.first_at.map(|t| t + self.limits.linger)
    }

    pub fn flush(&mut self, outbox: &Outbox) {
        if self.builder.len() == 0 {
            return;
        }
        let batch = self.builder.finish();
        let estimated = std::mem::take(&mut self.estimated);
        self.first_at = None;
        let parts = encode_within(&batch, self.limits.bytes, self.limits.compression);
        let encoded: usize = parts.iter().map(|(_, b)| b.len()).sum();
        if parts.len() == 1 && encoded > 0 {
            // 0.8: room for the next batch to compress a little worse than this one.
            self.shrink =
                (estimated as f64 / encoded as f64 * 0.8).clamp(1.0, MAX_EXPECTED_COMPRESSION);
        } else if parts.len() > 1 {
            self.shrink = (self.shrink / 2.0).max(1.0);
        }
        for (rows, bytes) in parts {
            outbox.push(self.kind, rows, Bytes::from(bytes));
        }
    }
}

/// Encodes a batch, halving it until every part is at most `max` bytes (a single row
/// is sent whatever its size: the publisher drops what the server refuses, counted).
pub fn encode_within(
    batch: &RecordBatch,
    max: usize,
    compression: Compression,
) -> Vec<(u64, Vec<u8>)> {
    let bytes = match reef_schema::ipc::encode(batch, compression) {
        Ok(b) => b,
        Err(e) => {
            // Builders produce valid batches; an encoding failure is a bug, not data.
            tracing::error!(error = %e, "cannot encode a batch; dropped");
            return Vec::new();
        }
    };
    let rows = batch.num_rows();
    if bytes.len() <= max || rows <= 1 {
        return vec![(rows as u64, bytes)];
    }
    let half = rows / 2;
    let mut out = encode_within(&batch.slice(0, half), max, compression);
    out.extend(encode_within(
        &batch.slice(half, rows - half),
        max,
        compression,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(n: usize) -> Entry {
        Entry {
            id: format!("e-{n}"),
            method: Some("GET".into()),
            path: Some(format!("/{n}")),
            response_body: Some(reef_schema::Body(vec![b'x'; 1000])),
            ..Entry::default()
        }
    }

    fn drain(o: &Outbox) -> Vec<Vec<Entry>> {
        std::iter::from_fn(|| o.pop())
            .map(|m| {
                let batches = reef_schema::ipc::decode(&m.payload).unwrap();
                batches
                    .iter()
                    .flat_map(|b| reef_schema::entries_from_batch(b).unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn flushes_by_rows_by_size_and_by_linger() {
        let o = Outbox::new(1 << 30);
        let limits = BatchLimits {
            rows: 10,
            bytes: 1 << 20,
            linger: Duration::from_millis(20),
            compression: Compression::Lz4,
        };
        let mut b = Batcher::new(EntryBatchBuilder::with_capacity(10), Kind::Entries, limits);
        let t0 = Instant::now();
        for i in 0..25 {
            b.push(&entry(i), t0, &o);
        }
        assert!(!b.due(t0));
        assert!(b.due(t0 + Duration::from_millis(25)));
        b.flush(&o);
        let sizes: Vec<usize> = drain(&o).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);

        let small = BatchLimits {
            rows: 1000,
            bytes: 5_000,
            linger: Duration::from_secs(1),
            compression: Compression::None,
        };
        let mut b = Batcher::new(EntryBatchBuilder::with_capacity(10), Kind::Entries, small);
        for i in 0..12 {
            b.push(&entry(i), t0, &o);
        }
        b.flush(&o);
        let got = drain(&o);
        assert!(got.len() >= 3, "size-limited batches: {}", got.len());
        let all: Vec<String> = got.into_iter().flatten().map(|e| e.id).collect();
        assert_eq!(all, (0..12).map(|i| format!("e-{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn oversized_batches_are_split_in_order() {
        let entries: Vec<Entry> = (0..40).map(entry).collect();
        let batch = Entry::batch(&entries);
        let parts = encode_within(&batch, 12_000, Compression::None);
        assert!(parts.len() > 2);
        assert!(
            parts
                .iter()
                .all(|(rows, b)| b.len() <= 12_000 || *rows == 1)
        );
        // An empty batch is mostly the schema message every IPC stream starts with.
        let empty = reef_schema::ipc::encode(&Entry::batch(&[]), Compression::None).unwrap();
        println!("schema overhead: {} bytes", empty.len());
        assert_eq!(parts.iter().map(|(r, _)| r).sum::<u64>(), 40);
        let back: Vec<Entry> = parts
            .iter()
            .flat_map(|(_, b)| {
                let batches = reef_schema::ipc::decode(b).unwrap();
                reef_schema::entries_from_batch(&batches[0]).unwrap()
            })
            .collect();
        assert_eq!(back, entries);
    }
}
