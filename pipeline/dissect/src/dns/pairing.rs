//! Queries paired with responses by direction and id, for one UDP flow or one TCP
//! connection (a 5-tuple either way), with several queries outstanding at once.
//!
//! An entry is a query with its response, or a query nobody answered (`no_response`).
//! A response whose query is not in the capture is counted
//! ([`DnsStats::responses_without_query`](super::DnsStats)), not emitted: without its
//! query it has no latency and no client intent, and in practice it only means the
//! capture started late. Two cases follow and are spelled out in the summary:
//!
//! - A query sent again with the same id and question while the first is waiting is a
//!   retransmission. Within [`RETRANSMIT_WINDOW_NS`] (the 5 s default resolver timeout
//!   of glibc, and tshark's) the response is taken for the first copy and each copy is
//!   its own `no_response` entry; after it, the client gave up on the first query,
//!   which is emitted `no_response`, and the new one waits for the answer.
//! - A second response to a query already answered is counted. When its answers differ
//!   from the first's (an injected answer, the mark of DNS spoofing, or two upstreams
//!   disagreeing) it is also a `no_request` entry saying "duplicate response".
//!
//! Multicast queries (mDNS, LLMNR) are answered by whoever holds the name, from other
//! addresses, so in other flows: they and the answers to them are one-way entries,
//! without `no_response` / `no_request`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use reef_reassembly::{Dir, Endpoint};
use reef_schema::{Entry, Flags, Protocol, Transport};
use rustc_hash::FxHasher;

use super::wire::{self, Message};
use crate::Output;

/// Queries waiting for a response per flow; past this the oldest is given up.
pub const MAX_PENDING_QUERIES: usize = 256;
/// A query repeated (same id, same question) sooner than this is a retransmission of
/// the waiting one; later, a new attempt after the first was given up.
pub const RETRANSMIT_WINDOW_NS: i64 = 5_000_000_000;
/// Retransmissions remembered per waiting query; further ones are emitted at once.
pub const MAX_RETRANSMISSIONS_KEPT: usize = 8;
/// Answered queries remembered per flow, to recognise a duplicate response.
pub const MAX_ANSWERED_REMEMBERED: usize = 64;
/// Answers quoted in the summary line (all of them are in `dns_answers`).
pub const MAX_ANSWERS_IN_SUMMARY: usize = 3;

/// How the flow's DNS is labelled: port 5353 is multicast DNS (RFC 6762), port 5355
/// link-local multicast name resolution (RFC 4795); the wire format is the same. A
/// flow with port 53 on either side is plain DNS, whatever the other port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    Dns,
    Mdns,
    Llmnr,
}

impl Label {
    pub(crate) fn from_ports(a: u16, b: u16) -> Label {
        if a == 53 || b == 53 {
            Label::Dns
        } else if a == 5353 || b == 5353 {
            Label::Mdns
        } else if a == 5355 || b == 5355 {
            Label::Llmnr
        } else {
            Label::Dns
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Label::Dns => "",
            Label::Mdns => "mDNS ",
            Label::Llmnr => "LLMNR ",
        }
    }
}

/// The flow the messages belong to.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// `endpoints[d]` sends direction `d`.
    pub endpoints: [Endpoint; 2],
    pub transport: Transport,
    pub label: Label,
}

impl Link {
    pub(crate) fn new(endpoints: [Endpoint; 2], transport: Transport) -> Link {
        Link {
            label: Label::from_ports(endpoints[0].port, endpoints[1].port),
            endpoints,
            transport,
        }
    }
}

/// One message as it was on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wire {
    /// First and last byte seen (the same for a datagram).
    pub start_ts: i64,
    pub end_ts: i64,
    /// Bytes on the wire: the DNS message, plus the length prefix over TCP.
    pub size: u64,
    /// Damage seen while reading it (malformed, gap, cut).
    pub flags: Flags,
}

#[derive(Debug)]
struct Pending {
    dir: Dir,
    wire: Wire,
    msg: Message,
    retransmits: Vec<Wire>,
}

