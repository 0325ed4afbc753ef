//! Kafka from byte streams, built from the protocol's message definitions: headers
//! v0–v2, classic and flexible bodies, topic ids, pairing by correlation id, loss.

use proptest::prelude::*;
use reef_schema::{Entry, Flags};

use super::api;
use crate::Probe;
use crate::framing::sim::{C, S, Sim, check};

/// Field writers for classic and flexible encodings.
#[derive(Default)]
pub(crate) struct W {
    pub b: Vec<u8>,
    pub flexible: bool,
}

impl W {
    pub fn new(flexible: bool) -> W {
        W {
            b: Vec::new(),
            flexible,
        }
    }
    pub fn i8(&mut self, v: i8) -> &mut Self {
        self.b.push(v as u8);
        self
    }
    pub fn i16(&mut self, v: i16) -> &mut Self {
        self.b.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.b.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.b.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn uvarint(&mut self, mut v: u64) -> &mut Self {
        loop {
            let x = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.b.push(x);
                return self;
            }
            self.b.push(x | 0x80);
        }
    }
    pub fn str(&mut self, s: Option<&str>) -> &mut Self {
        match (s, self.flexible) {
            (None, true) => self.uvarint(0),
            (None, false) => self.i16(-1),
            (Some(s), true) => {
                self.uvarint(s.len() as u64 + 1);
                self.b.extend_from_slice(s.as_bytes());
                self
            }
            (Some(s), false) => {
                self.i16(s.len() as i16);
                self.b.extend_from_slice(s.as_bytes());
                self
            }
        }
    }
    pub fn arr(&mut self, n: usize) -> &mut Self {
        if self.flexible {
            self.uvarint(n as u64 + 1)
        } else {
            self.i32(n as i32)
        }
    }
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        if self.flexible {
            self.uvarint(data.len() as u64 + 1);
        } else {
            self.i32(data.len() as i32);
        }
        self.b.extend_from_slice(data);
        self
    }
    pub fn uuid(&mut self, u: [u8; 16]) -> &mut Self {
        self.b.extend_from_slice(&u);
        self
    }
    pub fn tags(&mut self) -> &mut Self {
        if self.flexible {
            self.uvarint(0);
        }
        self
    }
}

pub(crate) fn request(
    key: i16,
    version: i16,
    corr: i32,
    client: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut h = W::new(false);
    h.i16(key).i16(version).i32(corr);
    let hv = api::request_header_version(key, version);
    if hv >= 1 {
        h.str(client);
    }
    if hv >= 2 {
        h.uvarint(0);
    }
    h.b.extend_from_slice(body);
    let mut v = (h.b.len() as u32).to_be_bytes().to_vec();
    v.extend(h.b);
    v
}

pub(crate) fn response(key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let mut h = W::new(false);
    h.i32(corr);
    if api::response_header_flexible(key, version) {
        h.uvarint(0);
    }
    h.b.extend_from_slice(body);
    let mut v = (h.b.len() as u32).to_be_bytes().to_vec();
    v.extend(h.b);
    v
}

pub(crate) fn produce_v9(topics: &[&str]) -> Vec<u8> {
    let mut w = W::new(true);
    w.str(None).i16(-1).i32(30000).arr(topics.len());
    for t in topics {
        w.str(Some(t))
            .arr(1)
            .i32(0)
            .bytes(&[0x55; 70])
            .tags()
            .tags();
    }
    w.tags();
    w.b
}

pub(crate) fn produce_v9_response(errors: &[i16]) -> Vec<u8> {
    let mut w = W::new(true);
    w.arr(errors.len());
    for (i, e) in errors.iter().enumerate() {
        w.str(Some(&format!("t{i}"))).arr(1);
        w.i32(0)
            .i16(*e)
            .i64(100)
            .i64(-1)
            .i64(0)
            .arr(0)
            .str(None)
            .tags();
        w.tags();
    }
    w.i32(0).tags();
    w.b
}

