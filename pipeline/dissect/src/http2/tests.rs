//! HTTP/2 and gRPC behaviour from byte streams: framing, HPACK state, streams,
//! resets, pushes, losses, mid-connection captures, the h2c upgrade.

use std::io::Write;

use proptest::prelude::*;
use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
use reef_schema::{Entry, Flags, Protocol};

use super::frame::*;
use crate::{Conn, Limits, Output, Probe};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

fn ctx(midstream: [bool; 2]) -> FlowCtx {
    FlowCtx {
        id: 1,
        endpoints: [
            Endpoint {
                ip: "10.0.0.1".parse().unwrap(),
                port: 40000,
            },
            Endpoint {
                ip: "10.0.0.2".parse().unwrap(),
                port: 8080,
            },
        ],
        opener_known: !midstream[0],
        midstream,
    }
}

struct Sim {
    conn: Conn,
    ctx: FlowCtx,
    out: Output,
    off: [u64; 2],
    ts: i64,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(Limits::default(), [false, false])
    }

    fn with(limits: Limits, midstream: [bool; 2]) -> Sim {
        Sim {
            conn: Conn::default(),
            ctx: ctx(midstream),
            out: Output::new(limits, "t"),
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
        self.off[i] += data.len() as u64;
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self
    }

    /// Sends `data` in pieces of `n` bytes.
    fn send_in(&mut self, dir: Dir, data: &[u8], n: usize) -> &mut Self {
        for piece in data.chunks(n) {
            self.send(dir, piece);
        }
        self
    }

    fn lose(&mut self, dir: Dir, len: u64) -> &mut Self {
        self.ts += 1_000_000;
        let i = dir.index();
        let ev = StreamEvent::Gap {
            dir,
            offset: self.off[i],
            len,
            ts: self.ts,
        };
        self.off[i] += len;
        self.conn.on_event(&self.ctx, ev, &mut self.out);
        self
    }

    fn tick(&mut self, ns: i64) -> Vec<Entry> {
        self.ts += ns;
        self.conn.tick(&self.ctx, self.ts, &mut self.out);
        self.out.entries.drain().collect()
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

pub(super) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.push(kind);
    v.push(flags);
    v.extend(stream.to_be_bytes());
    v.extend(payload);
    v
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits `high`.
fn int(high: u8, n: u32, v: usize) -> Vec<u8> {
    let max = (1usize << n) - 1;
    if v < max {
        return vec![high | v as u8];
    }
    let mut out = vec![high | max as u8];
    let mut v = v - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
    out
}

fn string(s: &str) -> Vec<u8> {
    let mut v = int(0, 7, s.len());
    v.extend(s.as_bytes());
    v
}

/// A literal field without indexing, new name.
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x00];
    v.extend(string(name));
    v.extend(string(value));
    v
}

/// A literal field with incremental indexing, new name.
fn lit_indexed(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x40];
    v.extend(string(name));
    v.extend(string(value));
    v
}

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    fields.iter().flat_map(|(n, v)| lit(n, v)).collect()
}

fn headers(stream: u32, flags: u8, fields: &[(&str, &str)]) -> Vec<u8> {
    frame(HEADERS, flags | END_HEADERS, stream, &block(fields))
}

fn get(stream: u32, path: &str) -> Vec<u8> {
    headers(
        stream,
        END_STREAM,
        &[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "example"),
        ],
    )
}

fn settings() -> Vec<u8> {
    frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])
}

fn client_start() -> Vec<u8> {
    let mut v = PREFACE.to_vec();
    v.extend(settings());
    v
}

fn ok(stream: u32, body: &[u8]) -> Vec<u8> {
    let mut v = headers(
        stream,
        0,
        &[(":status", "200"), ("content-type", "text/plain")],
    );
    v.extend(frame(DATA, END_STREAM, stream, body));
    v
}

fn key(e: &Entry) -> (Option<&str>, Option<&str>, Option<i32>) {
    (e.method.as_deref(), e.path.as_deref(), e.status_code)
}

fn body(b: &Option<reef_schema::Body>) -> &[u8] {
    b.as_ref().map_or(&[][..], |b| b.0.as_slice())
}