#[derive(Debug)]
struct Answered {
    /// Direction of the query.
    dir: Dir,
    id: u16,
    question: Option<(String, u16)>,
    resp_ts: i64,
    digest: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Transactions {
    pending: VecDeque<Pending>,
    answered: VecDeque<Answered>,
}

fn question_key(m: &Message) -> Option<(String, u16)> {
    m.first_question()
        .map(|q| (q.name.to_ascii_lowercase(), q.qtype))
}

/// The same question (names compared without case: resolvers randomise it, RFC 0x20
/// draft), or a response that carries none (a FORMERR may not).
fn answers(query: &Message, resp: &Message) -> bool {
    match (query.first_question(), resp.first_question()) {
        (Some(q), Some(r)) => q.qtype == r.qtype && q.name.eq_ignore_ascii_case(&r.name),
        _ => true,
    }
}

fn digest(m: &Message) -> u64 {
    let mut h = FxHasher::default();
    m.rcode().hash(&mut h);
    m.answers_read.hash(&mut h);
    for a in &m.answers {
        a.name.to_ascii_lowercase().hash(&mut h);
        a.rtype.hash(&mut h);
        a.data.hash(&mut h);
    }
    h.finish()
}

fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

impl Transactions {
    /// One message sent by `dir`.
    pub(crate) fn message(
        &mut self,
        link: &Link,
        dir: Dir,
        wire: Wire,
        msg: Message,
        out: &mut Output,
    ) {
        let to_group = is_group(link.endpoints[dir.flip().index()].ip);
        if !msg.header.is_response() {
            self.query(link, dir, wire, msg, to_group, out);
        } else {
            self.response(link, dir, wire, msg, to_group, out);
        }
    }

    fn query(
        &mut self,
        link: &Link,
        dir: Dir,
        wire: Wire,
        msg: Message,
        to_group: bool,
        out: &mut Output,
    ) {
        if to_group {
            let e = build(
                link,
                dir,
                Some((&wire, &msg)),
                None,
                Flags::empty(),
                Kind::Query,
                &["multicast; answers come from other addresses, unpaired".into()],
            );
            out.entries.emit(e);
            return;
        }
        let same = self.pending.iter().position(|p| {
            p.dir == dir
                && p.msg.header.id == msg.header.id
                && question_key(&p.msg) == question_key(&msg)
        });
        if let Some(i) = same {
            let since = wire.start_ts - self.pending[i].wire.start_ts;
            if since < RETRANSMIT_WINDOW_NS {
                let p = &mut self.pending[i];
                if p.retransmits.len() < MAX_RETRANSMISSIONS_KEPT {
                    p.retransmits.push(wire);
                } else {
                    let note = format!("retransmission {} after the first copy", duration(since));
                    let e = build(
                        link,
                        dir,
                        Some((&wire, &msg)),
                        None,
                        Flags::NO_RESPONSE,
                        Kind::Paired,
                        &[note],
                    );
                    out.entries.emit(e);
                }
                return;
            }
            if let Some(old) = self.pending.remove(i) {
                let note = format!("asked again {} later with the same id", duration(since));
                self.give_up(link, old, Flags::NO_RESPONSE, &note, out);
            }
        }
        if self.pending.len() >= MAX_PENDING_QUERIES
            && let Some(old) = self.pending.pop_front()
        {
            self.give_up(
                link,
                old,
                Flags::NO_RESPONSE,
                "too many queries outstanding on the flow",
                out,
            );
        }
        self.pending.push_back(Pending {
            dir,
            wire,
            msg,
            retransmits: Vec::new(),
        });
    }

    fn response(
        &mut self,
        link: &Link,
        dir: Dir,
        wire: Wire,
        msg: Message,
        to_group: bool,
        out: &mut Output,
    ) {
        let asked = self.pending.iter().position(|p| {
            p.dir == dir.flip() && p.msg.header.id == msg.header.id && answers(&p.msg, &msg)
        });
        if let Some(p) = asked.and_then(|i| self.pending.remove(i)) {
            let e = build(
                link,
                p.dir,
                Some((&p.wire, &p.msg)),
                Some((&wire, &msg)),
                Flags::empty(),
                Kind::Paired,
                &[],
            );
            out.entries.emit(e);
            for r in &p.retransmits {
                let note = format!(
                    "retransmission {} after the first copy, which got the response",
                    duration(r.start_ts - p.wire.start_ts)
                );
                let e = build(
                    link,
                    p.dir,
                    Some((r, &p.msg)),
                    None,
                    Flags::NO_RESPONSE,
                    Kind::Paired,
                    &[note],
                );
                out.entries.emit(e);
            }
            if self.answered.len() >= MAX_ANSWERED_REMEMBERED {
                self.answered.pop_front();
            }
            self.answered.push_back(Answered {
                dir: p.dir,
                id: msg.header.id,
                question: question_key(&p.msg),
                resp_ts: wire.start_ts,
                digest: digest(&msg),
            });
            return;
        }
        let key = question_key(&msg);
        let earlier = self.answered.iter().rev().find(|a| {
            a.dir == dir.flip() && a.id == msg.header.id && (key.is_none() || a.question == key)
        });
        if let Some(a) = earlier {
            out.stats.dns.duplicate_responses += 1;
            if a.digest == digest(&msg) {
                return;
            }
            out.stats.dns.duplicate_responses_differing += 1;
            let note = format!(
                "duplicate response: the query was answered {} earlier; different answers",
                duration(wire.start_ts - a.resp_ts)
            );
            let e = build(
                link,
                dir.flip(),
                None,
                Some((&wire, &msg)),
                Flags::NO_REQUEST,
                Kind::Paired,
                &[note],
            );
            out.entries.emit(e);
            return;
        }
        if to_group || link.label != Label::Dns {
            let note = if to_group {
                "multicast"
            } else {
                "its query went to the multicast group (another flow)"
            };
            let e = build(
                link,
                dir,
                None,
                Some((&wire, &msg)),
                Flags::empty(),
                Kind::Response,
                &[note.into()],
            );
            out.entries.emit(e);
            return;
        }
        out.stats.dns.responses_without_query += 1;
    }

