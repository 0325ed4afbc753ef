//! DNS from bytes: the parser, detection, pairing over UDP and TCP, loss, limits.

use proptest::prelude::*;
use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
use reef_schema::{Entry, Flags, Protocol, Transport};

use super::wire::{self, Looks};
use crate::datagram::{Datagram, DatagramDissector, UdpCtx};
use crate::{Conn, Limits, Output, Probe};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// Builds DNS messages the way a resolver or server writes them.
#[derive(Clone)]
struct Msg {
    id: u16,
    flags: u16,
    questions: Vec<(String, u16)>,
    answers: Vec<Vec<u8>>,
    additional: Vec<Vec<u8>>,
}

fn name(n: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for l in n.split('.').filter(|l| !l.is_empty()) {
        b.push(l.len() as u8);
        b.extend_from_slice(l.as_bytes());
    }
    b.push(0);
    b
}

fn rr(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
    let mut b = owner.to_vec();
    b.extend_from_slice(&rtype.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&ttl.to_be_bytes());
    b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    b.extend_from_slice(rdata);
    b
}

/// A pointer to the first question's name (always at offset 12).
const QNAME_PTR: [u8; 2] = [0xc0, 12];

impl Msg {
    fn query(id: u16, qname: &str, qtype: u16) -> Msg {
        Msg {
            id,
            flags: 0x0100,
            questions: vec![(qname.into(), qtype)],
            answers: vec![],
            additional: vec![],
        }
    }

    fn response(&self, rcode: u16) -> Msg {
        Msg {
            flags: 0x8180 | rcode,
            ..self.clone()
        }
    }

    fn answer(mut self, rtype: u16, rdata: &[u8]) -> Msg {
        self.answers.push(rr(&QNAME_PTR, rtype, 300, rdata));
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        b.extend_from_slice(&(self.questions.len() as u16).to_be_bytes());
        b.extend_from_slice(&(self.answers.len() as u16).to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&(self.additional.len() as u16).to_be_bytes());
        for (n, t) in &self.questions {
            b.extend_from_slice(&name(n));
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&1u16.to_be_bytes());
        }
        for a in self.answers.iter().chain(&self.additional) {
            b.extend_from_slice(a);
        }
        b
    }

    fn tcp(&self) -> Vec<u8> {
        let m = self.bytes();
        let mut b = (m.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(&m);
        b
    }
}

fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port,
    }
}

/// One UDP flow driven datagram by datagram, as `UdpFlows` would.
struct Udp {
    ctx: UdpCtx,
    d: Option<Box<dyn DatagramDissector>>,
    out: Output,
    ts: i64,
}

impl Udp {
    fn new(client: Endpoint, server: Endpoint) -> Udp {
        Udp {
            ctx: UdpCtx {
                id: 1,
                endpoints: [client, server],
            },
            d: None,
            out: Output::new(Limits::default(), "t"),
            ts: 1_000_000_000,
        }
    }

    fn dns() -> Udp {
        Udp::new(ep("10.0.0.1", 40000), ep("10.0.0.53", 53))
    }

    fn after(&mut self, ms: i64) -> &mut Self {
        self.ts += ms * 1_000_000;
        self
    }

    fn send(&mut self, dir: Dir, payload: &[u8]) -> &mut Self {
        self.ts += 1_000_000;
        if self.d.is_none() {
            match super::probe_udp(&self.ctx, dir, payload) {
                Probe::Client(c) => self.d = Some(super::make_udp(c, &self.ctx, &self.out)),
                _ => return self,
            }
        }
        let d = Datagram {
            dir,
            payload,
            ts: self.ts,
        };
        if let Some(x) = self.d.as_mut() {
            x.datagram(&self.ctx, d, &mut self.out);
        }
        self
    }

    fn tick(&mut self, now: i64) -> Vec<Entry> {
        if let Some(x) = self.d.as_mut() {
            x.tick(&self.ctx, now, &mut self.out);
        }
        self.out.entries.drain().collect()
    }

    fn close(&mut self) -> Vec<Entry> {
        if let Some(x) = self.d.as_mut() {
            x.closed(&self.ctx, self.ts, &mut self.out);
        }
        self.out.entries.drain().collect()
    }
}

/// One TCP connection driven at the stream level through detection.
struct Tcp {
    conn: Conn,
    ctx: FlowCtx,
    out: Output,
    off: [u64; 2],
    ts: i64,
}

