//! Packets in, entries out: L2–L4 decoding, IP defragmentation, TCP reassembly and
//! dissection wired together with their statistics.
//!
//! The same engine serves `reef dissect` (capture files) and the worker (live capture),
//! so there is one copy of the dissection path. It is synchronous and single-threaded;
//! a worker runs one engine per capture thread.

use std::collections::BTreeMap;

use reef_dissect::icmp::{Icmp, IcmpMessage};
use reef_dissect::{Conn, DissectStats, Output, UdpFlows};
use reef_packet::{Defragmenter, FragDrop, FragStats, Transport};
use reef_reassembly::{
    DropReason, Endpoint, FlowCtx, FlowStats, Reassembler, ReassemblyStats, StreamEvent,
};
use reef_schema::{CaptureSource, Entry, FlowRecord, Transport as L4};

/// Tunnels inside tunnels unwrapped before giving up on a packet.
pub const MAX_TUNNEL_DEPTH: u8 = 3;

/// How often (in capture time) idle connections, fragments and response timeouts are
/// checked.
pub const TICK_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
pub struct Config {
    pub reassembly: reef_reassembly::Limits,
    pub dissect: reef_dissect::Limits,
    pub capture_source: CaptureSource,
    /// Node name put on every entry.
    pub node: Option<String>,
    /// Entry ids are `<id_prefix>-<n>`; make it unique per engine instance.
    pub id_prefix: String,
    /// Keep a flow record of every closed TCP connection (drain them with
    /// [`Engine::drain_flows`]).
    pub flow_records: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reassembly: reef_reassembly::Limits::default(),
            dissect: reef_dissect::Limits::default(),
            capture_source: CaptureSource::Pcap,
            node: None,
            id_prefix: "e".to_string(),
            flow_records: false,
        }
    }
}

/// Counters of everything the engine saw and dropped.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub packets: u64,
    pub bytes: u64,
    pub tcp_segments: u64,
    pub udp_datagrams: u64,
    pub icmp_messages: u64,
    /// Packets found inside VXLAN, Geneve, GRE or IP-in-IP.
    pub tunnelled: u64,
    pub other_ip_packets: u64,
    /// Frames without a usable IP packet, by reason.
    pub undecoded: BTreeMap<&'static str, u64>,
    /// TCP/UDP headers that did not parse.
    pub malformed_transport: u64,
    pub fragments: FragStats,
    pub reassembly: ReassemblyStats,
    pub live_flows: usize,
    pub live_udp_flows: usize,
    /// Body bytes held by messages in progress.
    pub kept_body_bytes: usize,
    pub dissect: DissectStats,
    /// ICMP and ICMPv6 pairing (echo requests and replies, errors).
    pub icmp: reef_dissect::icmp::IcmpStats,
    pub entries: u64,
}

impl Stats {
    /// TCP bytes given up on, by reason.
    pub fn tcp_drops(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .zip(self.reassembly.dropped_bytes)
            .map(|(d, n)| (d.reason(), n))
    }

    /// Every drop with its reason, as (reason, count): frames for decoding, datagrams
    /// for fragments, bytes (or packets, for segments without payload) for TCP.
    pub fn drops(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for (reason, n) in &self.undecoded {
            out.push(((*reason).to_string(), *n));
        }
        if self.dissect.body_bytes_refused > 0 {
            out.push((
                "body_memory_limit (bytes not kept)".into(),
                self.dissect.body_bytes_refused,
            ));
        }
        if self.malformed_transport > 0 {
            out.push((
                "malformed_transport_header".into(),
                self.malformed_transport,
            ));
        }
        for (i, d) in FragDrop::ALL.iter().enumerate() {
            if self.fragments.dropped[i] > 0 {
                out.push((
                    format!("{} (datagrams)", d.reason()),
                    self.fragments.dropped[i],
                ));
            }
        }
        for (i, d) in DropReason::ALL.iter().enumerate() {
            let (packets, bytes) = (
                self.reassembly.dropped_packets[i],
                self.reassembly.dropped_bytes[i],
            );
            if bytes > 0 {
                out.push((format!("tcp_{} (bytes)", d.reason()), bytes));
            } else if packets > 0 {
                out.push((format!("tcp_{} (packets)", d.reason()), packets));
            }
        }
        out
    }
}

pub struct Engine {
    cfg: Config,
    tcp: Reassembler<Conn>,
    udp: UdpFlows,
    icmp: Icmp,
    /// Flow records of closed TCP connections, not yet drained.
    flows: Vec<FlowRecord>,
    next_flow: u64,
    defrag: Defragmenter,
    out: Output,
    stats: Stats,
    next_tick: Option<i64>,
    newest_ts: i64,
}

