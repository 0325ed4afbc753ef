//! HTTP/1 behaviour from byte streams: framing, pairing, gaps, limits.

use std::io::Write;

use proptest::prelude::*;
use reef_reassembly::{Dir, Endpoint, FlowCtx, StreamEvent};
use reef_schema::{Entry, Flags, Protocol};

use crate::{Conn, Limits, Output};

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// Drives one connection at the stream level: offsets and acknowledgments are kept
/// as TCP would, so pairing sees what it sees on real traffic.
struct Sim {
    conn: Conn,
    ctx: FlowCtx,
    out: Output,
    off: [u64; 2],
    ts: i64,
}

impl Sim {
    fn new() -> Sim {
        Self::with(Limits::default(), [false, false])
    }

    fn with(limits: Limits, midstream: [bool; 2]) -> Sim {
        Sim {
            conn: Conn::default(),
            ctx: FlowCtx {
                id: 1,
                endpoints: [
                    Endpoint {
                        ip: "10.0.0.1".parse().unwrap(),
                        port: 40000,
                    },
                    Endpoint {
                        ip: "10.0.0.2".parse().unwrap(),
                        port: 80,
                    },
                ],
                opener_known: true,
                midstream,
            },
            out: Output::new(limits, "t"),
            off: [0, 0],
            ts: 1_000_000_000,
        }
    }

    /// `dir` sends `data` 1 ms after the previous event, acknowledging all the peer sent.
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

    /// `len` bytes of `dir` are lost.
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

fn summary(e: &Entry) -> (Option<&str>, Option<&str>, Option<i32>) {
    (e.method.as_deref(), e.path.as_deref(), e.status_code)
}

fn body(e: &Option<reef_schema::Body>) -> &[u8] {
    e.as_ref().map_or(&[][..], |b| b.0.as_slice())
}

#[test]
fn keep_alive_exchange_with_every_field() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nCookie: c=1\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        )
        .send(C, b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        .send(S, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(summary(&e[0]), (Some("GET"), Some("/a?x=1"), Some(200)));
    assert_eq!(summary(&e[1]), (Some("POST"), Some("/b"), Some(201)));
    let first = &e[0];
    assert_eq!(first.http_version.as_deref(), Some("1.1"));
    assert_eq!(first.src_port, Some(40000));
    assert_eq!(first.dst_port, Some(80));
    assert_eq!(first.timestamp, 1_001_000_000);
    assert_eq!(first.elapsed_time, Some(1000));
    assert_eq!(first.request_size, Some(45));
    assert_eq!(first.response_size, Some(69));
    assert_eq!(body(&first.response_body), b"hello");
    assert_eq!(first.response_body_size, Some(5));
    assert_eq!(
        first.request_headers.as_ref().unwrap().get("cookie"),
        Some("c=1")
    );
    assert!(!first.incomplete && first.flags.is_empty());
    assert_eq!(first.summary.as_deref(), Some("GET /a?x=1 → 200 OK"));
    assert_eq!(body(&e[1].request_body), b"abc");
}

#[test]
fn pipelined_requests_pair_in_order() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nHEAD /3 HTTP/1.1\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nBB",
        )
        // The HEAD response announces a length but has no body.
        .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some("/1"), Some(200)),
            (Some("GET"), Some("/2"), Some(404)),
            (Some("HEAD"), Some("/3"), Some(200)),
        ]
    );
    assert!(e.iter().all(|e| e.flags.is_empty()), "{e:?}");
}

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";

#[test]
fn chunked_body_with_trailers_byte_by_byte() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /c HTTP/1.1\r\n\r\n");
    for b in CHUNKED {
        sim.send(S, std::slice::from_ref(b));
    }
    sim.send(C, b"GET /next HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(body(&e[0].response_body), b"Wikipedia");
    assert_eq!(e[0].response_body_size, Some(9));
    assert_eq!(e[0].response_size, Some(CHUNKED.len() as u64));
    assert_eq!(
        e[0].response_headers.as_ref().unwrap().get("x-trailer"),
        Some("t")
    );
    assert_eq!(summary(&e[1]), (Some("GET"), Some("/next"), Some(204)));
}

#[test]
fn no_body_statuses_and_close_delimited_bodies() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /a HTTP/1.1\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        )
        .send(C, b"GET /b HTTP/1.0\r\n\r\n")
        .send(S, b"HTTP/1.0 200 OK\r\n\r\nuntil")
        .send(S, b" the end");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].status_code, Some(304));
    assert_eq!(body(&e[1].response_body), b"until the end");
    assert!(e[1].flags.is_empty());
}