fn api_versions_response() -> Vec<u8> {
    let mut w = W::new(true);
    w.i16(0).arr(2);
    w.i16(0).i16(0).i16(11).tags();
    w.i16(18).i16(0).i16(4).tags();
    w.i32(0).tags();
    w.b
}

fn keys(e: &[Entry]) -> Vec<(Option<&str>, Option<&str>, Option<i32>)> {
    e.iter()
        .map(|e| (e.method.as_deref(), e.path.as_deref(), e.status_code))
        .collect()
}

const ORDERS: [u8; 16] = [
    0x1f, 0x6c, 0x6f, 0x2a, 0x12, 0x34, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3,
];

#[test]
fn api_versions_v3_and_produce_v9() {
    let mut sim = Sim::new(9092);
    let mut av = W::new(true);
    av.str(Some("apache-kafka-java")).str(Some("3.7.0")).tags();
    sim.send(C, &request(18, 3, 1, Some("producer-1"), &av.b))
        .send(S, &response(18, 3, 1, &api_versions_response()))
        .send(
            C,
            &request(
                0,
                9,
                2,
                Some("producer-1"),
                &produce_v9(&["orders", "audit"]),
            ),
        )
        .send(S, &response(0, 9, 2, &produce_v9_response(&[0, 6])));
    assert_eq!(sim.protocol(), Some("kafka"));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("ApiVersions"), None, Some(0)),
            (Some("Produce"), Some("orders"), Some(6)),
        ]
    );
    let p = &e[1];
    assert_eq!(p.kafka_api_key_name.as_deref(), Some("Produce"));
    assert_eq!(p.kafka_api_version, Some(9));
    assert_eq!(p.kafka_client_id.as_deref(), Some("producer-1"));
    assert_eq!(p.kafka_correlation_id, Some(2));
    assert_eq!(
        p.kafka_topics,
        Some(vec!["orders".to_string(), "audit".to_string()])
    );
    assert_eq!(
        p.summary.as_deref(),
        Some(
            "Produce v9 orders, audit [2 partitions] acks=-1 client=producer-1 → error 6 NOT_LEADER_OR_FOLLOWER"
        )
    );
}

#[test]
fn produce_with_acks_zero_gets_no_response_by_design() {
    let mut sim = Sim::new(9092);
    let mut w = W::new(false);
    w.str(None)
        .i16(0)
        .i32(1000)
        .arr(1)
        .str(Some("logs"))
        .arr(1)
        .i32(3)
        .bytes(&[1; 40]);
    sim.send(C, &request(0, 3, 7, Some("rdkafka"), &w.b));
    let e = sim.entries();
    assert_eq!(e.len(), 1, "emitted at once");
    assert_eq!(keys(&e), [(Some("Produce"), Some("logs"), None)]);
    assert!(!e[0].incomplete);
    assert!(sim.close().is_empty());
}

#[test]
fn topic_ids_are_named_from_metadata() {
    let mut sim = Sim::new(9092);
    // Metadata v12: topics by name (id zero), then the response pairs id and name.
    let mut md = W::new(true);
    md.arr(1)
        .uuid([0; 16])
        .str(Some("orders"))
        .tags()
        .i8(1)
        .i8(0)
        .tags();
    let mut r = W::new(true);
    r.i32(0)
        .arr(1)
        .i32(1)
        .str(Some("broker-1"))
        .i32(9092)
        .str(None)
        .tags();
    r.str(Some("cluster")).i32(1);
    r.arr(1).i16(0).str(Some("orders")).uuid(ORDERS).i8(0);
    r.arr(1)
        .i16(0)
        .i32(0)
        .i32(1)
        .i32(5)
        .arr(1)
        .i32(1)
        .arr(1)
        .i32(1)
        .arr(0)
        .tags();
    r.i32(-2147483648).tags();
    r.tags();
    sim.send(C, &request(3, 12, 1, Some("consumer-1"), &md.b))
        .send(S, &response(3, 12, 1, &r.b));
    // Fetch v13 names the topic by id.
    let mut f = W::new(true);
    f.i32(-1).i32(500).i32(1).i32(52428800).i8(0).i32(0).i32(-1);
    f.arr(1)
        .uuid(ORDERS)
        .arr(1)
        .i32(0)
        .i32(5)
        .i64(42)
        .i32(-1)
        .i64(-1)
        .i32(1048576)
        .tags()
        .tags();
    f.arr(0).str(Some("")).tags();
    let mut fr = W::new(true);
    fr.i32(0).i16(0).i32(7).arr(1).uuid(ORDERS).arr(1);
    fr.i32(0)
        .i16(1)
        .i64(50)
        .i64(50)
        .i64(0)
        .arr(0)
        .i32(-1)
        .bytes(&[])
        .tags()
        .tags();
    fr.tags();
    sim.send(C, &request(1, 13, 2, Some("consumer-1"), &f.b))
        .send(S, &response(1, 13, 2, &fr.b));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("Metadata"), Some("orders"), Some(0)),
            (Some("Fetch"), Some("orders"), Some(1)),
        ]
    );
    assert!(
        e[1].summary
            .as_deref()
            .unwrap()
            .ends_with("→ error 1 OFFSET_OUT_OF_RANGE")
    );
}