impl Tcp {
    fn new(midstream: [bool; 2]) -> Tcp {
        Tcp {
            conn: Conn::default(),
            ctx: FlowCtx {
                id: 1,
                endpoints: [ep("10.0.0.1", 40000), ep("10.0.0.53", 53)],
                opener_known: true,
                midstream,
            },
            out: Output::new(Limits::default(), "t"),
            off: [0, 0],
            ts: 1_000_000_000,
        }
    }

    fn send(&mut self, dir: Dir, data: &[u8]) -> &mut Self {
        self.ts += 1_000_000;
        let i = dir.index();
        let ev = StreamEvent::Data {
            dir,
            offset: self.off[i],
            data,
            ts: self.ts,
            peer_ack: Some(self.off[1 - i]),
        };
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self.off[i] += data.len() as u64;
        self
    }

    fn lose(&mut self, dir: Dir, len: u64) -> &mut Self {
        let i = dir.index();
        let ev = StreamEvent::Gap {
            dir,
            offset: self.off[i],
            len,
            ts: self.ts,
        };
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self.off[i] += len;
        self
    }

    fn close(&mut self) -> Vec<Entry> {
        for dir in [C, S] {
            let ev = StreamEvent::End {
                dir,
                reason: reef_reassembly::EndReason::Fin,
                ts: self.ts,
            };
            self.conn.on_event(&self.ctx, ev, &mut self.out);
        }
        let stats = reef_reassembly::FlowStats::default();
        self.conn.on_event(
            &self.ctx,
            StreamEvent::Closed {
                stats: &stats,
                ts: self.ts,
            },
            &mut self.out,
        );
        self.out.entries.drain().collect()
    }
}

fn a(ip: [u8; 4]) -> Vec<u8> {
    ip.to_vec()
}

// ---- the parser ----

#[test]
fn parses_questions_and_answers_with_compression() {
    let q = Msg::query(0x1234, "www.example.com", 1);
    let r = q
        .response(0)
        .answer(5, &[3, b'w', b'e', b'b', 0xc0, 16])
        .answer(1, &a([93, 184, 216, 34]));
    let m = wire::parse(&r.bytes()).unwrap();
    assert!(!m.malformed && !m.cut);
    assert_eq!(m.questions[0].name, "www.example.com");
    let lines: Vec<_> = m.answers.iter().map(wire::Record::line).collect();
    assert_eq!(
        lines,
        [
            "www.example.com CNAME web.example.com",
            "www.example.com A 93.184.216.34"
        ]
    );
}

#[test]
fn record_data_in_presentation_format() {
    let q = Msg::query(1, "example.com", 255);
    let mut mx = 10u16.to_be_bytes().to_vec();
    mx.extend_from_slice(&name("mail.example.com"));
    let mut srv = Vec::new();
    for v in [1u16, 5, 5060] {
        srv.extend_from_slice(&v.to_be_bytes());
    }
    srv.extend_from_slice(&name("sip.example.com"));
    let mut soa = name("ns1.example.com");
    soa.extend_from_slice(&[0xc0, 12]);
    for v in [2024010101u32, 7200, 3600, 1209600, 300] {
        soa.extend_from_slice(&v.to_be_bytes());
    }
    let txt = [&[5u8][..], b"hello", &[7], b"a \"q\" \\"].concat();
    let aaaa: Vec<u8> = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    let mut https = 1u16.to_be_bytes().to_vec();
    https.push(0);
    https.extend_from_slice(&[0, 1, 0, 6, 2, b'h', b'3', 2, b'h', b'2']);
    https.extend_from_slice(&[0, 4, 0, 4, 1, 2, 3, 4]);
    let caa = [&[0u8, 5][..], b"issue", b"letsencrypt.org"].concat();
    let r = q
        .response(0)
        .answer(15, &mx)
        .answer(33, &srv)
        .answer(6, &soa)
        .answer(16, &txt)
        .answer(28, &aaaa)
        .answer(65, &https)
        .answer(257, &caa)
        .answer(65280, &[0xde, 0xad]);
    let m = wire::parse(&r.bytes()).unwrap();
    let data: Vec<_> = m.answers.iter().map(|a| a.data.as_str()).collect();
    assert_eq!(
        data,
        [
            "10 mail.example.com",
            "1 5 5060 sip.example.com",
            "ns1.example.com example.com 2024010101 7200 3600 1209600 300",
            "\"hello\" \"a \\\"q\\\" \\\\\"",
            "2001:db8::1",
            "1 . alpn=h3,h2 ipv4hint=1.2.3.4",
            "0 issue \"letsencrypt.org\"",
            "\\# 2 DEAD",
        ]
    );
    assert_eq!(wire::type_name(65280), "TYPE65280");
    assert_eq!(wire::type_name(65), "HTTPS");
    assert_eq!(wire::rcode_name(3), "NXDOMAIN");
}

