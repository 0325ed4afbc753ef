//! IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and time.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::Fragment;

/// Largest datagram payload reassembled (the 16-bit IP length bounds real ones).
pub const MAX_DATAGRAM_BYTES: usize = 65_535;
/// Datagrams waiting for fragments at once; beyond this new ones are dropped.
pub const MAX_PENDING_DATAGRAMS: usize = 4096;
/// Bytes held by all waiting datagrams together.
pub const MAX_PENDING_BYTES: usize = 32 * 1024 * 1024;
/// A datagram whose fragments do not all arrive within this capture time is dropped
/// (Linux's default ipfrag_time).
pub const FRAGMENT_TIMEOUT_NS: i64 = 30_000_000_000;

/// Why fragments were thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragDrop {
    /// Not all fragments arrived within [`FRAGMENT_TIMEOUT_NS`].
    Timeout,
    /// [`MAX_PENDING_DATAGRAMS`] were already waiting.
    TooManyDatagrams,
    /// [`MAX_PENDING_BYTES`] were already held.
    MemoryLimit,
    /// The fragment reached beyond [`MAX_DATAGRAM_BYTES`].
    TooLarge,
    /// Fragments disagreed about where the datagram ends.
    Inconsistent,
}

impl FragDrop {
    pub const ALL: [FragDrop; 5] = [
        FragDrop::Timeout,
        FragDrop::TooManyDatagrams,
        FragDrop::MemoryLimit,
        FragDrop::TooLarge,
        FragDrop::Inconsistent,
    ];

    pub const fn reason(self) -> &'static str {
        match self {
            FragDrop::Timeout => "fragment_timeout",
            FragDrop::TooManyDatagrams => "fragment_too_many_datagrams",
            FragDrop::MemoryLimit => "fragment_memory_limit",
            FragDrop::TooLarge => "fragment_too_large",
            FragDrop::Inconsistent => "fragment_inconsistent",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct FragStats {
    pub fragments: u64,
    pub reassembled: u64,
    /// Datagrams (not fragments) dropped, by [`FragDrop::ALL`] index.
    pub dropped: [u64; 5],
}

impl FragStats {
    fn drop(&mut self, why: FragDrop) {
        let i = FragDrop::ALL.iter().position(|d| *d == why).unwrap_or(0);
        self.dropped[i] += 1;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    id: u32,
}

#[derive(Debug)]
struct Pending {
    first_ts: i64,
    data: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
}

impl Pending {
    /// Copies the parts of `bytes` that fill holes: the first copy of a byte wins, as
    /// on most stacks, so a later overlapping fragment cannot rewrite data.
    fn insert(&mut self, start: usize, bytes: &[u8]) {
        let end = start + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let mut pos = start;
        let mut holes = Vec::new();
        for &(s, e) in &self.have {
            if e <= pos {
                continue;
            }
            if s >= end {
                break;
            }
            if s > pos {
                holes.push((pos, s));
            }
            pos = pos.max(e);
        }
        if pos < end {
            holes.push((pos, end));
        }
        for (s, e) in holes {
            self.data[s..e].copy_from_slice(&bytes[s - start..e - start]);
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }

    fn complete(&self) -> bool {
        matches!(self.total, Some(t) if self.have.len() == 1 && self.have[0] == (0, t))
    }
}

/// Puts IP fragments back together. Memory is bounded by the `MAX_*` constants; every
/// datagram given up on is counted in [`FragStats::dropped`].
#[derive(Debug, Default)]
pub struct Defragmenter {
    pending: HashMap<Key, Pending>,
    bytes: usize,
    pub stats: FragStats,
}

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one fragment; returns the whole payload once every fragment is in.
    pub fn push(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        frag: Fragment,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        let key = Key {
            src,
            dst,
            protocol,
            id: frag.id,
        };
        let start = frag.offset as usize;
        let end = start + data.len();
        if end > MAX_DATAGRAM_BYTES {
            if let Some(p) = self.pending.remove(&key) {
                self.bytes -= p.data.len();
            }
            self.stats.drop(FragDrop::TooLarge);
            return None;
        }
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= MAX_PENDING_DATAGRAMS {
                self.stats.drop(FragDrop::TooManyDatagrams);
                return None;
            }
            self.pending.insert(
                key.clone(),
                Pending {
                    first_ts: ts,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                },
            );
        }
        let p = self.pending.get_mut(&key)?;
        let grow = end.saturating_sub(p.data.len());
        if self.bytes + grow > MAX_PENDING_BYTES {
            self.bytes -= p.data.len();
            self.pending.remove(&key);
            self.stats.drop(FragDrop::MemoryLimit);
            return None;
        }
        let inconsistent = match (frag.more, p.total) {
            (false, Some(t)) => t != end,
            (false, None) => p.have.last().is_some_and(|&(_, e)| e > end),
            (true, Some(t)) => end > t,
            (true, None) => false,
        };
        if inconsistent {
            self.bytes -= p.data.len();
            self.pending.remove(&key);
            self.stats.drop(FragDrop::Inconsistent);
            return None;
        }
        if !frag.more {
            p.total = Some(end);
        }
        self.bytes += grow;
        p.insert(start, data);
        if p.complete() {
            let done = self.pending.remove(&key)?;
            self.bytes -= done.data.len();
            self.stats.reassembled += 1;
            let mut data = done.data;
            data.truncate(done.total.unwrap_or(0));
            return Some(data);
        }
        None
    }

    /// Drops datagrams that waited longer than [`FRAGMENT_TIMEOUT_NS`] before `now`.
    pub fn expire(&mut self, now: i64) {
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|_, p| {
            let keep = now.saturating_sub(p.first_ts) <= FRAGMENT_TIMEOUT_NS;
            if !keep {
                freed += p.data.len();
            }
            keep
        });
        self.bytes -= freed;
        for _ in 0..before - self.pending.len() {
            self.stats.drop(FragDrop::Timeout);
        }
    }

    /// Gives up on every waiting datagram (end of capture): they count as timed out.
    pub fn finish(&mut self) {
        self.expire(i64::MAX);
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }
}