impl Engine {
    pub fn new(cfg: Config) -> Engine {
        Engine {
            tcp: Reassembler::new(cfg.reassembly),
            udp: UdpFlows::new(),
            icmp: Icmp::new(),
            flows: Vec::new(),
            next_flow: 1,
            defrag: Defragmenter::new(),
            out: Output::new(cfg.dissect, cfg.id_prefix.clone()),
            stats: Stats::default(),
            next_tick: None,
            newest_ts: i64::MIN,
            cfg,
        }
    }

    /// Feeds one captured frame.
    pub fn packet(&mut self, ts: i64, link_type: u16, frame: &[u8]) {
        self.stats.packets += 1;
        self.stats.bytes += frame.len() as u64;
        self.clock(ts);
        self.frame(ts, link_type, frame, 0);
    }

    fn frame(&mut self, ts: i64, link_type: u16, frame: &[u8], depth: u8) {
        let ip = match reef_packet::decode(link_type, frame) {
            Ok(ip) => ip,
            Err(e) => {
                *self.stats.undecoded.entry(e.reason()).or_default() += 1;
                return;
            }
        };
        if let Some(frag) = ip.fragment {
            if let Some(whole) = self
                .defrag
                .push(ts, ip.src, ip.dst, ip.protocol, frag, ip.payload)
            {
                let len = whole.len();
                self.transport(ts, ip.src, ip.dst, ip.protocol, &whole, len, depth);
            }
            return;
        }
        let (src, dst, proto, payload, len) =
            (ip.src, ip.dst, ip.protocol, ip.payload, ip.payload_len);
        self.transport(ts, src, dst, proto, payload, len, depth);
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        ts: i64,
        src: std::net::IpAddr,
        dst: std::net::IpAddr,
        protocol: u8,
        payload: &[u8],
        payload_len: usize,
        depth: u8,
    ) {
        match reef_packet::decode_transport(protocol, payload, payload_len) {
            Transport::Tcp(seg) => {
                self.stats.tcp_segments += 1;
                let (out, flows) = (
                    &mut self.out,
                    self.cfg.flow_records.then_some(&mut self.flows),
                );
                let cs = self.cfg.capture_source;
                let mut flows = flows;
                self.tcp
                    .segment(ts, src, dst, &seg, &mut |conn: &mut Conn, ctx, ev| {
                        on_tcp(conn, ctx, ev, out, flows.as_deref_mut(), cs)
                    });
            }
            Transport::Udp(u) => {
                if depth < MAX_TUNNEL_DEPTH
                    && let Some((lt, inner)) = reef_packet::decapsulate_udp(&u)
                {
                    self.stats.tunnelled += 1;
                    self.frame(ts, lt, inner, depth + 1);
                    return;
                }
                self.stats.udp_datagrams += 1;
                let from = Endpoint {
                    ip: src,
                    port: u.src_port,
                };
                let to = Endpoint {
                    ip: dst,
                    port: u.dst_port,
                };
                self.udp.datagram(ts, from, to, u.payload, &mut self.out);
            }
            Transport::Icmp {
                v6,
                icmp_type,
                code,
                rest,
            } => {
                self.stats.icmp_messages += 1;
                let m = IcmpMessage {
                    ts,
                    src,
                    dst,
                    v6,
                    icmp_type,
                    code,
                    rest,
                };
                self.icmp.message(m, &mut self.out);
            }
            Transport::Other {
                protocol,
                malformed,
            } => {
                if depth < MAX_TUNNEL_DEPTH
                    && let Some((lt, inner)) = reef_packet::decapsulate_ip(protocol, payload)
                {
                    self.stats.tunnelled += 1;
                    self.frame(ts, lt, inner, depth + 1);
                } else if malformed {
                    self.stats.malformed_transport += 1;
                } else {
                    self.stats.other_ip_packets += 1;
                }
            }
        }
    }

    /// Lets time pass without packets (a quiet live link): timeouts still run.
    pub fn advance(&mut self, now: i64) {
        self.clock(now);
    }

    /// Advances capture time; timeouts run at most once per [`TICK_NS`]. Capture files
    /// are not always in time order, so time only moves forward.
    fn clock(&mut self, ts: i64) {
        if ts <= self.newest_ts {
            return;
        }
        self.newest_ts = ts;
        let due = *self.next_tick.get_or_insert(ts + TICK_NS);
        if ts >= due {
            self.next_tick = Some(ts + TICK_NS);
            self.tick(ts);
        }
    }