#[test]
fn compression_loops_and_forward_pointers_are_refused() {
    let mut b = Msg::query(1, "a", 1).bytes();
    // The question name becomes a pointer to itself.
    b[12] = 0xc0;
    b[13] = 12;
    assert_eq!(
        wire::read_name(&b, 12, None),
        Err(wire::ParseError::BadPointer)
    );
    // Two names pointing at each other: the second points back at the first, which
    // points forward to the second.
    let mut m = vec![0u8; 12];
    m.extend_from_slice(&[0xc0, 14, 0xc0, 12]);
    assert_eq!(
        wire::read_name(&m, 12, None),
        Err(wire::ParseError::BadPointer)
    );
    // A long backward chain stops at the pointer limit.
    let mut chain = vec![0u8; 12];
    chain.extend_from_slice(&[1, b'x', 0]);
    for i in 0..40u16 {
        let target = if i == 0 { 12 } else { 15 + (i - 1) * 2 };
        chain.extend_from_slice(&(0xc000 | target).to_be_bytes());
    }
    let last = chain.len() - 2;
    assert_eq!(
        wire::read_name(&chain, last, None),
        Err(wire::ParseError::TooManyPointers)
    );
    const { assert!(wire::MAX_COMPRESSION_POINTERS < 40) };
}

#[test]
fn names_keep_case_and_escape_odd_bytes() {
    let mut b = Msg::query(1, "WwW.ExAmple.com", 1).bytes();
    let m = wire::parse(&b).unwrap();
    assert_eq!(m.questions[0].name, "WwW.ExAmple.com");
    // A dot inside a label and a control byte.
    b[13] = b'.';
    b[14] = 0x01;
    let m = wire::parse(&b).unwrap();
    assert_eq!(m.questions[0].name, "\\.\\001W.ExAmple.com");
    let root = Msg::query(1, "", 2).bytes();
    assert_eq!(wire::parse(&root).unwrap().questions[0].name, ".");
}

#[test]
fn a_cut_message_keeps_what_arrived() {
    let r = Msg::query(7, "example.com", 1)
        .response(0)
        .answer(1, &a([1, 2, 3, 4]))
        .answer(1, &a([5, 6, 7, 8]))
        .bytes();
    let m = wire::parse(&r[..r.len() - 3]).unwrap();
    assert!(m.cut && !m.malformed);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].data, "1.2.3.4");
}