#[test]
fn prior_knowledge_exchange_with_every_field() {
    let mut sim = Sim::new();
    let mut server = settings();
    server.extend(frame(SETTINGS, ACK, 0, &[]));
    sim.send(C, &client_start())
        .send(S, &server)
        .send(C, &get(1, "/a?x=1"))
        .send(S, &ok(1, b"hello"));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!(key(e), (Some("GET"), Some("/a?x=1"), Some(200)));
    assert_eq!(e.protocol, Protocol::Http);
    assert_eq!(e.http_version.as_deref(), Some("2"));
    assert_eq!(e.http2_stream_id, Some(1));
    assert_eq!((e.src_port, e.dst_port), (Some(40000), Some(8080)));
    assert_eq!(e.timestamp, 1_003_000_000);
    assert_eq!(e.elapsed_time, Some(1000));
    assert_eq!(e.request_size, Some(get(1, "/a?x=1").len() as u64));
    assert_eq!(e.response_size, Some(ok(1, b"hello").len() as u64));
    assert_eq!(body(&e.response_body), b"hello");
    assert_eq!(e.response_body_size, Some(5));
    let rh = e.request_headers.as_ref().unwrap();
    assert_eq!(rh.0[0], (":method".to_string(), "GET".to_string()));
    assert_eq!(
        e.response_headers.as_ref().unwrap().get("content-type"),
        Some("text/plain")
    );
    assert!(e.flags.is_empty(), "{:?}", e.flags);
    assert_eq!(e.summary.as_deref(), Some("GET /a?x=1 → 200"));
}

#[test]
fn graphql_requests_become_graphql_entries() {
    let body = br#"{"query":"query Hero { hero { name } }","operationName":"Hero"}"#;
    let mut req = headers(
        1,
        0,
        &[
            (":method", "POST"),
            (":scheme", "https"),
            (":path", "/graphql"),
            (":authority", "api"),
            ("content-type", "application/json"),
        ],
    );
    req.extend(frame(DATA, END_STREAM, 1, body));
    let mut sim = Sim::new();
    sim.send(C, &client_start())
        .send(S, &settings())
        .send(C, &req)
        .send(S, &ok(1, b"{}"))
        .send(C, &get(3, "/graphql?query=%7B+me+%7D"))
        .send(S, &ok(3, b"{}"));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    let ops: Vec<_> = e
        .iter()
        .map(|e| {
            (
                e.protocol,
                e.graphql_operation_type.as_deref(),
                e.graphql_operation.as_deref(),
                e.http_version.as_deref(),
                e.status_code,
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            (
                Protocol::Graphql,
                Some("query"),
                Some("Hero"),
                Some("2"),
                Some(200)
            ),
            (Protocol::Graphql, Some("query"), None, Some("2"), Some(200)),
        ]
    );
    assert_eq!(
        e[0].summary.as_deref(),
        Some("query Hero: POST /graphql → 200")
    );
}

#[test]
fn streams_interleave_and_pair_by_id() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(get(1, "/one"));
    c.extend(get(3, "/three"));
    sim.send(C, &c);
    // Responses in the other order, DATA of both interleaved, in small pieces.
    let mut s = settings();
    s.extend(headers(3, 0, &[(":status", "404")]));
    s.extend(headers(1, 0, &[(":status", "200")]));
    s.extend(frame(DATA, 0, 1, b"aaa"));
    s.extend(frame(DATA, END_STREAM, 3, b"missing"));
    s.extend(frame(DATA, END_STREAM, 1, b"bbb"));
    sim.send_in(S, &s, 7);
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[0]), (Some("GET"), Some("/three"), Some(404)));
    assert_eq!(body(&e[0].response_body), b"missing");
    assert_eq!(key(&e[1]), (Some("GET"), Some("/one"), Some(200)));
    assert_eq!(body(&e[1].response_body), b"aaabbb");
}

#[test]
fn continuation_padding_and_priority() {
    let mut sim = Sim::new();
    let fields = block(&[
        (":method", "POST"),
        (":path", "/upload"),
        (":scheme", "http"),
        ("x-big", &"v".repeat(40_000)),
    ]);
    // HEADERS with padding and priority, then two CONTINUATIONs.
    let mut first = vec![3u8, 0, 0, 0, 1, 16];
    first.extend(&fields[..100]);
    first.extend([0, 0, 0]);
    let mut c = client_start();
    c.extend(frame(HEADERS, PADDED | PRIORITY_FLAG, 1, &first));
    c.extend(frame(CONTINUATION, 0, 1, &fields[100..20_000]));
    c.extend(frame(CONTINUATION, END_HEADERS, 1, &fields[20_000..]));
    // Padded DATA.
    let mut data = vec![4u8];
    data.extend(b"body");
    data.extend([0; 4]);
    c.extend(frame(DATA, PADDED | END_STREAM, 1, &data));
    sim.send_in(C, &c, 1000);
    sim.send(S, &ok(1, b"done"));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), (Some("POST"), Some("/upload"), Some(200)));
    let h = e[0].request_headers.as_ref().unwrap();
    assert_eq!(h.get("x-big").map(str::len), Some(40_000));
    assert_eq!(body(&e[0].request_body), b"body");
    assert_eq!(e[0].request_body_size, Some(4));
    assert!(e[0].flags.is_empty(), "{:?}", e[0].flags);
}