#[test]
fn unknown_topic_id_is_shown_as_uuid() {
    let mut sim = Sim::new(9092);
    // Version 15 moved the replica id into a tagged field.
    let mut f = W::new(true);
    f.i32(500).i32(1).i32(52428800).i8(0).i32(0).i32(-1);
    f.arr(1)
        .uuid(ORDERS)
        .arr(1)
        .i32(0)
        .i32(5)
        .i64(42)
        .i32(-1)
        .i64(-1)
        .i32(1048576)
        .tags()
        .tags();
    f.arr(0).str(Some("")).tags();
    sim.send(C, &request(1, 15, 9, None, &f.b));
    let e = sim.close();
    assert_eq!(
        e[0].path.as_deref(),
        Some("1f6c6f2a-1234-4567-89ab-cdef00010203")
    );
    assert!(e[0].flags.contains(Flags::NO_RESPONSE));
    assert_eq!(e[0].kafka_client_id, None);
}

#[test]
fn group_apis_and_offsets() {
    let mut sim = Sim::new(9092);
    // OffsetCommit v8 (flexible).
    let mut oc = W::new(true);
    oc.str(Some("payments")).i32(3).str(Some("m-1")).str(None);
    oc.arr(1).str(Some("orders")).arr(2);
    oc.i32(0).i64(10).i32(-1).str(Some("")).tags();
    oc.i32(1).i64(11).i32(-1).str(None).tags();
    oc.tags().tags();
    let mut ocr = W::new(true);
    ocr.i32(0)
        .arr(1)
        .str(Some("orders"))
        .arr(2)
        .i32(0)
        .i16(0)
        .tags()
        .i32(1)
        .i16(25)
        .tags()
        .tags()
        .tags();
    // OffsetFetch v6 (flexible, single group).
    let mut of = W::new(true);
    of.str(Some("payments"))
        .arr(1)
        .str(Some("orders"))
        .arr(1)
        .i32(0)
        .tags()
        .tags();
    let mut ofr = W::new(true);
    ofr.i32(0)
        .arr(1)
        .str(Some("orders"))
        .arr(1)
        .i32(0)
        .i64(10)
        .i32(-1)
        .str(None)
        .i16(0)
        .tags()
        .tags()
        .i16(0)
        .tags();
    // ListOffsets v1 (classic).
    let mut lo = W::new(false);
    lo.i32(-1).arr(1).str(Some("orders")).arr(1).i32(0).i64(-1);
    let mut lor = W::new(false);
    lor.arr(1)
        .str(Some("orders"))
        .arr(1)
        .i32(0)
        .i16(3)
        .i64(-1)
        .i64(-1);
    // Heartbeat v4.
    let mut hb = W::new(true);
    hb.str(Some("payments"))
        .i32(3)
        .str(Some("m-1"))
        .str(None)
        .tags();
    let mut hbr = W::new(true);
    hbr.i32(0).i16(27).tags();
    sim.send(C, &request(8, 8, 1, Some("c"), &oc.b))
        .send(S, &response(8, 8, 1, &ocr.b))
        .send(C, &request(9, 6, 2, Some("c"), &of.b))
        .send(S, &response(9, 6, 2, &ofr.b))
        .send(C, &request(2, 1, 3, Some("c"), &lo.b))
        .send(S, &response(2, 1, 3, &lor.b))
        .send(C, &request(12, 4, 4, Some("c"), &hb.b))
        .send(S, &response(12, 4, 4, &hbr.b));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("OffsetCommit"), Some("orders"), Some(25)),
            (Some("OffsetFetch"), Some("orders"), Some(0)),
            (Some("ListOffsets"), Some("orders"), Some(3)),
            (Some("Heartbeat"), None, Some(27)),
        ]
    );
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("[2 partitions] group=payments")
    );
    assert!(
        e[3].summary
            .as_deref()
            .unwrap()
            .contains("REBALANCE_IN_PROGRESS")
    );
    assert!(!e.iter().any(|x| x.flags.contains(Flags::MALFORMED)));
}

