//! ICMP and ICMPv6: echo (and timestamp) requests paired with their replies by
//! addresses, identifier and sequence number, with the round trip as `elapsed_time`;
//! errors (destination unreachable, time exceeded, packet too big, parameter problem)
//! tied to the flow they quote; every other message an entry of its own.
//!
//! ICMP has no connection, so this is one table per engine rather than a dissector
//! per flow: a bounded table of echo requests waiting for their reply.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::BuildHasherDefault;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use reef_schema::{Entry, Flags, Protocol, Transport};
use rustc_hash::FxHasher;

use crate::Output;
use crate::dns::duration_text;

/// Echo requests waiting for a reply; past this the oldest is emitted unanswered.
pub const MAX_OUTSTANDING_ECHOES: usize = 16_384;
/// IPv6 extension headers walked in a quoted datagram to find its transport header.
pub const MAX_QUOTED_EXT_HEADERS: usize = 8;

/// One ICMP or ICMPv6 message as the packet layer hands it over.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<'a> {
    pub ts: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    /// The bytes after type, code and checksum.
    pub rest: &'a [u8],
}

impl IcmpMessage<'_> {
    fn size(&self) -> u64 {
        4 + self.rest.len() as u64
    }

    fn u16_at(&self, i: usize) -> Option<u16> {
        Some(u16::from_be_bytes([
            *self.rest.get(i)?,
            *self.rest.get(i + 1)?,
        ]))
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct IcmpStats {
    pub messages: u64,
    pub echo_requests: u64,
    pub echo_pairs: u64,
    pub echo_unanswered: u64,
    pub echo_replies_unrequested: u64,
    pub errors: u64,
    /// Echo requests given up because the table was full.
    pub evicted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EchoKey {
    requester: IpAddr,
    target: IpAddr,
    request_type: u8,
    v6: bool,
    ident: u16,
    seq: u16,
}

#[derive(Debug, Clone, Copy)]
struct Echo {
    ts: i64,
    size: u64,
    code: u8,
    /// Where the request went (the key holds the unspecified address for a group).
    target: IpAddr,
    /// Replies seen, for a request to a group (each host answers).
    replies: u32,
}

/// A multicast or broadcast destination: any number of hosts may answer.
fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// The key's target for a request to a group, which replies come from hosts of.
fn group_target(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// The outstanding echo requests of one engine.
#[derive(Default)]
pub struct Icmp {
    pending: HashMap<EchoKey, Echo, BuildHasherDefault<FxHasher>>,
    /// Requests in arrival order, for timeouts and eviction; entries whose request
    /// was answered since are skipped when they come up.
    order: VecDeque<(EchoKey, i64)>,
    pub stats: IcmpStats,
}

/// For a request/reply type: whether it is the request, and the request's type.
fn echo_role(v6: bool, t: u8) -> Option<(bool, u8)> {
    match (v6, t) {
        (false, 8) => Some((true, 8)),
        (false, 0) => Some((false, 8)),
        (false, 13) => Some((true, 13)),
        (false, 14) => Some((false, 13)),
        (true, 128) => Some((true, 128)),
        (true, 129) => Some((false, 128)),
        _ => None,
    }
}

/// Errors that carry the start of the datagram that caused them.
fn is_error(v6: bool, t: u8) -> bool {
    if v6 {
        matches!(t, 1..=4)
    } else {
        matches!(t, 3 | 4 | 5 | 11 | 12)
    }
}

/// Errors after which the quoted datagram got nowhere (a redirect or source quench
/// is advice, not a verdict).
fn is_fatal(v6: bool, t: u8) -> bool {
    if v6 {
        matches!(t, 1..=4)
    } else {
        matches!(t, 3 | 11 | 12)
    }
}

impl Icmp {
    pub fn new() -> Icmp {
        Icmp::default()
    }

    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    pub fn message(&mut self, m: IcmpMessage<'_>, out: &mut Output) {
        self.stats.messages += 1;
        if let Some((is_request, request_type)) = echo_role(m.v6, m.icmp_type)
            && let (Some(ident), Some(seq)) = (m.u16_at(0), m.u16_at(2))
        {
            if is_request {
                self.request(m, request_type, ident, seq, out);
            } else {
                self.reply(m, request_type, ident, seq, out);
            }
            return;
        }
        let quoted = if is_error(m.v6, m.icmp_type) {
            self.stats.errors += 1;
            m.rest.get(4..).and_then(Quoted::parse)
        } else {
            None
        };
        if let Some(q) = &quoted
            && is_fatal(m.v6, m.icmp_type)
        {
            self.resolve_quoted_echo(&m, q, out);
        }
        out.entries.emit(one_way(&m, quoted.as_ref()));
    }

    fn request(
        &mut self,
        m: IcmpMessage<'_>,
        request_type: u8,
        ident: u16,
        seq: u16,
        out: &mut Output,
    ) {
        self.stats.echo_requests += 1;
        let key = EchoKey {
            requester: m.src,
            target: if is_group(m.dst) {
                group_target(m.v6)
            } else {
                m.dst
            },
            request_type,
            v6: m.v6,
            ident,
            seq,
        };
        if let Some(old) = self.pending.remove(&key)
            && old.replies == 0
        {
            let note = format!(
                "sent again {} later with the same identifier and sequence",
                duration_text(m.ts - old.ts)
            );
            self.unanswered(&key, &old, Flags::NO_RESPONSE, &note, out);
        }
        if self.pending.len() >= MAX_OUTSTANDING_ECHOES {
            self.evict_oldest(out);
        }
        self.pending.insert(
            key,
            Echo {
                ts: m.ts,
                size: m.size(),
                code: m.code,
                target: m.dst,
                replies: 0,
            },
        );
        self.order.push_back((key, m.ts));
        if self.order.len() > 2 * MAX_OUTSTANDING_ECHOES {
            let pending = &self.pending;
            self.order
                .retain(|(k, ts)| pending.get(k).is_some_and(|e| e.ts == *ts));
        }
    }

    fn evict_oldest(&mut self, out: &mut Output) {
        while let Some((k, ts)) = self.order.pop_front() {
            if self.pending.get(&k).is_some_and(|e| e.ts == ts)
                && let Some(e) = self.pending.remove(&k)
                && e.replies == 0
            {
                self.stats.evicted += 1;
                let note = "given up: too many echo requests outstanding";
                self.unanswered(&k, &e, Flags::NO_RESPONSE, note, out);
                return;
            }
        }
    }

    fn reply(
        &mut self,
        m: IcmpMessage<'_>,
        request_type: u8,
        ident: u16,
        seq: u16,
        out: &mut Output,
    ) {
        let key = EchoKey {
            requester: m.dst,
            target: m.src,
            request_type,
            v6: m.v6,
            ident,
            seq,
        };
        let mut e = base(m.dst, m.src);
        e.icmp_type = Some(i32::from(request_type));
        e.response_size = Some(m.size());
        e.method = Some(type_name(m.v6, request_type).to_string());
        let what = format!("{} id={ident} seq={seq}", family(m.v6));
        // A request to a group stays waiting: every host that answers gets an entry.
        let group_key = EchoKey {
            target: group_target(m.v6),
            ..key
        };
        let req = match self.pending.remove(&key) {
            Some(req) => Some(req),
            None => self.pending.get_mut(&group_key).map(|g| {
                g.replies += 1;
                *g
            }),
        };
        match req {
            Some(req) => {
                self.stats.echo_pairs += 1;
                let to_group = if req.target == m.src {
                    String::new()
                } else {
                    format!(" (sent to {}, answered by {})", req.target, m.src)
                };
                e.timestamp = req.ts;
                e.icmp_code = Some(i32::from(req.code));
                e.request_size = Some(req.size);
                let rtt = m.ts - req.ts;
                e.elapsed_time = Some(rtt.max(0) / 1000);
                e.summary = Some(format!(
                    "{what} {} → {} after {}{to_group}",
                    type_name(m.v6, request_type),
                    type_name(m.v6, m.icmp_type),
                    duration_text(rtt)
                ));
            }
            None => {
                self.stats.echo_replies_unrequested += 1;
                e.timestamp = m.ts;
                // The entry is named after the reply, which is all there is of it.
                e.method = Some(type_name(m.v6, m.icmp_type).to_string());
                e.icmp_type = Some(i32::from(m.icmp_type));
                e.icmp_code = Some(i32::from(m.code));
                e.flags = Flags::NO_REQUEST;
                e.summary = Some(format!(
                    "{what} {} from {}; request not captured",
                    type_name(m.v6, m.icmp_type),
                    m.src
                ));
            }
        }
        e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
        out.entries.emit(e);
    }

    /// An error quoting an echo request we wait for: that request will get no reply.
    fn resolve_quoted_echo(&mut self, m: &IcmpMessage<'_>, q: &Quoted, out: &mut Output) {
        let Some((qtype, ident, seq)) = q.icmp else {
            return;
        };
        let Some((true, request_type)) = echo_role(m.v6, qtype) else {
            return;
        };
        let key = EchoKey {
            requester: q.src,
            target: q.dst,
            request_type,
            v6: m.v6,
            ident,
            seq,
        };
        if let Some(req) = self.pending.remove(&key) {
            let note = format!(
                "{} ({}) from {} after {}",
                type_name(m.v6, m.icmp_type),
                code_name(m.v6, m.icmp_type, m.code).unwrap_or("code"),
                m.src,
                duration_text(m.ts - req.ts)
            );
            self.unanswered(&key, &req, Flags::NO_RESPONSE, &note, out);
        }
    }

    fn unanswered(&mut self, k: &EchoKey, req: &Echo, flags: Flags, note: &str, out: &mut Output) {
        self.stats.echo_unanswered += 1;
        let mut e = base(k.requester, req.target);
        e.timestamp = req.ts;
        e.method = Some(type_name(k.v6, k.request_type).to_string());
        e.icmp_type = Some(i32::from(k.request_type));
        e.icmp_code = Some(i32::from(req.code));
        e.request_size = Some(req.size);
        e.flags = flags;
        e.incomplete = flags.intersects(Flags::INCOMPLETE);
        e.summary = Some(format!(
            "{} id={} seq={} {} → no reply; {note}",
            family(k.v6),
            k.ident,
            k.seq,
            type_name(k.v6, k.request_type)
        ));
        out.entries.emit(e);
    }

    /// Requests older than the response timeout are emitted unanswered.
    pub fn expire(&mut self, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        while let Some(&(k, ts)) = self.order.front() {
            if now - ts <= timeout {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&k).is_some_and(|e| e.ts == ts)
                && let Some(e) = self.pending.remove(&k)
                && e.replies == 0
            {
                let note = format!("no reply within {}", duration_text(timeout));
                self.unanswered(&k, &e, Flags::NO_RESPONSE | Flags::TIMEOUT, &note, out);
            }
        }
    }

    /// End of the capture: every waiting request is emitted unanswered.
    pub fn finish(&mut self, out: &mut Output) {
        while let Some((k, ts)) = self.order.pop_front() {
            if self.pending.get(&k).is_some_and(|e| e.ts == ts)
                && let Some(e) = self.pending.remove(&k)
                && e.replies == 0
            {
                self.unanswered(
                    &k,
                    &e,
                    Flags::NO_RESPONSE,
                    "no reply before the end of the capture",
                    out,
                );
            }
        }
        self.pending.clear();
    }
}

fn family(v6: bool) -> &'static str {
    if v6 { "ICMPv6" } else { "ICMP" }
}

fn base(src: IpAddr, dst: IpAddr) -> Entry {
    Entry {
        protocol: Protocol::Icmp,
        transport: Transport::Icmp,
        src_ip: src,
        dst_ip: dst,
        ..Entry::default()
    }
}

/// A message that is not part of a request/reply pair.
fn one_way(m: &IcmpMessage<'_>, quoted: Option<&Quoted>) -> Entry {
    let mut e = base(m.src, m.dst);
    e.timestamp = m.ts;
    e.request_size = Some(m.size());
    e.method = Some(type_name(m.v6, m.icmp_type).to_string());
    e.icmp_type = Some(i32::from(m.icmp_type));
    e.icmp_code = Some(i32::from(m.code));
    let mut s = format!("{} {}", family(m.v6), type_name(m.v6, m.icmp_type));
    if let Some(c) = code_name(m.v6, m.icmp_type, m.code) {
        let _ = write!(s, " ({c})");
    }
    match (m.v6, m.icmp_type) {
        // Fragmentation needed: the next-hop MTU is in the second half of the word.
        (false, 3) if m.code == 4 => {
            if let Some(mtu) = m.u16_at(2).filter(|&n| n > 0) {
                let _ = write!(s, " next-hop MTU {mtu}");
            }
        }
        (true, 2) => {
            if let Some(b) = m.rest.get(..4) {
                let _ = write!(s, " MTU {}", u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
        }
        (false, 5) => {
            if let Some(b) = m.rest.get(..4) {
                let _ = write!(s, " via gateway {}", Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            }
        }
        (true, 4) | (false, 12) => {
            let pointer = if m.v6 {
                m.rest
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            } else {
                m.rest.first().map(|&p| u32::from(p))
            };
            if let Some(p) = pointer {
                let _ = write!(s, " at byte {p}");
            }
        }
        // Neighbor discovery and redirect: the target address says what it is about.
        (true, 135..=137) => {
            if let Some(t) = ipv6_at(m.rest, 4) {
                e.path = Some(t.to_string());
                let _ = write!(s, " target {t}");
            }
        }
        // MLD query, report, done: the multicast address.
        (true, 130..=132) => {
            if let Some(g) = ipv6_at(m.rest, 4) {
                e.path = Some(g.to_string());
                let _ = write!(s, " group {g}");
            }
        }
        // MLDv2 report: records of groups.
        (true, 143) => {
            if let Some(n) = m.u16_at(2) {
                let _ = write!(s, " {n} record(s)");
            }
            if let Some(g) = ipv6_at(m.rest, 8) {
                e.path = Some(g.to_string());
                let _ = write!(s, ", first group {g}");
            }
        }
        (true, 134) => {
            if let (Some(&hops), Some(life)) = (m.rest.first(), m.u16_at(2)) {
                let _ = write!(s, " hop limit {hops}, router lifetime {life} s");
            }
        }
        _ => {}
    }
    if let Some(q) = quoted {
        let flow = q.describe();
        let _ = write!(s, " from {} about {flow}", m.src);
        e.path = Some(flow);
    } else if is_error(m.v6, m.icmp_type) {
        e.flags |= Flags::MALFORMED;
        s.push_str(" (quoted datagram unreadable)");
    }
    e.summary = Some(s);
    e.incomplete = e.flags.intersects(Flags::INCOMPLETE);
    e
}

fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let a: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(a))
}

/// The start of the datagram an error is about: its addresses, protocol and ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    pub protocol: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ports: Option<(u16, u16)>,
    /// A quoted ICMP message: type, identifier, sequence.
    pub icmp: Option<(u8, u16, u16)>,
}

impl Quoted {
    /// Reads an IPv4 or IPv6 header and the first transport bytes after it.
    pub fn parse(d: &[u8]) -> Option<Quoted> {
        let (protocol, src, dst, l4) = match d.first()? >> 4 {
            4 => {
                let ihl = usize::from(d.first()? & 0x0f) * 4;
                if ihl < 20 {
                    return None;
                }
                let h = d.get(..20)?;
                let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
                let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
                // A fragment other than the first carries no transport header.
                let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
                let l4 = if frag_offset == 0 { d.get(ihl..) } else { None };
                (h[9], src, dst, l4)
            }
            6 => {
                let src = IpAddr::V6(ipv6_at(d, 8)?);
                let dst = IpAddr::V6(ipv6_at(d, 24)?);
                let mut next = *d.get(6)?;
                let mut pos = 40;
                let mut l4 = d.get(pos..);
                for _ in 0..MAX_QUOTED_EXT_HEADERS {
                    let len = match next {
                        0 | 43 | 60 => usize::from(*d.get(pos + 1)?) * 8 + 8,
                        44 => {
                            let off = u16::from_be_bytes([*d.get(pos + 2)?, *d.get(pos + 3)?]) >> 3;
                            if off != 0 {
                                l4 = None;
                            }
                            8
                        }
                        51 => (usize::from(*d.get(pos + 1)?) + 2) * 4,
                        _ => break,
                    };
                    next = *d.get(pos)?;
                    pos += len;
                    if l4.is_some() {
                        l4 = d.get(pos..);
                    }
                }
                (next, src, dst, l4)
            }
            _ => return None,
        };
        let mut q = Quoted {
            protocol,
            src,
            dst,
            ports: None,
            icmp: None,
        };
        if let Some(t) = l4 {
            let u = |i: usize| Some(u16::from_be_bytes([*t.get(i)?, *t.get(i + 1)?]));
            match protocol {
                6 | 17 | 132 | 136 => q.ports = u(0).zip(u(2)),
                1 | 58 => {
                    if let (Some(&ty), Some(id), Some(seq)) = (t.first(), u(4), u(6)) {
                        q.icmp = Some((ty, id, seq));
                    }
                }
                _ => {}
            }
        }
        Some(q)
    }

    /// "udp 10.0.0.1:5353 -> 10.0.0.2:53"; without ports, the addresses only.
    pub fn describe(&self) -> String {
        let name = match self.protocol {
            1 => "icmp".to_string(),
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            47 => "gre".to_string(),
            50 => "esp".to_string(),
            58 => "icmpv6".to_string(),
            132 => "sctp".to_string(),
            136 => "udplite".to_string(),
            n => format!("ip-proto-{n}"),
        };
        let at = |ip: IpAddr, port: u16| match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        match (self.ports, self.icmp) {
            (Some((sp, dp)), _) => format!("{name} {} -> {}", at(self.src, sp), at(self.dst, dp)),
            (None, Some((_, id, seq))) => {
                format!("{name} {} -> {} id={id} seq={seq}", self.src, self.dst)
            }
            (None, None) => format!("{name} {} -> {}", self.src, self.dst),
        }
    }
}

/// The message type's name (IANA ICMP and ICMPv6 parameter registries), or `Type<n>`.
pub fn type_name(v6: bool, t: u8) -> std::borrow::Cow<'static, str> {
    let name = if v6 {
        match t {
            1 => "DestinationUnreachable",
            2 => "PacketTooBig",
            3 => "TimeExceeded",
            4 => "ParameterProblem",
            128 => "EchoRequest",
            129 => "EchoReply",
            130 => "MulticastListenerQuery",
            131 => "MulticastListenerReport",
            132 => "MulticastListenerDone",
            133 => "RouterSolicitation",
            134 => "RouterAdvertisement",
            135 => "NeighborSolicitation",
            136 => "NeighborAdvertisement",
            137 => "Redirect",
            138 => "RouterRenumbering",
            139 => "NodeInformationQuery",
            140 => "NodeInformationResponse",
            141 => "InverseNeighborDiscoverySolicitation",
            142 => "InverseNeighborDiscoveryAdvertisement",
            143 => "MulticastListenerReportV2",
            144 => "HomeAgentAddressDiscoveryRequest",
            145 => "HomeAgentAddressDiscoveryReply",
            146 => "MobilePrefixSolicitation",
            147 => "MobilePrefixAdvertisement",
            151 => "MulticastRouterAdvertisement",
            152 => "MulticastRouterSolicitation",
            153 => "MulticastRouterTermination",
            155 => "RplControl",
            160 => "ExtendedEchoRequest",
            161 => "ExtendedEchoReply",
            n => return format!("Type{n}").into(),
        }
    } else {
        match t {
            0 => "EchoReply",
            3 => "DestinationUnreachable",
            4 => "SourceQuench",
            5 => "Redirect",
            8 => "EchoRequest",
            9 => "RouterAdvertisement",
            10 => "RouterSolicitation",
            11 => "TimeExceeded",
            12 => "ParameterProblem",
            13 => "TimestampRequest",
            14 => "TimestampReply",
            15 => "InformationRequest",
            16 => "InformationReply",
            17 => "AddressMaskRequest",
            18 => "AddressMaskReply",
            42 => "ExtendedEchoRequest",
            43 => "ExtendedEchoReply",
            n => return format!("Type{n}").into(),
        }
    };
    name.into()
}

/// What the code of an error means, where the registry names it.
pub fn code_name(v6: bool, t: u8, c: u8) -> Option<&'static str> {
    Some(match (v6, t, c) {
        (false, 3, 0) => "network unreachable",
        (false, 3, 1) => "host unreachable",
        (false, 3, 2) => "protocol unreachable",
        (false, 3, 3) => "port unreachable",
        (false, 3, 4) => "fragmentation needed",
        (false, 3, 5) => "source route failed",
        (false, 3, 6) => "destination network unknown",
        (false, 3, 7) => "destination host unknown",
        (false, 3, 8) => "source host isolated",
        (false, 3, 9) => "network administratively prohibited",
        (false, 3, 10) => "host administratively prohibited",
        (false, 3, 11) => "network unreachable for TOS",
        (false, 3, 12) => "host unreachable for TOS",
        (false, 3, 13) => "communication administratively prohibited",
        (false, 3, 14) => "host precedence violation",
        (false, 3, 15) => "precedence cutoff in effect",
        (false, 5, 0) => "for network",
        (false, 5, 1) => "for host",
        (false, 5, 2) => "for TOS and network",
        (false, 5, 3) => "for TOS and host",
        (false, 11, 0) => "TTL exceeded in transit",
        (false, 11, 1) => "fragment reassembly time exceeded",
        (false, 12, 0) => "pointer indicates the error",
        (false, 12, 1) => "missing a required option",
        (false, 12, 2) => "bad length",
        (true, 1, 0) => "no route to destination",
        (true, 1, 1) => "administratively prohibited",
        (true, 1, 2) => "beyond scope of source address",
        (true, 1, 3) => "address unreachable",
        (true, 1, 4) => "port unreachable",
        (true, 1, 5) => "source address failed ingress/egress policy",
        (true, 1, 6) => "reject route to destination",
        (true, 1, 7) => "error in source routing header",
        (true, 3, 0) => "hop limit exceeded in transit",
        (true, 3, 1) => "fragment reassembly time exceeded",
        (true, 4, 0) => "erroneous header field",
        (true, 4, 1) => "unrecognized next header",
        (true, 4, 2) => "unrecognized IPv6 option",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