#[test]
fn unknown_frame_types_and_control_frames_are_passed_over() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(frame(0xfa, 0x3, 0, b"extension"));
    c.extend(frame(PRIORITY, 0, 5, &[0, 0, 0, 0, 9]));
    c.extend(frame(PING, 0, 0, &[1; 8]));
    c.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    c.extend(get(1, "/"));
    sim.send(C, &c).send(S, &ok(1, b"x"));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), (Some("GET"), Some("/"), Some(200)));
}

#[test]
fn hpack_state_is_kept_per_direction_and_honours_table_size() {
    let mut sim = Sim::new();
    // The server limits the client's table to 64 bytes: an entry of 32+4+30 = 66
    // bytes does not fit, so it is not kept, and a later reference to index 62 is
    // the entry before it.
    let mut s = frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0, 64]);
    s.extend(frame(SETTINGS, ACK, 0, &[]));
    let mut c = client_start();
    // A size update to the new limit comes first in the block.
    let mut b1 = int(0x20, 5, 64);
    b1.extend([0x82, 0x86, 0x84]);
    b1.extend(lit_indexed("x-a", "1")); // 32+3+1 = 36: kept
    c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &b1));
    sim.send(S, &s).send(C, &c);
    let mut b2 = vec![0x82, 0x86, 0x84, 0xbe]; // 0xbe = index 62 = x-a: 1
    b2.extend(lit_indexed("x-bb", &"z".repeat(30))); // 66 > 64: empties the table
    sim.send(C, &frame(HEADERS, END_STREAM | END_HEADERS, 3, &b2));
    sim.send(S, &ok(1, b"")).send(S, &ok(3, b""));
    let b3 = vec![0x82, 0x86, 0x84, 0xbe]; // index 62 no longer exists
    sim.send(C, &frame(HEADERS, END_STREAM | END_HEADERS, 5, &b3));
    sim.send(S, &ok(5, b""));
    let e = sim.close();
    assert_eq!(e.len(), 3);
    let h1 = e[1].request_headers.as_ref().unwrap();
    assert_eq!(h1.get("x-a"), Some("1"));
    assert!(e[1].flags.is_empty(), "{:?}", e[1].flags);
    assert!(
        e[2].flags.contains(Flags::MALFORMED),
        "a bad index is reported"
    );
    assert_eq!(key(&e[2]), (Some("GET"), Some("/"), Some(200)));
}

#[test]
fn trailers_are_appended_to_the_response_headers() {
    let mut sim = Sim::new();
    let mut s = headers(1, 0, &[(":status", "200")]);
    s.extend(frame(DATA, 0, 1, b"chunk"));
    s.extend(headers(1, END_STREAM, &[("x-checksum", "abc")]));
    sim.send(C, &client_start())
        .send(C, &get(1, "/t"))
        .send(S, &s);
    let e = sim.close();
    let h = e[0].response_headers.as_ref().unwrap();
    assert_eq!(h.get(":status"), Some("200"));
    assert_eq!(h.get("x-checksum"), Some("abc"));
}

#[test]
fn interim_responses_are_noted() {
    let mut sim = Sim::new();
    let mut s = headers(1, 0, &[(":status", "103"), ("link", "</a.css>")]);
    s.extend(ok(1, b"x"));
    sim.send(C, &client_start())
        .send(C, &get(1, "/"))
        .send(S, &s);
    let e = sim.close();
    assert_eq!(e[0].status_code, Some(200));
    assert!(e[0].flags.contains(Flags::INTERIM_RESPONSE));
}

#[test]
fn reset_streams_end_with_what_was_seen() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(get(1, "/cancelled"));
    c.extend(get(3, "/cut"));
    sim.send(C, &c);
    sim.send(C, &frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]));
    sim.send(S, &headers(3, 0, &[(":status", "200")]));
    sim.send(S, &frame(DATA, 0, 3, b"partial"));
    sim.send(S, &frame(RST_STREAM, 0, 3, &[0, 0, 0, 2]));
    // Frames of a reset stream are ignored afterwards.
    sim.send(S, &frame(DATA, END_STREAM, 3, b"late"));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[0]), (Some("GET"), Some("/cancelled"), None));
    assert!(e[0].flags.contains(Flags::NO_RESPONSE));
    assert_eq!(
        e[0].summary.as_deref(),
        Some("GET /cancelled → (no response) (reset by the client: CANCEL)")
    );
    assert_eq!(key(&e[1]), (Some("GET"), Some("/cut"), Some(200)));
    assert!(e[1].flags.contains(Flags::TRUNCATED));
    assert_eq!(body(&e[1].response_body), b"partial");
    assert!(e[1].summary.as_deref().unwrap().contains("INTERNAL_ERROR"));
}