#[test]
fn edns_extends_the_rcode_and_carries_client_subnet() {
    let q = Msg::query(9, "example.com", 1);
    let mut r = q.response(0);
    // OPT: udp 1232, ext rcode 1 (BADVERS = 16 with header rcode 0), ECS 192.0.2.0/24.
    let ecs = [0u8, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
    r.additional.push(rr(&[0], 41, 0x0100_0000, &ecs));
    let mut b = r.bytes();
    // class of OPT = udp size
    let n = b.len();
    b[n - ecs.len() - 8] = 0x04;
    b[n - ecs.len() - 7] = 0xd0;
    let m = wire::parse(&b).unwrap();
    let e = m.edns.as_ref().unwrap();
    assert_eq!(e.udp_size, 1232);
    assert_eq!(e.client_subnet.as_deref(), Some("192.0.2.0/24"));
    assert_eq!(m.rcode(), 16);
    assert_eq!(wire::rcode_name(m.rcode()), "BADVERS");
}

// ---- detection ----

#[test]
fn detection_wants_a_header_and_a_question_that_parse() {
    let q = Msg::query(1, "example.com", 1).bytes();
    assert_eq!(
        wire::looks_like_dns(&q, q.len()),
        Looks::Dns {
            response: false,
            questions: 1
        }
    );
    assert_eq!(wire::looks_like_dns(&q[..20], q.len()), Looks::Incomplete);
    assert_eq!(wire::looks_like_dns(&q[..20], 20), Looks::No);
    // Trailing bytes make a datagram something else.
    let mut extra = q.clone();
    extra.push(0);
    assert_eq!(wire::looks_like_dns(&extra, extra.len()), Looks::No);
    // Text protocols and NetBIOS do not pass.
    assert_eq!(
        wire::looks_like_dns(b"M-SEARCH * HTTP/1.1\r\nHOST: x\r\n\r\n", 33),
        Looks::No
    );
    let nbns = Msg::query(1, "EBEFEMEFEMEFEMEFEMEFEMEFEMEFEMAA", 32).bytes();
    assert_eq!(wire::looks_like_dns(&nbns, nbns.len()), Looks::No);
    // A class that does not exist.
    let mut bad = q;
    let n = bad.len();
    bad[n - 1] = 9;
    assert_eq!(wire::looks_like_dns(&bad, bad.len()), Looks::No);
}

#[test]
fn tcp_probe_reads_the_length_prefix() {
    let ctx = Tcp::new([false, false]).ctx;
    let q = Msg::query(1, "example.com", 28).tcp();
    assert_eq!(super::probe_tcp(&ctx, C, &q), Probe::Client(C));
    assert_eq!(super::probe_tcp(&ctx, C, &q[..1]), Probe::NotYet);
    assert_eq!(super::probe_tcp(&ctx, C, &q[..10]), Probe::NotYet);
    let r = Msg::query(1, "example.com", 28).response(0).tcp();
    assert_eq!(super::probe_tcp(&ctx, S, &r), Probe::Client(C));
    assert_eq!(
        super::probe_tcp(&ctx, C, b"GET / HTTP/1.1\r\n\r\n"),
        Probe::No
    );
    assert_eq!(
        super::probe_tcp(
            &ctx,
            C,
            &[0x16, 3, 1, 2, 0, 1, 0, 1, 0xfc, 3, 3, 0, 0, 0, 0, 0]
        ),
        Probe::No
    );
}

// ---- pairing over UDP ----

#[test]
fn udp_query_and_response_make_one_entry() {
    let q = Msg::query(0xbeef, "www.example.com", 1);
    let r = q.response(0).answer(1, &a([93, 184, 216, 34]));
    let mut u = Udp::dns();
    u.send(C, &q.bytes()).send(S, &r.bytes());
    let e = u.close();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!(e.protocol, Protocol::Dns);
    assert_eq!(e.transport, Transport::Udp);
    assert_eq!(e.method.as_deref(), Some("A"));
    assert_eq!(e.path.as_deref(), Some("www.example.com"));
    assert_eq!(e.status_code, Some(0));
    assert_eq!(e.dns_rcode.as_deref(), Some("NOERROR"));
    assert_eq!(
        e.dns_questions.as_deref(),
        Some(&["www.example.com A".to_string()][..])
    );
    assert_eq!(
        e.dns_answers.as_deref(),
        Some(&["www.example.com A 93.184.216.34".to_string()][..])
    );
    assert_eq!(e.src_port, Some(40000));
    assert_eq!(e.dst_port, Some(53));
    assert_eq!(e.elapsed_time, Some(1000));
    assert_eq!(e.request_size, Some(q.bytes().len() as u64));
    assert!(e.flags.is_empty() && !e.incomplete);
    assert!(
        e.summary
            .as_deref()
            .unwrap()
            .contains("A www.example.com → NOERROR, 1 answer: A 93.184.216.34"),
        "{:?}",
        e.summary
    );
}

#[test]
fn responses_pair_by_id_in_any_order() {
    let q1 = Msg::query(1, "a.example", 1);
    let q2 = Msg::query(2, "b.example", 28);
    let q3 = Msg::query(3, "c.example", 15);
    let mut u = Udp::dns();
    u.send(C, &q1.bytes())
        .send(C, &q2.bytes())
        .send(C, &q3.bytes());
    u.send(S, &q3.response(3).bytes())
        .send(S, &q1.response(0).bytes())
        .send(S, &q2.response(2).bytes());
    let e = u.close();
    let got: Vec<_> = e
        .iter()
        .map(|e| {
            (
                e.path.clone().unwrap(),
                e.method.clone().unwrap(),
                e.status_code.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("c.example".to_string(), "MX".to_string(), 3),
            ("a.example".to_string(), "A".to_string(), 0),
            ("b.example".to_string(), "AAAA".to_string(), 2),
        ]
    );
    assert!(e.iter().all(|e| e.flags.is_empty()));
}

#[test]
fn a_response_to_another_question_is_not_paired() {
    let q = Msg::query(5, "a.example", 1);
    let spoof = Msg::query(5, "b.example", 1).response(0);
    let mut u = Udp::dns();
    u.send(C, &q.bytes()).send(S, &spoof.bytes());
    let e = u.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::NO_RESPONSE);
    assert_eq!(e[0].path.as_deref(), Some("a.example"));
    assert_eq!(u.out.stats.dns.responses_without_query, 1);
}

#[test]
fn unanswered_queries_time_out_and_lone_responses_are_counted() {
    let mut u = Udp::dns();
    let q = Msg::query(1, "slow.example", 1);
    u.send(C, &q.bytes());
    let t0 = u.ts;
    assert!(u.tick(t0 + 59_000_000_000).is_empty());
    let e = u.tick(t0 + 61_000_000_000);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::NO_RESPONSE | Flags::TIMEOUT);
    assert!(e[0].incomplete);
    assert_eq!(e[0].status_code, None);

    let mut u = Udp::dns();
    u.send(S, &Msg::query(2, "x.example", 1).response(3).bytes());
    assert!(u.close().is_empty());
    assert_eq!(u.out.stats.dns.responses_without_query, 1);
}

