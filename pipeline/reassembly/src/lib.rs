//! TCP reassembly: segments in capture order in, ordered byte streams per connection
//! and direction out, with every missing byte reported as a gap.
//!
//! Handles out-of-order segments, retransmissions and overlaps (the first copy wins),
//! connections whose handshake was not captured, FIN and RST, sequence wrap-around,
//! capture gaps (bytes the peer acknowledged that never showed up), idle timeouts, and
//! bounded memory: named limits per direction and in total, and every byte not
//! delivered in order is counted by reason in [`ReassemblyStats`].
//!
//! Each connection carries an application state `A` (the dissector); events are handed
//! to a callback together with it, so no event is queued or copied.

mod stream;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use reef_packet::{TcpSegment, tcp_flags};
use rustc_hash::FxHasher;

pub use stream::{Chunk, MAX_JUMP, PushOutcome, Stream};

/// Connections tracked at once; packets of further new connections are dropped (and
/// counted) until idle ones expire.
pub const MAX_FLOWS: usize = 262_144;
/// Out-of-order bytes held per direction while waiting for a hole to fill.
pub const MAX_HELD_BYTES_PER_DIRECTION: usize = 4 * 1024 * 1024;
/// Out-of-order bytes held by all connections together.
pub const MAX_HELD_BYTES_TOTAL: usize = 256 * 1024 * 1024;
/// A connection with no packet for this long (capture time) is closed.
pub const IDLE_TIMEOUT_NS: i64 = 120_000_000_000;
/// A closed connection is kept this long to absorb late retransmissions and ACKs
/// instead of mistaking them for a new connection.
pub const CLOSED_LINGER_NS: i64 = 5_000_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_flows: usize,
    pub max_held_bytes_per_direction: usize,
    pub max_held_bytes_total: usize,
    pub idle_timeout_ns: i64,
    pub closed_linger_ns: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: MAX_FLOWS,
            max_held_bytes_per_direction: MAX_HELD_BYTES_PER_DIRECTION,
            max_held_bytes_total: MAX_HELD_BYTES_TOTAL,
            idle_timeout_ns: IDLE_TIMEOUT_NS,
            closed_linger_ns: CLOSED_LINGER_NS,
        }
    }
}

/// Why bytes or packets were not delivered in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// [`Limits::max_flows`] connections were tracked already.
    FlowTableFull,
    /// The direction held [`Limits::max_held_bytes_per_direction`] already: the hole
    /// before it was declared a gap.
    FlowBufferFull,
    /// All connections together held [`Limits::max_held_bytes_total`].
    MemoryLimit,
    /// The segment lay more than [`MAX_JUMP`] bytes ahead of its stream.
    OutOfWindow,
    /// The segment came after its connection had closed.
    AfterClose,
}

impl DropReason {
    pub const ALL: [DropReason; 5] = [
        DropReason::FlowTableFull,
        DropReason::FlowBufferFull,
        DropReason::MemoryLimit,
        DropReason::OutOfWindow,
        DropReason::AfterClose,
    ];

    pub const fn reason(self) -> &'static str {
        match self {
            DropReason::FlowTableFull => "flow_table_full",
            DropReason::FlowBufferFull => "flow_buffer_full",
            DropReason::MemoryLimit => "memory_limit",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::AfterClose => "after_close",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default, Clone)]
pub struct ReassemblyStats {
    pub segments: u64,
    pub payload_bytes: u64,
    pub flows_created: u64,
    pub flows_closed: u64,
    /// Bytes received again after they had been delivered.
    pub duplicate_bytes: u64,
    /// Bytes that arrived out of order and were held.
    pub out_of_order_bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    /// Packets dropped, by [`DropReason::ALL`] index.
    pub dropped_packets: [u64; 5],
    /// Bytes dropped or given up on, by [`DropReason::ALL`] index.
    pub dropped_bytes: [u64; 5],
}

impl ReassemblyStats {
    fn dropped(&mut self, why: DropReason, packets: u64, bytes: u64) {
        self.dropped_packets[why.index()] += packets;
        self.dropped_bytes[why.index()] += bytes;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// Direction within a connection: `Forward` is from `FlowCtx::endpoints[0]`, the
/// side that opened the connection (or was seen first, when the handshake was missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Forward = 0,
    Reverse = 1,
}

impl Dir {
    pub fn flip(self) -> Dir {
        match self {
            Dir::Forward => Dir::Reverse,
            Dir::Reverse => Dir::Forward,
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    Fin,
    Rst,
    IdleTimeout,
    CaptureEnd,
}

impl EndReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::IdleTimeout => "idle_timeout",
            EndReason::CaptureEnd => "capture_end",
        }
    }
}