#[test]
fn a_reset_after_a_complete_response_is_no_anomaly() {
    // The server answers before the client ended its side, then tells it to stop
    // (RFC 9113 §8.1): http2_suricata_continuation does this.
    let mut sim = Sim::new();
    let open_request = headers(1, 0, &[(":method", "GET"), (":path", "/tata")]);
    sim.send(C, &client_start()).send(C, &open_request);
    sim.send(S, &ok(1, b"hi"));
    assert!(sim.out.entries.is_empty(), "the client side is still open");
    sim.send(S, &frame(RST_STREAM, 0, 1, &[0; 4]));
    let e: Vec<Entry> = sim.out.entries.drain().collect();
    assert_eq!(e.len(), 1);
    assert!(!e[0].incomplete, "{:?}", e[0].flags);
}

#[test]
fn goaway_ends_the_streams_it_did_not_process() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(get(1, "/done"));
    c.extend(get(3, "/refused"));
    sim.send(C, &c);
    let mut s = ok(1, b"");
    s.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]));
    sim.send(S, &s);
    let e: Vec<Entry> = sim.out.entries.drain().collect();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].path.as_deref(), Some("/refused"));
    assert!(e[1].flags.contains(Flags::NO_RESPONSE));
    assert!(e[1].summary.as_deref().unwrap().contains("GOAWAY"));

    // A GOAWAY with an error: the streams it leaves unfinished say so.
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(get(1, "/slow"));
    sim.send(C, &c);
    let mut s = headers(1, 0, &[(":status", "200")]);
    s.extend(frame(GOAWAY, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 2]));
    sim.send(S, &s);
    let e = sim.close();
    assert!(e[0].flags.contains(Flags::TRUNCATED));
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("GOAWAY: INTERNAL_ERROR"),
        "{:?}",
        e[0].summary
    );
}

#[test]
fn server_push_is_an_entry_of_the_promised_stream() {
    let mut sim = Sim::new();
    sim.send(C, &client_start()).send(C, &get(1, "/page"));
    let mut promise = vec![0, 0, 0, 2];
    promise.extend(block(&[
        (":method", "GET"),
        (":path", "/style.css"),
        (":scheme", "http"),
        (":authority", "example"),
    ]));
    let mut s = frame(PUSH_PROMISE, END_HEADERS, 1, &promise);
    s.extend(headers(1, 0, &[(":status", "200")]));
    s.extend(headers(2, 0, &[(":status", "200")]));
    s.extend(frame(DATA, END_STREAM, 2, b"css"));
    s.extend(frame(DATA, END_STREAM, 1, b"html"));
    sim.send(S, &s);
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[0]), (Some("GET"), Some("/page"), Some(200)));
    assert_eq!(key(&e[1]), (Some("GET"), Some("/style.css"), Some(200)));
    assert_eq!(e[1].http2_stream_id, Some(2));
    assert_eq!(e[1].parent_id.as_deref(), Some(e[0].id.as_str()));
    assert!(!e[1].flags.contains(Flags::NO_REQUEST));
    assert_eq!(body(&e[1].response_body), b"css");
}

#[test]
fn requests_without_response_at_close_and_after_the_timeout() {
    let limits = Limits {
        response_timeout_ns: 5_000_000_000,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, [false, false]);
    sim.send(C, &client_start()).send(C, &get(1, "/slow"));
    assert!(sim.tick(1_000_000_000).is_empty());
    let e = sim.tick(10_000_000_000);
    assert_eq!(e.len(), 1);
    assert!(e[0].flags.contains(Flags::NO_RESPONSE | Flags::TIMEOUT));
    // The late response is not taken for a response without request.
    sim.send(S, &ok(1, b"late"));
    sim.send(C, &get(3, "/never"));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path.as_deref(), Some("/never"));
    assert!(e[0].flags.contains(Flags::NO_RESPONSE));
    assert!(e[0].incomplete);
}