    fn tick(&mut self, now: i64) {
        let out = &mut self.out;
        self.tcp.expire(now, &mut |conn: &mut Conn, ctx, ev| {
            conn.on_event(ctx, ev, out)
        });
        self.tcp.for_each_open(|conn, ctx| conn.tick(ctx, now, out));
        self.udp.expire(now, out);
        self.icmp.expire(now, out);
        self.defrag.expire(now);
    }

    /// End of the capture: every connection is closed and everything pending emitted.
    pub fn finish(&mut self) {
        let (out, mut flows) = (
            &mut self.out,
            self.cfg.flow_records.then_some(&mut self.flows),
        );
        let cs = self.cfg.capture_source;
        self.tcp.finish(&mut |conn: &mut Conn, ctx, ev| {
            on_tcp(conn, ctx, ev, out, flows.as_deref_mut(), cs)
        });
        self.udp.finish(out);
        self.icmp.finish(out);
        self.defrag.finish();
    }

    /// Entries produced so far, with node and capture source filled in. The engine
    /// keeps its buffer, so draining regularly allocates nothing.
    pub fn drain_entries(&mut self) -> impl Iterator<Item = Entry> + '_ {
        let Engine {
            cfg, out, stats, ..
        } = self;
        stats.entries += out.entries.len() as u64;
        out.entries.drain().map(move |mut e| {
            e.node.clone_from(&cfg.node);
            e.capture_source = cfg.capture_source;
            e
        })
    }

    /// Flow records of connections closed so far, with ids and node filled in.
    pub fn drain_flows(&mut self) -> impl Iterator<Item = FlowRecord> + '_ {
        let Engine {
            cfg,
            flows,
            next_flow,
            ..
        } = self;
        flows.drain(..).map(move |mut f| {
            f.id = format!("{}-f{}", cfg.id_prefix, next_flow);
            *next_flow += 1;
            f.node.clone_from(&cfg.node);
            f
        })
    }

    /// [`Engine::drain_entries`], collected.
    pub fn take_entries(&mut self) -> Vec<Entry> {
        self.drain_entries().collect()
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.fragments = self.defrag.stats.clone();
        s.reassembly = self.tcp.stats().clone();
        s.live_flows = self.tcp.live_flows();
        s.live_udp_flows = self.udp.live_flows();
        s.dissect = self.out.stats.clone();
        s.icmp = self.icmp.stats;
        s.dissect.body_bytes_refused = self.out.body_budget.refused();
        s.kept_body_bytes = self.out.body_budget.used();
        s
    }
}

/// Hands a TCP event to the connection's dissector, and records the flow when the
/// connection closes.
fn on_tcp(
    conn: &mut Conn,
    ctx: &FlowCtx,
    ev: StreamEvent<'_>,
    out: &mut Output,
    flows: Option<&mut Vec<FlowRecord>>,
    capture_source: CaptureSource,
) {
    if let (StreamEvent::Closed { stats, .. }, Some(flows)) = (&ev, flows) {
        flows.push(flow_record(ctx, stats, conn.protocol(), capture_source));
    }
    conn.on_event(ctx, ev, out);
}

fn flow_record(
    ctx: &FlowCtx,
    s: &FlowStats,
    protocol: Option<&str>,
    capture_source: CaptureSource,
) -> FlowRecord {
    let [a, b] = ctx.endpoints;
    FlowRecord {
        start: s.first_ts,
        end: s.last_ts,
        transport: L4::Tcp,
        src_ip: a.ip,
        src_port: Some(a.port),
        dst_ip: b.ip,
        dst_port: Some(b.port),
        capture_source,
        protocol: protocol.map(str::to_string),
        src_packets: Some(s.packets[0]),
        dst_packets: Some(s.packets[1]),
        src_bytes: Some(s.bytes[0]),
        dst_bytes: Some(s.bytes[1]),
        src_retransmitted_bytes: Some(s.retransmitted_bytes[0]),
        dst_retransmitted_bytes: Some(s.retransmitted_bytes[1]),
        handshake_rtt: s.handshake_rtt_ns.map(|ns| ns / 1000),
        resets: Some(s.resets),
        end_reason: s.end_reason.map(|r| r.as_str().to_string()),
        gap_bytes: Some(s.gap_bytes),
        ..FlowRecord::default()
    }
}