#[test]
fn retransmitted_queries_follow_the_5_second_rule() {
    // Within the window: the first copy gets the response, the copy is on its own.
    let q = Msg::query(7, "r.example", 1);
    let mut u = Udp::dns();
    u.send(C, &q.bytes())
        .after(1000)
        .send(C, &q.bytes())
        .send(S, &q.response(0).bytes());
    let e = u.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].flags, Flags::empty());
    assert_eq!(e[0].elapsed_time, Some(1_002_000));
    assert_eq!(e[1].flags, Flags::NO_RESPONSE);
    assert!(e[1].summary.as_deref().unwrap().contains("retransmission"));
    assert!(e[1].timestamp > e[0].timestamp);

    // After it: the first attempt was given up, the second gets the response.
    let mut u = Udp::dns();
    u.send(C, &q.bytes())
        .after(5000)
        .send(C, &q.bytes())
        .send(S, &q.response(0).bytes());
    let e = u.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].flags, Flags::NO_RESPONSE);
    assert_eq!(e[1].flags, Flags::empty());
    assert_eq!(e[1].elapsed_time, Some(1000));
}

#[test]
fn a_second_response_is_counted_and_shown_only_when_its_answers_differ() {
    let q = Msg::query(7, "d.example", 1);
    let r = q.response(0).answer(1, &a([1, 1, 1, 1]));
    let other = q.response(0).answer(1, &a([6, 6, 6, 6]));
    let mut u = Udp::dns();
    u.send(C, &q.bytes())
        .send(S, &r.bytes())
        .send(S, &r.bytes())
        .send(S, &other.bytes());
    let e = u.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].flags, Flags::empty());
    assert_eq!(e[1].flags, Flags::NO_REQUEST);
    let s = e[1].summary.as_deref().unwrap();
    assert!(
        s.contains("duplicate response")
            && s.contains("different answers")
            && s.contains("6.6.6.6"),
        "{s}"
    );
    assert_eq!(u.out.stats.dns.duplicate_responses, 2);
    assert_eq!(u.out.stats.dns.duplicate_responses_differing, 1);
}

#[test]
fn truncated_responses_are_said_so_in_the_summary_not_flagged_incomplete() {
    let q = Msg::query(1, "big.example", 16);
    let mut r = q.response(0);
    r.flags |= 0x0200;
    let mut u = Udp::dns();
    u.send(C, &q.bytes()).send(S, &r.bytes());
    let e = u.close();
    assert!(e[0].summary.as_deref().unwrap().contains("truncated (TC)"));
    assert!(!e[0].incomplete);
}

#[test]
fn pending_queries_are_bounded() {
    let mut u = Udp::dns();
    for id in 0..(super::MAX_PENDING_QUERIES as u16 + 10) {
        u.send(C, &Msg::query(id, "many.example", 1).bytes());
    }
    let early: Vec<Entry> = u.out.entries.drain().collect();
    assert_eq!(early.len(), 10);
    assert!(early.iter().all(|e| e.flags == Flags::NO_RESPONSE));
    assert_eq!(u.close().len(), super::MAX_PENDING_QUERIES);
}