#[test]
fn a_loss_inside_data_keeps_the_framing() {
    let mut sim = Sim::new();
    sim.send(C, &client_start()).send(C, &get(1, "/big"));
    let mut s = headers(1, 0, &[(":status", "200")]);
    let data = frame(DATA, END_STREAM, 1, &[b'x'; 3000]);
    s.extend(&data[..1000]);
    sim.send(S, &s);
    sim.lose(S, 1000);
    sim.send(S, &data[2000..]);
    sim.send(C, &get(3, "/next")).send(S, &ok(3, b"fine"));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP));
    assert_eq!(e[0].response_body_size, Some(3000));
    assert_eq!(key(&e[1]), (Some("GET"), Some("/next"), Some(200)));
    assert!(e[1].flags.is_empty());
}

#[test]
fn a_loss_across_frames_resynchronises_and_forgets_the_table() {
    let mut sim = Sim::new();
    let mut c = client_start();
    // The client indexes a header, then refers to it.
    let mut b1 = vec![0x82, 0x86, 0x84];
    b1.extend(lit_indexed("x-token", "secret"));
    c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &b1));
    sim.send(C, &c).send(S, &ok(1, b""));
    // Bytes of the client are lost (a whole frame and the start of another).
    sim.lose(C, 30);
    sim.send(C, &[0xab; 7]); // the rest of the lost frame
    let mut more = frame(PING, 0, 0, &[0; 8]);
    let b2 = [vec![0x82, 0x86], lit(":path", "/after"), vec![0xbe]].concat();
    more.extend(frame(HEADERS, END_STREAM | END_HEADERS, 5, &b2));
    sim.send(C, &more).send(S, &ok(5, b"ok"));
    let e = sim.close();
    assert_eq!(e.len(), 2, "{e:#?}");
    let after = &e[1];
    assert_eq!(key(after), (Some("GET"), Some("/after"), Some(200)));
    assert!(after.flags.contains(Flags::MALFORMED));
    assert!(
        after
            .summary
            .as_deref()
            .unwrap()
            .contains("1 header field not decodable")
    );
    assert_eq!(after.request_headers.as_ref().unwrap().get("x-token"), None);
}

#[test]
fn joined_mid_connection_decodes_what_does_not_depend_on_the_lost_state() {
    let mut sim = Sim::with(Limits::default(), [true, true]);
    // The capture starts inside a frame of the client, then a request for stream 7
    // whose :authority refers to the dynamic table, and its response.
    let mut c = vec![0x11; 5];
    c.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    let b = [vec![0x82, 0x86], lit(":path", "/mid"), vec![0xbf]].concat();
    c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 7, &b));
    sim.send(C, &c);
    // The server answers with an indexed dynamic reference too.
    let b = [vec![0x88, 0xc0]].concat();
    let mut s = frame(HEADERS, END_HEADERS, 7, &b);
    s.extend(frame(DATA, END_STREAM, 7, b"body"));
    sim.send(S, &s);
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), (Some("GET"), Some("/mid"), Some(200)));
    assert!(e[0].flags.contains(Flags::MALFORMED));
    assert!(
        e[0].summary
            .as_deref()
            .unwrap()
            .contains("2 header fields not decodable: HPACK state unknown")
    );
}

#[test]
fn data_seen_without_its_head_is_a_gap_not_a_missing_message() {
    // Found by the dns fuzzer (through detection): joined mid-connection, the DATA of
    // a request (or response) whose HEADERS came before the capture made an entry
    // flagged `no_request` (`no_response`) that had a request (response) size all
    // the same.
    let mut sim = Sim::with(Limits::default(), [true, true]);
    let mut c = frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]);
    c.extend(frame(DATA, END_STREAM, 3, b"end of the body"));
    sim.send(C, &c);
    let mut s = ok(3, b"done");
    // Stream 5: a response alone; stream 7: the end of a response body alone.
    s.extend(ok(5, b"alone"));
    s.extend(frame(DATA, END_STREAM, 7, b"tail"));
    sim.send(S, &s);
    let e = sim.close();
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(key(&e[0]), (None, None, Some(200)));
    assert!(e[0].flags.contains(Flags::REQUEST_GAP) && e[0].incomplete);
    assert!(!e[0].flags.contains(Flags::NO_REQUEST));
    assert_eq!(e[0].request_size, Some(9 + 15));
    assert_eq!(key(&e[1]), (None, None, Some(200)));
    assert!(e[1].flags.contains(Flags::NO_REQUEST));
    assert_eq!(e[1].request_size, None);
    assert_eq!(e[2].flags, Flags::NO_REQUEST | Flags::RESPONSE_GAP);
    assert_eq!((e[2].request_size, e[2].response_size), (None, Some(9 + 4)));
    assert_eq!(body(&e[2].response_body), b"tail");
}