#[test]
fn expect_100_continue_is_one_exchange() {
    let mut sim = Sim::new();
    sim.send(
        C,
        b"PUT /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    )
    .send(S, b"HTTP/1.1 100 Continue\r\n\r\n")
    .send(C, b"data")
    .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(summary(&e[0]), (Some("PUT"), Some("/up"), Some(200)));
    assert!(e[0].flags.contains(Flags::INTERIM_RESPONSE));
    assert!(!e[0].incomplete);
    assert_eq!(body(&e[0].request_body), b"data");
}

#[test]
fn upgrade_hands_the_connection_over() {
    let mut sim = Sim::new();
    sim.send(
        C,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )
    .send(
        S,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
    )
    .send(C, b"\x81\x82abcd\x09\x0a")
    .send(S, b"HTTP/1.1 200 OK\r\n\r\n"); // inside the tunnel: not a response
    let e = sim.close();
    assert_eq!(e[0].status_code, Some(101));
    assert!(e[0].flags.contains(Flags::UPGRADE));
    assert_eq!(sim.out.stats.upgrades, 1);
    // What follows is WebSocket's (see websocket::tests): the bytes that look like
    // an HTTP response are read as a frame, cut short by the end.
    let ws: Vec<_> = e[1..]
        .iter()
        .map(|x| (x.protocol, x.method.as_deref().unwrap()))
        .collect();
    assert_eq!(
        ws,
        [
            (Protocol::Websocket, "text"),
            (Protocol::Websocket, "text"),
            (Protocol::Websocket, "close")
        ]
    );
    assert!(e[3].flags.contains(Flags::TRUNCATED));
}

#[test]
fn connect_tunnel_is_not_parsed() {
    let mut sim = Sim::new();
    sim.send(C, b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 Connection established\r\n\r\n")
        .send(C, b"\x16\x03\x01\x00\x05hello");
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(
        summary(&e[0]),
        (Some("CONNECT"), Some("example.com:443"), Some(200))
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

/// A proxy's CONNECT tunnel is detected afresh: plain HTTP inside it is dissected.
#[test]
fn http_inside_a_connect_tunnel() {
    let mut sim = Sim::new();
    sim.send(C, b"CONNECT inner.example:80 HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 Connection established\r\n\r\n")
        .send(C, b"GET /inside HTTP/1.1\r\nHost: inner.example\r\n\r\n")
        .send(S, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("CONNECT"), Some("inner.example:80"), Some(200)),
            (Some("GET"), Some("/inside"), Some(404)),
        ]
    );
    assert!(e[0].flags.contains(Flags::UPGRADE));
}

#[test]
fn gzip_bodies_are_decoded_and_sizes_kept() {
    let text = b"<html>".repeat(100);
    let z = gzip(&text);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        z.len()
    )
    .into_bytes();
    resp.extend_from_slice(&z);
    let mut sim = Sim::new();
    sim.send(C, b"GET / HTTP/1.1\r\n\r\n").send(S, &resp);
    let e = sim.close();
    assert_eq!(body(&e[0].response_body), text.as_slice());
    assert_eq!(e[0].response_body_size, Some(z.len() as u64));
}

#[test]
fn bodies_are_capped_at_the_limit() {
    let limits = Limits {
        max_body_bytes: 10,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, [false, false]);
    sim.send(
        C,
        b"POST / HTTP/1.1\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz",
    )
    .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let e = sim.close();
    assert_eq!(body(&e[0].request_body), b"abcdefghij");
    assert_eq!(e[0].request_body_size, Some(26));
    assert!(e[0].flags.contains(Flags::REQUEST_BODY_TRUNCATED));
    assert!(!e[0].incomplete, "a capped body is not a missing one");
}

#[test]
fn bodies_stop_being_kept_at_the_total_limit() {
    let limits = Limits {
        max_kept_body_bytes_total: 8,
        ..Limits::default()
    };
    let mut sim = Sim::with(limits, [false, false]);
    sim.send(
        C,
        b"POST /a HTTP/1.1\r\nContent-Length: 12\r\n\r\n0123456789ab",
    )
    .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    .send(C, b"POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz")
    .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let e = sim.close();
    // The first request's kept bytes fill the budget until its entry is emitted.
    assert_eq!(body(&e[0].request_body), b"01234567");
    assert_eq!(e[0].request_body_size, Some(12));
    assert!(e[0].flags.contains(Flags::REQUEST_BODY_TRUNCATED));
    assert!(e[0].flags.contains(Flags::RESPONSE_BODY_TRUNCATED));
    // Emitted entries give their bytes back: the second exchange is kept whole.
    assert_eq!(body(&e[1].request_body), b"xyz");
    assert_eq!(body(&e[1].response_body), b"ok");
    assert_eq!(sim.out.body_budget.refused(), 4 + 2);
    assert_eq!(sim.out.body_budget.used(), 0);
}

#[test]
fn unanswered_request_and_unrequested_response() {
    let mut sim = Sim::new();
    sim.send(
        S,
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
    )
    .send(C, b"GET /never HTTP/1.1\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(summary(&e[0]), (None, None, Some(408)));
    assert!(e[0].flags.contains(Flags::NO_REQUEST) && e[0].incomplete);
    assert_eq!(summary(&e[1]), (Some("GET"), Some("/never"), None));
    assert!(e[1].flags.contains(Flags::NO_RESPONSE) && e[1].incomplete);
}

#[test]
fn gap_inside_a_body_keeps_the_framing() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /big HTTP/1.1\r\n\r\n")
        .send(
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .lose(S, 80)
        .send(S, b"0123456789")
        .send(C, b"GET /after HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert!(e[0].flags.contains(Flags::RESPONSE_GAP) && e[0].incomplete);
    assert_eq!(e[0].response_body_size, Some(100));
    assert_eq!(
        body(&e[0].response_body),
        b"0123456789",
        "nothing after the hole"
    );
    assert_eq!(summary(&e[1]), (Some("GET"), Some("/after"), Some(200)));
    assert!(e[1].flags.is_empty());
}

/// One response lost whole in a keep-alive connection: the request it answered gets
/// no response, and every later pair stays right.
#[test]
fn lost_response_does_not_shift_later_pairs() {
    let mut sim = Sim::new();
    for i in 0..10 {
        let req = format!("GET /{i} HTTP/1.1\r\n\r\n");
        let resp = format!("HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", 200 + i);
        sim.send(C, req.as_bytes());
        if i == 4 {
            sim.lose(S, resp.len() as u64);
        } else {
            sim.send(S, resp.as_bytes());
        }
    }
    let e = sim.close();
    assert_eq!(e.len(), 10);
    for x in &e {
        let i: i32 = x.path.as_deref().unwrap()[1..].parse().unwrap();
        if i == 4 {
            assert_eq!(x.status_code, None);
            assert!(x.flags.contains(Flags::NO_RESPONSE | Flags::RESPONSE_GAP));
        } else {
            assert_eq!(x.status_code, Some(200 + i), "{x:?}");
            assert!(x.flags.is_empty(), "{x:?}");
        }
    }
}

/// A request lost whole: its response is reported without a request, and the next
/// pairs stay right because the response acknowledges less than the next request.
#[test]
fn lost_request_does_not_shift_later_pairs() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /0 HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 X\r\nContent-Length: 0\r\n\r\n")
        .lose(C, 20);
    // The server answers the lost request before the client sends the next one.
    sim.send(S, b"HTTP/1.1 201 X\r\nContent-Length: 0\r\n\r\n")
        .send(C, b"GET /2 HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 202 X\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    let got: Vec<_> = e.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some("/0"), Some(200)),
            (None, None, Some(201)),
            (Some("GET"), Some("/2"), Some(202)),
        ]
    );
}

#[test]
fn capture_joined_mid_body_resyncs_on_the_next_message() {
    let mut sim = Sim::with(Limits::default(), [true, true]);
    sim.send(S, b"tail of an earlier body\r\n")
        .send(C, b"GET /x HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(summary(&e[0]), (Some("GET"), Some("/x"), Some(200)));
}

#[test]
fn response_cut_by_the_end_keeps_its_status() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /f HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
    let e = sim.close();
    assert_eq!(summary(&e[0]), (Some("GET"), Some("/f"), Some(200)));
    assert!(e[0].flags.contains(Flags::TRUNCATED) && e[0].incomplete);
    assert_eq!(body(&e[0].response_body), b"partial");
}

#[test]
fn slow_response_times_out_but_keeps_its_place() {
    let mut sim = Sim::new();
    sim.send(C, b"GET /slow HTTP/1.1\r\n\r\n");
    let now = sim.ts + crate::RESPONSE_TIMEOUT_NS + 1;
    sim.conn.tick(&sim.ctx, now, &mut sim.out);
    let timed_out: Vec<Entry> = sim.out.entries.drain().collect();
    assert_eq!(timed_out.len(), 1);
    assert!(
        timed_out[0]
            .flags
            .contains(Flags::NO_RESPONSE | Flags::TIMEOUT)
    );
    // The late response belongs to /slow, not to the next request.
    sim.ts = now;
    sim.send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .send(C, b"GET /next HTTP/1.1\r\n\r\n")
        .send(S, b"HTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(summary(&e[0]), (Some("GET"), Some("/next"), Some(404)));
}

#[test]
fn oversized_head_is_dropped_and_the_stream_recovers() {
    let limits = Limits {
        max_head_bytes: 100,
        ..Limits::default()
    };
    let mut big = b"GET /big HTTP/1.1\r\n".to_vec();
    big.extend_from_slice(&b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(10));
    big.extend_from_slice(b"\r\n");
    // Whole in one segment, then split across segments: the same outcome.
    for split in [big.len(), 50] {
        let mut sim = Sim::with(limits, [false, false]);
        sim.send(C, &big[..split]);
        if split < big.len() {
            sim.send(C, &big[split..]);
        }
        sim.send(C, b"GET /small HTTP/1.1\r\n\r\n")
            .send(S, b"HTTP/1.1 431 Too Large\r\nContent-Length: 0\r\n\r\n")
            .send(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let e = sim.close();
        let got: Vec<_> = e.iter().map(summary).collect();
        assert_eq!(
            got,
            vec![
                (Some("GET"), Some("/big"), Some(431)),
                (Some("GET"), Some("/small"), Some(200))
            ]
        );
        assert!(e[0].flags.contains(Flags::HEAD_TOO_LARGE));
        let kept = e[0].request_headers.as_ref().unwrap().len();
        assert!((1..10).contains(&kept), "kept {kept} header fields");
        assert_eq!(e[0].request_size, Some(big.len() as u64));
    }
}

#[test]
fn http_through_a_socks5_proxy() {
    let mut sim = Sim::new();
    let mut req = vec![5, 1, 0, 3, 11];
    req.extend_from_slice(b"example.com");
    req.extend_from_slice(&[0, 80]);
    sim.send(C, &[5, 1, 0])
        .send(S, &[5, 0])
        .send(C, &req)
        .send(S, &[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90])
        .send(C, b"GET /via-proxy HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .send(S, b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 1);
    assert_eq!(summary(&e[0]), (Some("GET"), Some("/via-proxy"), Some(302)));
    assert!(e[0].flags.is_empty(), "{:?}", e[0].flags);
    assert_eq!(sim.out.stats.socks_tunnels, 1);
}

#[test]
fn not_http_is_ignored() {
    let mut sim = Sim::new();
    sim.send(C, b"SSH-2.0-OpenSSH_9.6\r\n")
        .send(S, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    assert!(sim.close().is_empty());
    assert_eq!(sim.out.stats.connections_unknown, 1);
}

fn exchange() -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    let mut resp = Vec::new();
    req.extend_from_slice(b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
    req.extend_from_slice(
        b"GET /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
    );
    resp.extend_from_slice(CHUNKED);
    req.extend_from_slice(b"GET /c HTTP/1.1\r\n\r\n");
    resp.extend_from_slice(b"HTTP/1.1 302 Found\r\nLocation: /d\r\nContent-Length: 0\r\n\r\n");
    (req, resp)
}

proptest! {
    /// However the bytes are cut into segments, the entries are the same.
    #[test]
    fn segmentation_does_not_matter(cuts_c in proptest::collection::vec(1usize..40, 1..30),
                                    cuts_s in proptest::collection::vec(1usize..40, 1..30)) {
        let (req, resp) = exchange();
        let whole = {
            let mut sim = Sim::new();
            sim.send(C, &req).send(S, &resp);
            sim.close()
        };
        let mut sim = Sim::new();
        for (data, cuts, dir) in [(&req, &cuts_c, C), (&resp, &cuts_s, S)] {
            let mut at = 0;
            let mut i = 0;
            while at < data.len() {
                let n = cuts[i % cuts.len()].min(data.len() - at);
                sim.send(dir, &data[at..at + n]);
                at += n;
                i += 1;
            }
        }
        let pieces = sim.close();
        prop_assert_eq!(pieces.len(), 3);
        for (a, b) in whole.iter().zip(&pieces) {
            prop_assert_eq!(summary(a), summary(b));
            prop_assert_eq!(&a.request_body, &b.request_body);
            prop_assert_eq!(&a.response_body, &b.response_body);
            prop_assert_eq!(a.request_size, b.request_size);
            prop_assert_eq!(a.response_size, b.response_size);
            prop_assert_eq!(a.flags, b.flags);
        }
    }

    /// Random bytes in either direction never panic and never make more entries than
    /// there are message starts.
    #[test]
    fn garbage_is_survived(c in proptest::collection::vec(any::<u8>(), 0..600),
                           s in proptest::collection::vec(any::<u8>(), 0..600),
                           prefix in any::<bool>()) {
        let mut sim = Sim::new();
        if prefix {
            sim.send(C, b"GET / HTTP/1.1\r\n");
        }
        sim.send(C, &c).send(S, &s).lose(S, 7).send(S, &c);
        let e = sim.close();
        prop_assert!(e.len() < 100);
    }
}
