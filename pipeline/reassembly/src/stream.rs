//! One direction of a TCP connection: turns segments in any order into an ordered byte
//! stream with explicit gaps.

use std::collections::BTreeMap;

/// What a [`Stream`] hands on, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data {
        offset: u64,
        data: &'a [u8],
        ts: i64,
        /// The segment's acknowledgment number in the other direction's offsets.
        peer_ack: Option<u64>,
    },
    /// `len` bytes at `offset` were sent but are not in the capture.
    Gap { offset: u64, len: u64, ts: i64 },
}

#[derive(Debug)]
struct Held {
    data: Vec<u8>,
    /// Bytes after `data` that the segment carried but the capture cut off.
    missing: u32,
    ts: i64,
    peer_ack: Option<u64>,
}

impl Held {
    fn end(&self, start: u64) -> u64 {
        start + self.data.len() as u64 + u64::from(self.missing)
    }
}

/// Why bytes were not delivered as they arrived.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    /// Bytes that had been delivered already (retransmissions and overlaps).
    pub duplicate: u64,
    /// Bytes held back because earlier data is missing.
    pub held: u64,
    /// Bytes that could not be held: the direction's limit was reached.
    pub refused: u64,
    /// True when it was the shared budget, not the direction's limit, that ran out.
    pub refused_by_memory: bool,
    /// Bytes ignored because they lay implausibly far ahead of the stream.
    pub out_of_window: u64,
}

/// A segment this far ahead of the next expected byte is not part of this stream
/// (a stale or corrupt packet), not a gap to jump over.
pub const MAX_JUMP: u64 = 1 << 30;

/// One direction's reassembly state. Offsets are relative to the first byte of the
/// stream (or of the capture, for a connection seen mid-way).
#[derive(Debug, Default)]
pub struct Stream {
    /// Raw sequence number of offset 0, once known.
    base: Option<u32>,
    next: u64,
    held: BTreeMap<u64, Held>,
    held_bytes: usize,
    /// Bytes no longer held that are still to be returned to the shared budget.
    freed: usize,
    fin_at: Option<u64>,
    /// Highest offset the peer acknowledged; bytes below it were received by the peer.
    acked_to: u64,
    /// A peer acknowledgment seen before this direction's first segment: where the
    /// stream most likely starts.
    base_hint: Option<u32>,
    pub(crate) saw_syn: bool,
    /// Bytes handed on as gaps.
    gapped: u64,
}

impl Stream {
    pub fn base(&self) -> Option<u32> {
        self.base
    }

    pub fn next_offset(&self) -> u64 {
        self.next
    }

    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Bytes of this direction the capture missed, as handed on so far.
    pub fn gap_bytes(&self) -> u64 {
        self.gapped
    }

    pub fn fin_at(&self) -> Option<u64> {
        self.fin_at
    }

    /// True once every byte up to the FIN has been handed on.
    pub fn finished(&self) -> bool {
        self.fin_at.is_some_and(|f| self.next >= f)
    }

    /// Sets offset 0 to the byte after the SYN.
    pub fn set_isn(&mut self, isn: u32) {
        if self.base.is_none() || self.next == 0 && self.held.is_empty() {
            self.base = Some(isn.wrapping_add(1));
        }
        self.saw_syn = true;
    }