#[test]
fn interim_response_alone_is_no_response() {
    let mut sim = Sim::new();
    sim.send(C, &client_start()).send(C, &get(1, "/upload"));
    sim.send(S, &headers(1, 0, &[(":status", "100")]));
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].flags
            .contains(Flags::NO_RESPONSE | Flags::INTERIM_RESPONSE)
    );
    assert_eq!((e[0].status_code, e[0].response_size), (None, None));
}

#[test]
fn stream_one_seen_mid_connection_starts_an_empty_table() {
    // No preface or SETTINGS in the capture, but stream 1's request: the table was
    // empty, so what it indexes can be used by the next request.
    let mut sim = Sim::with(Limits::default(), [true, true]);
    let b1 = [
        vec![0x83, 0x86],
        lit(":path", "/a"),
        lit_indexed("x-k", "v"),
    ]
    .concat();
    sim.send(C, &frame(HEADERS, END_HEADERS, 1, &b1));
    sim.send(C, &frame(DATA, END_STREAM, 1, b"req"));
    let r1 = [vec![0x88], lit_indexed("x-s", "1")].concat();
    let mut s = frame(HEADERS, END_HEADERS, 1, &r1);
    s.extend(frame(DATA, END_STREAM, 1, b""));
    sim.send(S, &s);
    let b3 = [vec![0x82, 0x86], lit(":path", "/b"), vec![0xbe]].concat();
    sim.send(C, &frame(HEADERS, END_STREAM | END_HEADERS, 3, &b3));
    let r3 = vec![0x88, 0xbe];
    sim.send(S, &frame(HEADERS, END_STREAM | END_HEADERS, 3, &r3));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(key(&e[0]), (Some("POST"), Some("/a"), Some(200)));
    assert_eq!(e[1].request_headers.as_ref().unwrap().get("x-k"), Some("v"));
    assert_eq!(
        e[1].response_headers.as_ref().unwrap().get("x-s"),
        Some("1")
    );
    assert!(e.iter().all(|e| !e.flags.contains(Flags::MALFORMED)));
}

#[test]
fn header_blocks_over_the_limit_are_flagged() {
    let mut sim = Sim::new();
    let big = block(&[
        (":method", "GET"),
        (":path", "/x"),
        ("x-huge", &"h".repeat(super::MAX_HEADER_BLOCK_BYTES)),
    ]);
    let mut c = client_start();
    c.extend(frame(HEADERS, END_STREAM, 1, &big[..16_000]));
    for piece in big[16_000..].chunks(16_000) {
        c.extend(frame(CONTINUATION, 0, 1, piece));
    }
    c.extend(frame(CONTINUATION, END_HEADERS, 1, &[]));
    c.extend(get(3, "/small"));
    sim.send_in(C, &c, 60_000);
    sim.send(S, &ok(1, b"")).send(S, &ok(3, b""));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert!(e[0].flags.contains(Flags::HEAD_TOO_LARGE));
    assert_eq!(e[0].method, None);
    assert_eq!(key(&e[1]), (Some("GET"), Some("/small"), Some(200)));
}

#[test]
fn decoded_headers_are_kept_up_to_the_head_limit() {
    let limits = Limits {
        max_head_bytes: 100,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, [false, false]);
    let b = block(&[
        (":method", "GET"),
        (":path", "/"),
        ("x-long", &"l".repeat(200)),
        ("x-after", "1"),
    ]);
    sim.send(C, &client_start())
        .send(C, &frame(HEADERS, END_STREAM | END_HEADERS, 1, &b))
        .send(S, &ok(1, b""));
    let e = sim.close();
    assert!(e[0].flags.contains(Flags::HEAD_TOO_LARGE));
    assert_eq!(e[0].request_headers.as_ref().unwrap().len(), 2);
}

fn grpc_msg(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend((payload.len() as u32).to_be_bytes());
    v.extend(payload);
    v
}

fn grpc_request(stream: u32, path: &str) -> Vec<u8> {
    headers(
        stream,
        0,
        &[
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ],
    )
}