#[test]
fn mdns_and_llmnr_multicast_are_one_way_and_labelled() {
    let mut u = Udp::new(ep("192.168.1.5", 5353), ep("224.0.0.251", 5353));
    let mut q = Msg::query(0, "_ipp._tcp.local", 12);
    q.flags = 0;
    u.send(C, &q.bytes());
    let mut ann = q.response(0).answer(12, &name("printer._ipp._tcp.local"));
    ann.flags = 0x8400;
    ann.questions.clear();
    ann.answers = vec![rr(
        &name("_ipp._tcp.local"),
        12,
        120,
        &name("printer._ipp._tcp.local"),
    )];
    u.send(C, &ann.bytes());
    let e = u.close();
    assert_eq!(e.len(), 2);
    assert!(e.iter().all(|e| e.flags.is_empty()));
    assert!(e.iter().all(|e| e.protocol == Protocol::Mdns));
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("mDNS query PTR _ipp._tcp.local")
    );
    assert!(
        e[1].summary
            .as_deref()
            .unwrap()
            .starts_with("mDNS response")
    );
    assert_eq!(e[1].method.as_deref(), Some("PTR"));
    assert_eq!(e[1].path.as_deref(), Some("_ipp._tcp.local"));

    let mut u = Udp::new(ep("192.168.1.5", 50000), ep("224.0.0.252", 5355));
    u.send(C, &Msg::query(3, "wpad", 1).bytes());
    let e = u.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].protocol, Protocol::Llmnr);
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .starts_with("LLMNR query A wpad")
    );
    assert!(!e[0].incomplete);
}

// ---- TCP ----

#[test]
fn tcp_several_messages_per_segment_and_across_segments() {
    let qs: Vec<Msg> = (0..5)
        .map(|i| Msg::query(i, &format!("{i}.example"), 1))
        .collect();
    let all: Vec<u8> = qs.iter().flat_map(Msg::tcp).collect();
    let resp: Vec<u8> = qs.iter().rev().flat_map(|q| q.response(3).tcp()).collect();
    let mut t = Tcp::new([false, false]);
    t.send(C, &all);
    // Responses cut at odd places, a length prefix split in two.
    for chunk in resp.chunks(7) {
        t.send(S, chunk);
    }
    let e = t.close();
    assert_eq!(e.len(), 5);
    assert!(
        e.iter()
            .all(|e| e.transport == Transport::Tcp && e.flags.is_empty())
    );
    assert!(e.iter().all(|e| e.status_code == Some(3)));
    let mut paths: Vec<_> = e.iter().map(|e| e.path.clone().unwrap()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "0.example",
            "1.example",
            "2.example",
            "3.example",
            "4.example"
        ]
    );
    assert_eq!(e[0].request_size, Some(qs[4].tcp().len() as u64));
}

#[test]
fn tcp_loss_inside_a_message_keeps_framing() {
    let q1 = Msg::query(1, "one.example", 1);
    let q2 = Msg::query(2, "two.example", 1);
    let r1 = q1
        .response(0)
        .answer(1, &a([1, 1, 1, 1]))
        .answer(1, &a([2, 2, 2, 2]))
        .tcp();
    let r2 = q2.response(0).tcp();
    let mut t = Tcp::new([false, false]);
    t.send(C, &[q1.tcp(), q2.tcp()].concat());
    // The last 10 bytes of the first response are lost; the second arrives whole.
    t.send(S, &r1[..r1.len() - 10]).lose(S, 10).send(S, &r2);
    let e = t.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path.as_deref(), Some("one.example"));
    assert_eq!(e[0].flags, Flags::RESPONSE_GAP);
    assert_eq!(e[0].response_size, Some(r1.len() as u64));
    assert_eq!(e[1].path.as_deref(), Some("two.example"));
    assert_eq!(e[1].flags, Flags::empty());
}

#[test]
fn tcp_loss_across_a_boundary_resynchronises() {
    let qs: Vec<Msg> = (1..=3)
        .map(|i| Msg::query(i, &format!("q{i}.example"), 1))
        .collect();
    let rs: Vec<Vec<u8>> = qs.iter().map(|q| q.response(0).tcp()).collect();
    let mut t = Tcp::new([false, false]);
    t.send(C, &qs.iter().flat_map(Msg::tcp).collect::<Vec<_>>());
    // The end of the first response and the start of the second are lost.
    t.send(S, &rs[0][..20])
        .lose(S, (rs[0].len() - 20 + 5) as u64);
    t.send(S, &rs[1][5..]).send(S, &rs[2]);
    let e = t.close();
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.path.clone().unwrap_or_default(), e.flags))
        .collect();
    assert_eq!(
        got,
        [
            ("q1.example".to_string(), Flags::RESPONSE_GAP),
            ("q3.example".to_string(), Flags::empty()),
            ("q2.example".to_string(), Flags::NO_RESPONSE),
        ]
    );
}