    pub fn hint_base(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base_hint = Some(seq);
        }
    }

    /// The offset of a raw sequence number, unwrapped around the current position so
    /// that streams longer than 4 GiB keep counting.
    pub fn offset_of(&self, seq: u32) -> Option<i64> {
        let base = self.base?;
        let anchor = base.wrapping_add(self.next as u32);
        let delta = seq.wrapping_sub(anchor) as i32;
        Some(self.next as i64 + i64::from(delta))
    }

    /// Where the stream starts for a connection whose SYN was not seen.
    fn adopt_base(&mut self, seq: u32, max_hold: usize) {
        if self.base.is_some() {
            return;
        }
        let base = match self.base_hint {
            // The peer had acknowledged bytes up to `hint`: a segment a little after it
            // means earlier bytes are missing or still to come.
            Some(hint) if (seq.wrapping_sub(hint) as usize) <= max_hold => hint,
            _ => seq,
        };
        self.base = Some(base);
    }

    /// Adds a segment's payload. `missing` bytes after `data` were cut off by the capture.
    #[allow(clippy::too_many_arguments)]
    pub fn push<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        data: &[u8],
        missing: u32,
        ts: i64,
        peer_ack: Option<u64>,
        max_hold: usize,
        budget: &mut usize,
        out: &mut F,
    ) -> PushOutcome {
        let mut outcome = PushOutcome::default();
        let len = data.len() as u64 + u64::from(missing);
        if len == 0 {
            return outcome;
        }
        self.adopt_base(seq, max_hold);
        let Some(start) = self.offset_of(seq) else {
            return outcome;
        };
        let end = start + len as i64;
        if end <= self.next as i64 {
            outcome.duplicate = len;
            return outcome;
        }
        // Trim what was delivered already.
        let skip = (self.next as i64 - start).max(0) as u64;
        outcome.duplicate = skip;
        let start = start.max(self.next as i64) as u64;
        let (data, missing) = if skip as usize <= data.len() {
            (&data[skip as usize..], missing)
        } else {
            let cut = skip - data.len() as u64;
            (&data[data.len()..], missing - cut as u32)
        };

        if start == self.next {
            self.deliver(start, data, missing, ts, peer_ack, out);
            self.drain(out);
        } else {
            let gap = start - self.next;
            if gap > MAX_JUMP {
                outcome.out_of_window = len;
                return outcome;
            }
            if gap as usize > max_hold {
                // Too far ahead to wait for: whatever is missing is lost.
                self.force_to(start, ts, out);
                self.deliver_after(start, data, missing, ts, peer_ack, out);
                self.drain(out);
                outcome.refused = len;
            } else {
                let (held, overlap, refused) =
                    self.hold(start, data, missing, ts, peer_ack, max_hold, budget);
                outcome.held = held;
                outcome.duplicate += overlap;
                outcome.refused = refused;
                outcome.refused_by_memory = refused > 0 && self.held_bytes + data.len() <= max_hold;
                if refused > 0 {
                    // Out of room: give up on the hole and move on.
                    self.force_to(start, ts, out);
                    self.deliver_after(start, data, missing, ts, peer_ack, out);
                    self.drain(out);
                    self.release(budget);
                }
            }
        }
        self.check_acked(ts, out);
        self.release(budget);
        outcome
    }

    /// Returns bytes no longer held to the shared budget.
    fn release(&mut self, budget: &mut usize) {
        *budget += std::mem::take(&mut self.freed);
    }

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &mut self,
        start: u64,
        data: &[u8],
        missing: u32,
        ts: i64,
        peer_ack: Option<u64>,
        max_hold: usize,
        budget: &mut usize,
    ) -> (u64, u64, u64) {
        let end = start + data.len() as u64 + u64::from(missing);
        // Pieces of [start, end) not covered by held segments: the first copy wins.
        let mut pieces = Vec::new();
        let mut pos = start;
        for (&s, h) in self.held.range(..end) {
            let e = h.end(s);
            if e <= pos {
                continue;
            }
            if s > pos {
                pieces.push((pos, s.min(end)));
            }
            pos = pos.max(e);
            if pos >= end {
                break;
            }
        }
        if pos < end {
            pieces.push((pos, end));
        }
        let mut held = 0;
        let data_end = start + data.len() as u64;
        for (s, e) in pieces {
            let d_s = s.min(data_end);
            let d_e = e.min(data_end);
            let bytes = &data[(d_s - start) as usize..(d_e - start) as usize];
            if self.held_bytes + bytes.len() > max_hold || bytes.len() > *budget {
                return (held, 0, end - s);
            }
            *budget -= bytes.len();
            self.held_bytes += bytes.len();
            held += e - s;
            self.held.insert(
                s,
                Held {
                    data: bytes.to_vec(),
                    missing: (e - d_e) as u32,
                    ts,
                    peer_ack,
                },
            );
        }
        (held, end - start - held, 0)
    }

    fn deliver<F: FnMut(Chunk<'_>)>(
        &mut self,
        start: u64,
        data: &[u8],
        missing: u32,
        ts: i64,
        peer_ack: Option<u64>,
        out: &mut F,
    ) {
        debug_assert_eq!(start, self.next);
        if !data.is_empty() {
            out(Chunk::Data {
                offset: start,
                data,
                ts,
                peer_ack,
            });
        }
        if missing > 0 {
            self.gapped += u64::from(missing);
            out(Chunk::Gap {
                offset: start + data.len() as u64,
                len: u64::from(missing),
                ts,
            });
        }
        self.next = start + data.len() as u64 + u64::from(missing);
    }

    /// Delivers what of a segment starting at `start` is not delivered yet: forcing a
    /// gap may have handed on held bytes that overlap it (found by the reassembly
    /// fuzzer).
    fn deliver_after<F: FnMut(Chunk<'_>)>(
        &mut self,
        start: u64,
        data: &[u8],
        missing: u32,
        ts: i64,
        peer_ack: Option<u64>,
        out: &mut F,
    ) {
        let skip = self.next.saturating_sub(start);
        if skip >= data.len() as u64 + u64::from(missing) {
            return;
        }
        let (data, missing) = if skip as usize <= data.len() {
            (&data[skip as usize..], missing)
        } else {
            (
                &data[data.len()..],
                missing - (skip - data.len() as u64) as u32,
            )
        };
        let next = self.next;
        self.deliver(next, data, missing, ts, peer_ack, out);
    }

    /// Hands on held segments that are now next in line.
    fn drain<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        while let Some(entry) = self.held.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let h = entry.remove();
            self.held_bytes -= h.data.len();
            self.freed += h.data.len();
            let end = h.end(start);
            if end <= self.next {
                continue;
            }
            let skip = (self.next - start) as usize;
            let (data, missing) = if skip <= h.data.len() {
                (&h.data[skip..], h.missing)
            } else {
                (
                    &h.data[h.data.len()..],
                    h.missing - (skip - h.data.len()) as u32,
                )
            };
            let next = self.next;
            self.deliver(next, data, missing, h.ts, h.peer_ack, out);
        }
    }

    /// Declares everything before `offset` that was not delivered lost.
    fn force_to<F: FnMut(Chunk<'_>)>(&mut self, offset: u64, ts: i64, out: &mut F) {
        while self.next < offset {
            match self.held.first_key_value() {
                Some((&s, _)) if s <= self.next => self.drain(out),
                Some((&s, _)) if s < offset => {
                    self.gapped += s - self.next;
                    out(Chunk::Gap {
                        offset: self.next,
                        len: s - self.next,
                        ts,
                    });
                    self.next = s;
                    self.drain(out);
                }
                _ => {
                    self.gapped += offset - self.next;
                    out(Chunk::Gap {
                        offset: self.next,
                        len: offset - self.next,
                        ts,
                    });
                    self.next = offset;
                }
            }
        }
    }

    /// The peer acknowledged bytes up to `offset`.
    pub fn peer_acked<F: FnMut(Chunk<'_>)>(
        &mut self,
        offset: u64,
        ts: i64,
        budget: &mut usize,
        out: &mut F,
    ) {
        if offset > self.acked_to {
            self.acked_to = offset;
            self.check_acked(ts, out);
            self.release(budget);
        }
    }

    /// Bytes the peer acknowledged but the capture never had, with later data waiting
    /// behind them, are lost: hand on the gap and what follows.
    fn check_acked<F: FnMut(Chunk<'_>)>(&mut self, ts: i64, out: &mut F) {
        let Some((&first, _)) = self.held.first_key_value() else {
            return;
        };
        if self.acked_to > self.next && first > self.next {
            let to = self.acked_to.min(first);
            self.force_to(to, ts, out);
            self.drain(out);
        }
    }

    pub fn set_fin(&mut self, seq: u32, payload_len: usize) {
        if let Some(start) = self.offset_of(seq)
            && start >= 0
        {
            let at = start as u64 + payload_len as u64;
            self.fin_at = Some(self.fin_at.map_or(at, |f| f.min(at)));
        }
    }

    /// Drops whatever is still held (bytes past a FIN, say) and returns it to the budget.
    pub fn discard(&mut self, budget: &mut usize) {
        let held: usize = self.held.values().map(|h| h.data.len()).sum();
        self.held.clear();
        self.held_bytes = 0;
        self.freed += held;
        self.release(budget);
    }

    /// The connection is over: hand on everything held, with gaps for the holes, and a
    /// gap for acknowledged bytes that never showed up.
    pub fn flush<F: FnMut(Chunk<'_>)>(&mut self, ts: i64, budget: &mut usize, out: &mut F) {
        if let Some((&last, h)) = self.held.last_key_value() {
            let end = h.end(last);
            self.force_to(end, ts, out);
        }
        let mut tail = self.acked_to;
        if let Some(f) = self.fin_at {
            tail = tail.min(f);
        }
        if tail > self.next && self.base.is_some() {
            self.force_to(tail, ts, out);
        }
        self.release(budget);
    }
}