#[test]
fn grpc_streaming_call_with_status_and_messages() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(grpc_request(1, "/pkg.Chat/Talk"));
    // Two messages in one DATA frame, a third split across two.
    let m1 = grpc_msg(&[0x0a, 0x02, b'h', b'i']);
    let m3 = grpc_msg(&[0x08, 0x96, 0x01]);
    c.extend(frame(DATA, 0, 1, &[m1.clone(), m1].concat()));
    c.extend(frame(DATA, 0, 1, &m3[..4]));
    c.extend(frame(DATA, END_STREAM, 1, &m3[4..]));
    sim.send(C, &c);
    let mut s = headers(
        1,
        0,
        &[(":status", "200"), ("content-type", "application/grpc")],
    );
    s.extend(frame(DATA, 0, 1, &grpc_msg(&[0x10, 0x01])));
    s.extend(headers(
        1,
        END_STREAM,
        &[("grpc-status", "5"), ("grpc-message", "no%20such%20room")],
    ));
    sim.send(S, &s);
    let e = sim.close();
    assert_eq!(e.len(), 1);
    let e = &e[0];
    assert_eq!(e.protocol, Protocol::Grpc);
    assert_eq!(e.method.as_deref(), Some("POST"));
    assert_eq!(e.path.as_deref(), Some("/pkg.Chat/Talk"));
    assert_eq!(e.grpc_method.as_deref(), Some("/pkg.Chat/Talk"));
    assert_eq!(e.status_code, Some(5));
    assert_eq!(e.grpc_status, Some(5));
    assert_eq!(e.grpc_message.as_deref(), Some("no such room"));
    assert_eq!(e.grpc_request_messages, Some(3));
    assert_eq!(e.grpc_response_messages, Some(1));
    assert_eq!(
        std::str::from_utf8(body(&e.request_body)).unwrap(),
        "{\"1\": \"hi\"}\n{\"1\": \"hi\"}\n{\"1\": 150}"
    );
    assert_eq!(
        std::str::from_utf8(body(&e.response_body)).unwrap(),
        "{\"2\": 1}"
    );
    assert_eq!(e.request_body_size, Some(26));
    assert_eq!(
        e.summary.as_deref(),
        Some("gRPC /pkg.Chat/Talk → 5 NOT_FOUND: no such room (3 → 1 messages)")
    );
}

#[test]
fn grpc_trailers_only_and_compressed_messages() {
    let mut sim = Sim::new();
    let mut c = client_start();
    let mut req = grpc_request(1, "/pkg.S/Unary");
    req.extend(grpc_request(3, "/pkg.S/Zipped"));
    c.extend(req);
    c.extend(frame(DATA, END_STREAM, 1, &grpc_msg(b"")));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[0x0a, 0x03, b'a', b'b', b'c']).unwrap();
    let mut zipped = vec![1];
    let z = gz.finish().unwrap();
    zipped.extend((z.len() as u32).to_be_bytes());
    zipped.extend(z);
    c.extend(frame(DATA, END_STREAM, 3, &zipped));
    sim.send(C, &c);
    // Stream 3's request said how it was compressed in grpc-encoding... it did not:
    // shown as compressed bytes. Stream 1 gets a trailers-only response.
    let s = headers(
        1,
        END_STREAM,
        &[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "12"),
        ],
    );
    sim.send(S, &s);
    sim.send(S, &headers(3, END_STREAM, &[(":status", "503")]));
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].grpc_status, Some(12));
    assert_eq!(e[0].grpc_response_messages, None);
    assert_eq!(e[0].grpc_request_messages, Some(1));
    // No grpc-status: the HTTP status maps to UNAVAILABLE, as clients do.
    assert_eq!(e[1].grpc_status, Some(14));
    assert!(e[1].flags.contains(Flags::BODY_DECODE_ERROR));

    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(headers(
        1,
        0,
        &[
            (":method", "POST"),
            (":path", "/pkg.S/Zipped"),
            ("content-type", "application/grpc+proto"),
            ("grpc-encoding", "gzip"),
        ],
    ));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[0x0a, 0x03, b'a', b'b', b'c']).unwrap();
    let z = gz.finish().unwrap();
    let mut zipped = vec![1];
    zipped.extend((z.len() as u32).to_be_bytes());
    zipped.extend(z);
    c.extend(frame(DATA, END_STREAM, 1, &zipped));
    sim.send(C, &c);
    let e = sim.close();
    assert_eq!(
        std::str::from_utf8(body(&e[0].request_body)).unwrap(),
        "{\"1\": \"abc\"}"
    );
    assert!(e[0].flags.contains(Flags::NO_RESPONSE));
}

#[test]
fn grpc_message_counts_survive_a_loss_inside_a_message() {
    let mut sim = Sim::new();
    let mut c = client_start();
    c.extend(grpc_request(1, "/pkg.S/Up"));
    sim.send(C, &c);
    let big = grpc_msg(&[7; 2000]);
    let f = frame(DATA, 0, 1, &[big.clone(), big.clone()].concat());
    sim.send(C, &f[..500]).lose(C, 1000).send(C, &f[1500..]);
    sim.send(C, &frame(DATA, END_STREAM, 1, &grpc_msg(b"")));
    let e = sim.close();
    assert_eq!(e[0].grpc_request_messages, Some(3));
    assert!(e[0].flags.contains(Flags::REQUEST_GAP));
}