    fn give_up(&mut self, link: &Link, p: Pending, flags: Flags, note: &str, out: &mut Output) {
        let e = build(
            link,
            p.dir,
            Some((&p.wire, &p.msg)),
            None,
            flags,
            Kind::Paired,
            &[note.to_string()],
        );
        out.entries.emit(e);
        for r in &p.retransmits {
            let note = format!(
                "retransmission {} after the first copy; {note}",
                duration(r.start_ts - p.wire.start_ts)
            );
            let e = build(
                link,
                p.dir,
                Some((r, &p.msg)),
                None,
                flags,
                Kind::Paired,
                &[note],
            );
            out.entries.emit(e);
        }
    }

    /// Queries waiting longer than the response timeout are emitted `no_response`.
    pub(crate) fn tick(&mut self, link: &Link, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        if self.pending.iter().any(|p| now - p.wire.start_ts > timeout) {
            let (late, keep): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| now - p.wire.start_ts > timeout);
            self.pending = keep;
            let note = format!("no response within {}", duration(timeout));
            for p in late {
                self.give_up(link, p, Flags::NO_RESPONSE | Flags::TIMEOUT, &note, out);
            }
        }
        while self
            .answered
            .front()
            .is_some_and(|a| now - a.resp_ts > timeout)
        {
            self.answered.pop_front();
        }
    }

    /// The flow is gone at `now`: every waiting query is emitted `no_response` (and
    /// `timeout` when it waited longer than the response timeout: a UDP flow is closed
    /// by being idle).
    pub(crate) fn close(&mut self, link: &Link, now: i64, out: &mut Output) {
        let timeout = out.limits.response_timeout_ns;
        while let Some(p) = self.pending.pop_front() {
            if now - p.wire.start_ts > timeout {
                let note = format!("no response within {}", duration(timeout));
                self.give_up(link, p, Flags::NO_RESPONSE | Flags::TIMEOUT, &note, out);
            } else {
                let note = "no response before the end of the flow";
                self.give_up(link, p, Flags::NO_RESPONSE, note, out);
            }
        }
        self.answered.clear();
    }
}

/// How an entry's messages relate, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A query and its response, or one of them with the other missing.
    Paired,
    /// A one-way multicast query.
    Query,
    /// A one-way response (mDNS announcement, LLMNR answer to a multicast query).
    Response,
}

/// Time as people read it: µs, ms or s.
pub fn duration(ns: i64) -> String {
    let ns = ns.max(0);
    if ns < 1_000_000 {
        format!("{} µs", ns / 1000)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.1} s", ns as f64 / 1e9)
    }
}