/// Per-connection counters, as a flow record wants them.
#[derive(Debug, Clone, Default)]
pub struct FlowStats {
    pub packets: [u64; 2],
    /// Payload bytes seen (including duplicates) per direction.
    pub bytes: [u64; 2],
    pub retransmitted_bytes: [u64; 2],
    pub resets: u32,
    pub first_ts: i64,
    pub last_ts: i64,
    /// SYN to the ACK that completes the handshake, when the handshake was seen.
    pub handshake_rtt_ns: Option<i64>,
    /// Bytes the capture missed, both directions (filled in when the flow closes).
    pub gap_bytes: u64,
    /// Why the flow ended (filled in when it closes).
    pub end_reason: Option<EndReason>,
    syn_ts: Option<i64>,
    synack_ts: Option<i64>,
}

/// What the application sees of its connection.
#[derive(Debug, Clone)]
pub struct FlowCtx {
    pub id: u64,
    /// `endpoints[d]` sends direction `d`.
    pub endpoints: [Endpoint; 2],
    /// True when a SYN or SYN-ACK said who opened the connection.
    pub opener_known: bool,
    /// True when the direction's first byte was not preceded by a SYN: the stream
    /// starts somewhere inside the conversation.
    pub midstream: [bool; 2],
}

pub enum StreamEvent<'a> {
    Data {
        dir: Dir,
        offset: u64,
        data: &'a [u8],
        ts: i64,
        /// This segment's acknowledgment, as an offset in the other direction.
        peer_ack: Option<u64>,
    },
    Gap {
        dir: Dir,
        offset: u64,
        len: u64,
        ts: i64,
    },
    End {
        dir: Dir,
        reason: EndReason,
        ts: i64,
    },
    /// The last event of a connection.
    Closed { stats: &'a FlowStats, ts: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    lo: Endpoint,
    hi: Endpoint,
}