#[test]
fn h2c_upgrade_answers_the_upgrade_request_on_stream_1() {
    let mut sim = Sim::new();
    sim.send(
        C,
        b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
    );
    let mut s =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    s.extend(settings());
    s.extend(ok(1, b"upgraded"));
    sim.send(S, &s);
    sim.send(C, &client_start()).send(C, &get(3, "/next"));
    sim.send(S, &ok(3, b"second"));
    let e = sim.close();
    assert_eq!(e.len(), 3, "{e:#?}");
    assert_eq!(e[0].http_version.as_deref(), Some("1.1"));
    assert_eq!(key(&e[0]), (Some("GET"), Some("/up"), Some(101)));
    assert!(e[0].flags.contains(Flags::UPGRADE));
    assert_eq!(key(&e[1]), (Some("GET"), Some("/up"), Some(200)));
    assert_eq!(e[1].http_version.as_deref(), Some("2"));
    assert_eq!(e[1].http2_stream_id, Some(1));
    assert_eq!(e[1].parent_id.as_deref(), Some(e[0].id.as_str()));
    assert_eq!(body(&e[1].response_body), b"upgraded");
    assert!(!e[1].incomplete, "{:?}", e[1].flags);
    assert_eq!(key(&e[2]), (Some("GET"), Some("/next"), Some(200)));
}

#[test]
fn probes() {
    let fresh = ctx([false, false]);
    let mid = ctx([true, true]);
    assert_eq!(super::probe(&fresh, C, PREFACE), Probe::Client(C));
    assert_eq!(super::probe(&fresh, S, &PREFACE[..10]), Probe::NotYet);
    assert_eq!(super::probe(&fresh, C, b"GET / HTTP/1.1\r\n"), Probe::No);
    // A server's SETTINGS may come first: wait for the client.
    assert_eq!(super::probe(&fresh, S, &settings()), Probe::NotYet);
    assert_eq!(super::probe(&fresh, S, &[0x16, 3, 1, 0, 5]), Probe::No);
    // Mid-connection: frames and a header block that says who sent it.
    let mut c = frame(WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]);
    c.extend(get(9, "/"));
    assert_eq!(super::probe(&mid, C, &c), Probe::Client(C));
    let s = ok(9, b"x");
    assert_eq!(super::probe(&mid, S, &s), Probe::Client(C));
    assert_eq!(super::probe(&mid, S, &s[..20]), Probe::NotYet);
    assert_eq!(super::probe(&mid, C, &settings()), Probe::NotYet);
    assert_eq!(super::probe(&fresh, C, &[]), Probe::NotYet);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        pieces in proptest::collection::vec(
            (any::<bool>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..300)),
            0..40,
        ),
        mid in any::<bool>(),
    ) {
        let mut sim = Sim::with(Limits { max_body_bytes: 64, max_head_bytes: 128, ..Limits::default() }, [mid, mid]);
        // Start like HTTP/2 so that the bytes reach the dissector.
        sim.send(C, &client_start());
        for (client, op, bytes) in pieces {
            let dir = if client { C } else { S };
            match op % 8 {
                0 => { sim.lose(dir, u64::from(op)); }
                1 => {
                    // A real frame header with random payload.
                    let kind = op % 11;
                    sim.send(dir, &frame(kind, op, u32::from(op % 4), &bytes));
                }
                _ => { sim.send(dir, &bytes); }
            }
        }
        let _ = sim.tick(100_000_000_000);
        let _ = sim.close();
    }

    #[test]
    fn frames_cut_anywhere_give_the_same_entries(cut in 1usize..200) {
        let mut c = client_start();
        c.extend(get(1, "/a"));
        c.extend(grpc_request(3, "/p.S/M"));
        c.extend(frame(DATA, END_STREAM, 3, &grpc_msg(b"\x08\x01")));
        let mut s = ok(1, b"first");
        s.extend(headers(3, 0, &[(":status", "200"), ("content-type", "application/grpc")]));
        s.extend(frame(DATA, 0, 3, &grpc_msg(b"\x08\x02")));
        s.extend(headers(3, END_STREAM, &[("grpc-status", "0")]));
        let mut whole = Sim::new();
        whole.send(C, &c).send(S, &s);
        let want: Vec<String> = whole.close().iter().map(|e| e.summary.clone().unwrap()).collect();
        let mut cut_sim = Sim::new();
        cut_sim.send_in(C, &c, cut).send_in(S, &s, cut);
        let got: Vec<String> = cut_sim.close().iter().map(|e| e.summary.clone().unwrap()).collect();
        prop_assert_eq!(got, want);
    }
}