/// One entry. `client` is the direction of the query (or the side a lone response
/// went to); one-way entries (`Kind::Query`, `Kind::Response`) go from their sender.
fn build(
    link: &Link,
    client: Dir,
    query: Option<(&Wire, &Message)>,
    resp: Option<(&Wire, &Message)>,
    extra: Flags,
    kind: Kind,
    notes: &[String],
) -> Entry {
    let c = link.endpoints[client.index()];
    let s = link.endpoints[client.flip().index()];
    let mut flags = extra;
    let mut e = Entry {
        protocol: match link.label {
            Label::Dns => Protocol::Dns,
            Label::Mdns => Protocol::Mdns,
            Label::Llmnr => Protocol::Llmnr,
        },
        transport: link.transport,
        src_ip: c.ip,
        src_port: Some(c.port),
        dst_ip: s.ip,
        dst_port: Some(s.port),
        ..Entry::default()
    };
    if let Some((w, _)) = query {
        e.timestamp = w.start_ts;
        e.request_size = Some(w.size);
        flags |= w.flags;
    }
    if let Some((w, m)) = resp {
        if query.is_none() {
            e.timestamp = w.start_ts;
        }
        e.response_size = Some(w.size);
        flags |= w.flags;
        if let Some((q, _)) = query {
            e.elapsed_time = Some((w.end_ts - q.start_ts).max(0) / 1000);
        }
        let rcode = m.rcode();
        e.status_code = Some(i32::from(rcode));
        e.dns_rcode = Some(wire::rcode_name(rcode));
        e.dns_answers = Some(m.answers.iter().map(wire::Record::line).collect());
    }
    // The question as the query asked it; a lone response repeats it.
    let asked = query.or(resp).map(|(_, m)| m);
    if let Some(m) = asked {
        if let Some(q) = m.first_question() {
            e.method = Some(wire::type_name(q.qtype));
            e.path = Some(q.name.clone());
        } else if let Some(a) = resp.and_then(|(_, r)| r.answers.first()) {
            // mDNS announcements carry no question: the first record stands for it.
            e.method = Some(wire::type_name(a.rtype));
            e.path = Some(a.name.clone());
        }
        e.dns_questions = Some(
            m.questions
                .iter()
                .map(|q| format!("{} {}", q.name, wire::type_name(q.qtype)))
                .collect(),
        );
    }
    e.summary = Some(summary(
        link,
        query.map(|q| q.1),
        resp.map(|r| r.1),
        kind,
        notes,
    ));
    e.flags = flags;
    e.incomplete = flags.intersects(Flags::INCOMPLETE);
    e
}

fn summary(
    link: &Link,
    query: Option<&Message>,
    resp: Option<&Message>,
    kind: Kind,
    notes: &[String],
) -> String {
    let mut s = String::from(link.label.prefix());
    match kind {
        Kind::Query => s.push_str("query "),
        Kind::Response => s.push_str("response "),
        Kind::Paired => {}
    }
    let Some(m) = query.or(resp) else {
        return s;
    };
    if m.header.opcode() != 0 {
        s.push_str(&wire::opcode_name(m.header.opcode()));
        s.push(' ');
    }
    match m.first_question() {
        None if kind == Kind::Response => s.truncate(s.trim_end().len()),
        Some(q) => {
            let _ = write!(s, "{} {}", wire::type_name(q.qtype), q.name);
            if q.qclass & 0x7fff != 1 {
                let _ = write!(s, " class {}", wire::class_name(q.qclass));
            }
            if link.label == Label::Mdns && q.qclass & 0x8000 != 0 && !m.header.is_response() {
                s.push_str(" (unicast response requested)");
            }
        }
        None => s.push_str("(no question)"),
    }
    if m.header.qdcount > 1 {
        let _ = write!(s, " +{} questions", m.header.qdcount - 1);
    }
    if let Some(subnet) = m.edns.as_ref().and_then(|e| e.client_subnet.as_ref()) {
        let _ = write!(s, " [ECS {subnet}]");
    }
    match resp {
        Some(r) => {
            let _ = write!(s, " → {}", wire::rcode_name(r.rcode()));
            if r.header.truncated() {
                s.push_str(", truncated (TC)");
            }
            match r.answers_read {
                0 => s.push_str(", no answers"),
                1 => s.push_str(", 1 answer: "),
                n => {
                    let _ = write!(s, ", {n} answers: ");
                }
            }
            // Signatures and denial-of-existence records say little in one line.
            let mut quoted: Vec<&wire::Record> = r
                .answers
                .iter()
                .filter(|a| !matches!(a.rtype, 46 | 47 | 50))
                .take(MAX_ANSWERS_IN_SUMMARY)
                .collect();
            if quoted.is_empty() {
                quoted = r.answers.iter().take(MAX_ANSWERS_IN_SUMMARY).collect();
            }
            let shown = quoted.len();
            for (i, a) in quoted.into_iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                let data: String = a.data.chars().take(80).collect();
                let _ = write!(s, "{} {}", wire::type_name(a.rtype), data);
                if a.data.chars().count() > 80 {
                    s.push('…');
                }
            }
            if r.answers_read > shown {
                s.push_str(", …");
            }
            if let Some((code, text)) = r.edns.as_ref().and_then(|e| e.ede.as_ref()) {
                let _ = write!(s, " [EDE {code}");
                if !text.is_empty() {
                    let _ = write!(s, ": {text}");
                }
                s.push(']');
            }
        }
        None if kind == Kind::Paired => s.push_str(" → no response"),
        None => {}
    }
    for n in notes {
        s.push_str("; ");
        s.push_str(n);
    }
    s
}