impl FlowKey {
    fn new(a: Endpoint, b: Endpoint) -> FlowKey {
        if (a.ip, a.port) <= (b.ip, b.port) {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

struct Flow<A> {
    ctx: FlowCtx,
    streams: [Stream; 2],
    ended: [bool; 2],
    closed_at: Option<i64>,
    stats: FlowStats,
    app: A,
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

pub struct Reassembler<A> {
    flows: FxMap<FlowKey, Flow<A>>,
    limits: Limits,
    /// Bytes all directions may still hold.
    budget: usize,
    next_id: u64,
    stats: ReassemblyStats,
}

impl<A: Default> Default for Reassembler<A> {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl<A: Default> Reassembler<A> {
    pub fn new(limits: Limits) -> Self {
        Reassembler {
            flows: FxMap::default(),
            budget: limits.max_held_bytes_total,
            limits,
            next_id: 1,
            stats: ReassemblyStats::default(),
        }
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    pub fn live_flows(&self) -> usize {
        self.flows.len()
    }

    /// Bytes held out of order right now, across all connections.
    pub fn held_bytes(&self) -> usize {
        self.limits.max_held_bytes_total - self.budget
    }

    /// Feeds one segment. `on` receives the connection's application state and every
    /// event the segment causes, in stream order.
    pub fn segment<F>(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        seg: &TcpSegment<'_>,
        on: &mut F,
    ) where
        F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
    {
        self.stats.segments += 1;
        let payload_len = seg.payload.len() as u64 + u64::from(seg.missing);
        self.stats.payload_bytes += payload_len;
        let from = Endpoint {
            ip: src,
            port: seg.src_port,
        };
        let to = Endpoint {
            ip: dst,
            port: seg.dst_port,
        };
        let key = FlowKey::new(from, to);
        let syn = seg.has(tcp_flags::SYN);
        let ack = seg.has(tcp_flags::ACK);

        // A SYN on a connection that is over (or a different ISN on one that never got
        // going) is a new connection reusing the ports.
        if syn
            && !ack
            && let Some(f) = self.flows.get(&key)
        {
            let dir = f.dir_of(from);
            let same_isn = f.streams[dir.index()].base() == Some(seg.seq.wrapping_add(1));
            if !same_isn
                && (f.closed_at.is_some() || f.stats.bytes != [0, 0] || dir == Dir::Reverse)
            {
                self.close(key, ts, EndReason::Fin, on);
                self.flows.remove(&key);
            }
        }

        if !self.flows.contains_key(&key) {
            if self.flows.len() >= self.limits.max_flows {
                self.expire(ts, on);
            }
            if self.flows.len() >= self.limits.max_flows {
                self.stats
                    .dropped(DropReason::FlowTableFull, 1, payload_len);
                return;
            }
            // The opener sends the SYN; a SYN-ACK comes from the other side. Otherwise
            // the first packet's sender is taken as the opener until content says more.
            let (a, b, known) = if syn && ack {
                (to, from, true)
            } else {
                (from, to, syn)
            };
            self.stats.flows_created += 1;
            let id = self.next_id;
            self.next_id += 1;
            self.flows.insert(
                key,
                Flow {
                    ctx: FlowCtx {
                        id,
                        endpoints: [a, b],
                        opener_known: known,
                        midstream: [true, true],
                    },
                    streams: [Stream::default(), Stream::default()],
                    ended: [false, false],
                    closed_at: None,
                    stats: FlowStats {
                        first_ts: ts,
                        ..FlowStats::default()
                    },
                    app: A::default(),
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let dir = flow.dir_of(from);
        let d = dir.index();
        let p = dir.flip().index();
        flow.stats.packets[d] += 1;
        flow.stats.bytes[d] += payload_len;
        flow.stats.last_ts = ts;

        if flow.closed_at.is_some() {
            // The last ACK of a teardown is normal; data after the close is not.
            if payload_len > 0 {
                self.stats.dropped(DropReason::AfterClose, 1, payload_len);
            }
            return;
        }

        if syn {
            flow.streams[d].set_isn(seg.seq);
            if ack {
                flow.streams[p].hint_base(seg.ack);
                flow.stats.synack_ts.get_or_insert(ts);
                // Sides can be swapped only while the application has seen nothing
                // (a late or bogus SYN-ACK must not relabel delivered data).
                if !flow.ctx.opener_known
                    && flow.stats.bytes[d] == payload_len
                    && flow.stats.bytes[p] == 0
                {
                    flow.ctx.opener_known = true;
                    if dir == Dir::Forward {
                        flow.swap_sides();
                    }
                }
            } else {
                flow.stats.syn_ts.get_or_insert(ts);
            }
        } else if ack
            && flow.stats.handshake_rtt_ns.is_none()
            && let (Some(s), Some(_)) = (flow.stats.syn_ts, flow.stats.synack_ts)
        {
            flow.stats.handshake_rtt_ns = Some(ts - s);
        }
        // The swap above may have changed which side this packet belongs to.
        let dir = flow.dir_of(from);
        let d = dir.index();
        let p = dir.flip().index();

        if ack && flow.streams[p].base().is_none() {
            flow.streams[p].hint_base(seg.ack);
        }
        let peer_ack = if ack {
            flow.streams[p]
                .offset_of(seg.ack)
                .filter(|o| *o >= 0)
                .map(|o| o as u64)
        } else {
            None
        };

        let Flow {
            ctx,
            streams,
            app,
            stats: fstats,
            ended,
            ..
        } = flow;
        let budget = &mut self.budget;
        let rstats = &mut self.stats;
        let max_hold = self.limits.max_held_bytes_per_direction;

        // The acknowledgment first: it may release data of the other direction that
        // was waiting behind bytes the capture missed.
        if let Some(a) = peer_ack
            && !ended[p]
        {
            let pdir = dir.flip();
            streams[p].peer_acked(a, ts, budget, &mut |c| {
                emit(app, ctx, rstats, pdir, c, on);
            });
        }

        if payload_len > 0 && !ended[d] {
            if streams[d].saw_syn {
                ctx.midstream[d] = false;
            }
            let outcome = streams[d].push(
                seg.seq,
                seg.payload,
                seg.missing,
                ts,
                peer_ack,
                max_hold,
                budget,
                &mut |c| emit(app, ctx, rstats, dir, c, on),
            );
            rstats.duplicate_bytes += outcome.duplicate;
            fstats.retransmitted_bytes[d] += outcome.duplicate;
            rstats.out_of_order_bytes += outcome.held;
            if outcome.refused > 0 {
                let why = if outcome.refused_by_memory {
                    DropReason::MemoryLimit
                } else {
                    DropReason::FlowBufferFull
                };
                rstats.dropped(why, 1, outcome.refused);
            }
            if outcome.out_of_window > 0 {
                rstats.dropped(DropReason::OutOfWindow, 1, outcome.out_of_window);
            }
        }

        if seg.has(tcp_flags::FIN) {
            streams[d].set_fin(seg.seq, seg.payload.len() + seg.missing as usize);
        }
        for side in [Dir::Forward, Dir::Reverse] {
            let i = side.index();
            if !ended[i] && streams[i].finished() {
                ended[i] = true;
                on(
                    app,
                    ctx,
                    StreamEvent::End {
                        dir: side,
                        reason: EndReason::Fin,
                        ts,
                    },
                );
            }
        }
        let rst = seg.has(tcp_flags::RST);
        if rst {
            fstats.resets += 1;
        }
        if rst || (ended[0] && ended[1]) {
            let reason = if rst { EndReason::Rst } else { EndReason::Fin };
            self.close(key, ts, reason, on);
        }
    }

    /// Hands on what is held, ends both directions and keeps the connection only to
    /// absorb stragglers.
    fn close<F>(&mut self, key: FlowKey, ts: i64, reason: EndReason, on: &mut F)
    where
        F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
    {
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        if flow.closed_at.is_some() {
            return;
        }
        flow.finish(ts, reason, &mut self.budget, &mut self.stats, on);
        self.stats.flows_closed += 1;
        flow.closed_at = Some(ts);
    }

    /// Closes connections idle for longer than the idle timeout and forgets closed ones
    /// after their linger time. Call it as capture time advances (e.g. once a second).
    pub fn expire<F>(&mut self, now: i64, on: &mut F)
    where
        F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
    {
        let idle = self.limits.idle_timeout_ns;
        let linger = self.limits.closed_linger_ns;
        let mut idle_keys = Vec::new();
        self.flows.retain(|k, f| match f.closed_at {
            Some(at) => now.saturating_sub(at) <= linger,
            None => {
                if now.saturating_sub(f.stats.last_ts) > idle {
                    idle_keys.push(*k);
                }
                true
            }
        });
        for k in idle_keys {
            self.close(k, now, EndReason::IdleTimeout, on);
            self.flows.remove(&k);
        }
    }

    /// Visits every open connection's application state (e.g. for its timeouts).
    pub fn for_each_open<F: FnMut(&mut A, &FlowCtx)>(&mut self, mut f: F) {
        for flow in self.flows.values_mut() {
            if flow.closed_at.is_none() {
                f(&mut flow.app, &flow.ctx);
            }
        }
    }

    /// End of the capture: every connection is flushed and closed.
    pub fn finish<F>(&mut self, on: &mut F)
    where
        F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
    {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for k in keys {
            let ts = self.flows.get(&k).map_or(0, |f| f.stats.last_ts);
            self.close(k, ts, EndReason::CaptureEnd, on);
        }
        self.flows.clear();
    }
}

fn emit<A, F>(
    app: &mut A,
    ctx: &FlowCtx,
    stats: &mut ReassemblyStats,
    dir: Dir,
    c: Chunk<'_>,
    on: &mut F,
) where
    F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
{
    match c {
        Chunk::Data {
            offset,
            data,
            ts,
            peer_ack,
        } => on(
            app,
            ctx,
            StreamEvent::Data {
                dir,
                offset,
                data,
                ts,
                peer_ack,
            },
        ),
        Chunk::Gap { offset, len, ts } => {
            stats.gaps += 1;
            stats.gap_bytes += len;
            on(
                app,
                ctx,
                StreamEvent::Gap {
                    dir,
                    offset,
                    len,
                    ts,
                },
            )
        }
    }
}

impl<A> Flow<A> {
    fn dir_of(&self, from: Endpoint) -> Dir {
        if from == self.ctx.endpoints[0] {
            Dir::Forward
        } else {
            Dir::Reverse
        }
    }

    /// The handshake showed the first-seen side was the server.
    fn swap_sides(&mut self) {
        self.ctx.endpoints.swap(0, 1);
        self.ctx.midstream.swap(0, 1);
        self.streams.swap(0, 1);
        self.ended.swap(0, 1);
        self.stats.packets.swap(0, 1);
        self.stats.bytes.swap(0, 1);
        self.stats.retransmitted_bytes.swap(0, 1);
    }

    fn finish<F>(
        &mut self,
        ts: i64,
        reason: EndReason,
        budget: &mut usize,
        rstats: &mut ReassemblyStats,
        on: &mut F,
    ) where
        F: FnMut(&mut A, &FlowCtx, StreamEvent<'_>),
    {
        let Flow {
            ctx,
            streams,
            app,
            ended,
            stats,
            ..
        } = self;
        for dir in [Dir::Forward, Dir::Reverse] {
            let i = dir.index();
            if ended[i] {
                continue;
            }
            streams[i].flush(ts, budget, &mut |c| emit(app, ctx, rstats, dir, c, on));
            ended[i] = true;
            let reason = if streams[i].finished() {
                EndReason::Fin
            } else {
                reason
            };
            on(app, ctx, StreamEvent::End { dir, reason, ts });
        }
        // A closed connection holds nothing, whatever came after its FINs.
        for s in streams.iter_mut() {
            s.discard(budget);
        }
        stats.gap_bytes = streams[0].gap_bytes() + streams[1].gap_bytes();
        stats.end_reason = Some(reason);
        on(app, ctx, StreamEvent::Closed { stats, ts });
    }
}

#[cfg(test)]
mod tests;