#[test]
fn tcp_connection_ending_mid_message_is_truncated() {
    let q = Msg::query(1, "cut.example", 1);
    let r = q.response(0).answer(1, &a([9, 9, 9, 9])).tcp();
    let mut t = Tcp::new([false, false]);
    t.send(C, &q.tcp()).send(S, &r[..r.len() - 2]);
    let e = t.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].flags, Flags::TRUNCATED);
    assert_eq!(e[0].status_code, Some(0));
}

#[test]
fn tcp_joined_midstream_finds_the_next_message() {
    let q1 = Msg::query(1, "first.example", 1);
    let q2 = Msg::query(2, "second.example", 1);
    let mut t = Tcp::new([true, true]);
    // The capture starts inside a message: its tail, then whole ones.
    let first = q1.tcp();
    t.send(C, &[&first[9..], &q2.tcp()[..]].concat());
    t.send(S, &q2.response(0).tcp());
    let e = t.close();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].path.as_deref(), Some("second.example"));
    assert_eq!(e[0].flags, Flags::empty());
}

#[test]
fn tcp_long_messages_keep_their_start() {
    let q = Msg::query(1, "zone.example", 252);
    let mut r = q.response(0);
    for i in 0..2000u32 {
        r = r.answer(16, &[&[8u8][..], format!("txt{i:05}").as_bytes()].concat());
    }
    let rb = r.tcp();
    assert!(rb.len() > super::MAX_TCP_MESSAGE_KEPT);
    let mut t = Tcp::new([false, false]);
    t.send(C, &q.tcp());
    for chunk in rb.chunks(1400) {
        t.send(S, chunk);
    }
    let e = t.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].response_size, Some(rb.len() as u64));
    assert!(e[0].flags.is_empty(), "{:?}", e[0].flags);
    let answers = e[0].dns_answers.as_ref().unwrap();
    assert_eq!(answers.len(), wire::MAX_ANSWERS_KEPT);
}

// ---- garbage ----

proptest! {
    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = wire::parse(&b);
        let _ = wire::looks_like_dns(&b, b.len());
        let _ = wire::looks_like_dns(&b, b.len() + 100);
        let mut u = Udp::dns();
        u.send(C, &b).send(S, &b);
        u.close();
        let mut t = Tcp::new([false, true]);
        t.send(C, &b).send(S, &b).lose(S, 3).send(S, &b);
        t.close();
    }

    #[test]
    fn damaged_real_messages_never_panic(cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()) {
        let q = Msg::query(3, "www.example.com", 1);
        let mut r = q.response(0).answer(5, &[3, b'w', b'e', b'b', 0xc0, 16]).answer(1, &a([1, 2, 3, 4])).bytes();
        let i = flip % r.len();
        r[i] = byte;
        r.truncate(cut.max(1).min(r.len()));
        let _ = wire::parse(&r);
        let mut u = Udp::dns();
        u.send(C, &q.bytes()).send(S, &r);
        u.close();
    }

    /// However TCP cuts the stream, the entries are the same.
    #[test]
    fn segmentation_does_not_matter(cuts in proptest::collection::vec(1usize..30, 1..20)) {
        let qs: Vec<Msg> = (0..4).map(|i| Msg::query(i, &format!("s{i}.example"), 1)).collect();
        let req: Vec<u8> = qs.iter().flat_map(Msg::tcp).collect();
        let resp: Vec<u8> = qs.iter().flat_map(|q| q.response(0).answer(1, &a([1, 2, 3, 4])).tcp()).collect();
        let mut t = Tcp::new([false, false]);
        for (data, dir) in [(&req, C), (&resp, S)] {
            let (mut at, mut i) = (0, 0);
            while at < data.len() {
                let n = cuts[i % cuts.len()].min(data.len() - at);
                t.send(dir, &data[at..at + n]);
                at += n;
                i += 1;
            }
        }
        let e = t.close();
        prop_assert_eq!(e.len(), 4);
        prop_assert!(e.iter().all(|e| e.flags.is_empty() && e.status_code == Some(0)));
    }
}