#[test]
fn responses_come_in_order_so_a_skipped_one_was_lost() {
    let mut sim = Sim::new(9092);
    let md = {
        let mut w = W::new(false);
        w.arr(1).str(Some("a"));
        w.b
    };
    sim.send(C, &request(3, 2, 10, Some("c"), &md))
        .send(C, &request(3, 2, 11, Some("c"), &md));
    let mut r = W::new(false);
    r.i32(0).arr(0).str(None).i32(1).arr(0);
    let first = response(3, 2, 10, &r.b);
    sim.lose(S, first.len() as u64)
        .send(S, &response(3, 2, 11, &r.b));
    let e = sim.close();
    check(&e);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].kafka_correlation_id, Some(10));
    assert!(
        e[0].flags
            .contains(Flags::NO_RESPONSE | Flags::RESPONSE_GAP)
    );
    assert_eq!(e[1].kafka_correlation_id, Some(11));
    assert_eq!(e[1].status_code, Some(0));
}

#[test]
fn response_without_request() {
    let mut sim = Sim::midstream(9092);
    let md = {
        let mut w = W::new(false);
        w.arr(1).str(Some("a"));
        w.b
    };
    sim.send(C, &request(3, 2, 12, Some("c"), &md));
    let mut r = W::new(false);
    r.i32(0).arr(0).str(None).i32(1).arr(0);
    sim.send(
        S,
        &[response(3, 2, 11, &r.b), response(3, 2, 12, &r.b)].concat(),
    );
    let e = sim.close();
    check(&e);
    assert!(e[0].flags.contains(Flags::NO_REQUEST));
    assert_eq!(e[0].kafka_correlation_id, Some(11));
    assert_eq!(keys(&e)[1], (Some("Metadata"), Some("a"), Some(0)));
}

#[test]
fn sasl_handshake_v0_tokens_are_not_requests() {
    let mut sim = Sim::new(9092);
    let mut w = W::new(false);
    w.str(Some("PLAIN"));
    let mut r = W::new(false);
    r.i16(0).arr(1).str(Some("PLAIN"));
    sim.send(C, &request(17, 0, 1, Some("c"), &w.b))
        .send(S, &response(17, 0, 1, &r.b));
    // A raw token and its empty answer.
    let token = b"\0user\0secret";
    let mut t = (token.len() as u32).to_be_bytes().to_vec();
    t.extend_from_slice(token);
    sim.send(C, &t).send(S, &[0, 0, 0, 0]);
    let md = {
        let mut w = W::new(false);
        w.arr(0);
        w.b
    };
    let mut mr = W::new(false);
    mr.arr(0).i32(1).arr(0);
    sim.send(C, &request(3, 0, 2, Some("c"), &md))
        .send(S, &response(3, 0, 2, &mr.b));
    let e = sim.close();
    check(&e);
    assert_eq!(
        keys(&e),
        [
            (Some("SaslHandshake"), None, Some(0)),
            (Some("Metadata"), None, Some(0))
        ]
    );
    assert!(e[0].summary.as_deref().unwrap().contains("mechanism=PLAIN"));
    assert!(e[1].summary.as_deref().unwrap().contains("(all topics)"));
}

#[test]
fn big_produce_in_many_segments_with_a_gap() {
    let mut sim = Sim::new(9092);
    let mut w = W::new(false);
    w.str(None)
        .i16(1)
        .i32(1000)
        .arr(1)
        .str(Some("big"))
        .arr(1)
        .i32(0)
        .bytes(&vec![7u8; 200_000]);
    let req = request(0, 7, 5, Some("c"), &w.b);
    sim.send_in(C, &req[..100_000], 1448);
    sim.lose(C, 1448);
    sim.send_in(C, &req[100_000 + 1448..], 1448);
    let mut r = W::new(false);
    r.arr(1)
        .str(Some("big"))
        .arr(1)
        .i32(0)
        .i16(0)
        .i64(1)
        .i64(-1)
        .i64(0)
        .i32(0);
    sim.send(S, &response(0, 7, 5, &r.b));
    let e = sim.close();
    check(&e);
    assert_eq!(keys(&e), [(Some("Produce"), Some("big"), Some(0))]);
    assert!(e[0].flags.contains(Flags::REQUEST_GAP));
    assert_eq!(e[0].request_size, Some(req.len() as u64));
}

#[test]
fn probe() {
    let ctx = Sim::new(9092).ctx;
    let mid = Sim::midstream(9092).ctx;
    let req = request(18, 3, 1, Some("adminclient-1"), &[0, 0, 0]);
    assert_eq!(super::probe(&ctx, C, &req), Probe::Client(C));
    assert_eq!(super::probe(&ctx, C, &req[..9]), Probe::NotYet);
    // An HTTP/2 SETTINGS frame fits a request header by chance: not enough.
    let settings = [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
    assert_ne!(super::probe(&ctx, S, &settings), Probe::Client(S));
    assert_eq!(
        super::probe(&ctx, C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        Probe::No
    );
    // Joined inside a request: the next whole one counts.
    let mut tail = vec![1, 2, 3, 4, 5];
    tail.extend_from_slice(&req);
    assert_eq!(super::probe(&mid, C, &tail), Probe::Client(C));
}

#[test]
fn flexible_versions_and_header_versions() {
    assert!(api::flexible(0, 9) && !api::flexible(0, 8));
    assert!(api::flexible(1, 12) && !api::flexible(1, 11));
    assert!(api::flexible(3, 9) && !api::flexible(3, 8));
    assert!(!api::flexible(17, 1));
    assert!(api::flexible(68, 0) && !api::flexible(53, 0) && api::flexible(53, 1));
    assert_eq!(api::request_header_version(18, 3), 2);
    assert_eq!(api::request_header_version(18, 2), 1);
    assert_eq!(api::request_header_version(7, 0), 0);
    assert!(!api::response_header_flexible(18, 3));
    assert!(api::response_header_flexible(0, 9));
    assert_eq!(api::name(75), Some("DescribeTopicPartitions"));
    assert_eq!(api::error_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_eq!(api::error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
}

proptest! {
    #[test]
    fn random_bodies_never_panic(key in 0i16..95, version in 0i16..20,
                                 body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = api::parse_request(key, version, &body);
        let _ = api::parse_response(key, version, &body);
    }

    #[test]
    fn random_streams_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                  b in proptest::collection::vec(any::<u8>(), 0..600),
                                  cut in 1usize..64) {
        let mut sim = Sim::new(9092);
        sim.send(C, &request(18, 3, 1, Some("x"), &[0, 0, 0]));
        sim.send_in(C, &a, cut).send_in(S, &b, cut).lose(S, 7).send(S, &b).lose(C, 3).send(C, &a);
        check(&sim.close());
    }
}
