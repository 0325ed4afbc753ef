//! gRPC on the corpus (Go clients and servers, a 2-packet capture, a capture that
//! starts mid-connection with lost segments) and on a capture of a Python (grpcio)
//! server and client, with and without the user's descriptor set, and live between a
//! grpcio server and client (`running_server`).
//!
//! `check_truth.py --proto grpc` finds every call tshark reports. Reef has one call
//! more, where tshark 4.0 does not look:
//!
//! - `http2_suricata_errorcode`: the client reaches the server through an HTTP/1.1
//!   proxy with `CONNECT 127.0.0.1:6233`, and the proxy opens its own connection to
//!   the server. tshark decodes the proxy's connection (decode-as port 6233) but not
//!   the tunnel inside the CONNECT (port 8888 starts as HTTP/1.1, so its decode-as
//!   rule for http2 never applies to the tunnelled bytes). Reef hands the tunnel to
//!   fresh detection, which finds the HTTP/2 preface: the same call is seen twice,
//!   once per hop (`the_call_inside_a_connect_tunnel_is_seen_too`).

// Helpers outside #[test] functions unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use reef_engine::{Config, Engine};
use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_pcap::CaptureReader;
use reef_schema::{Entry, Flags, Protocol};

fn calls(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Grpc)
        .collect()
}

fn corpus_calls(name: &str) -> Vec<Entry> {
    calls(dissect_file(&corpus_file(name)).0)
}

fn text(b: &Option<reef_schema::Body>) -> &str {
    std::str::from_utf8(&b.as_ref().unwrap().0).unwrap()
}

fn check_call(e: &Entry, path: &str, status: i32, messages: (u32, u32)) {
    assert_eq!(e.protocol, Protocol::Grpc);
    assert_eq!(e.method.as_deref(), Some("POST"));
    assert_eq!(e.path.as_deref(), Some(path));
    assert_eq!(e.grpc_method.as_deref(), Some(path));
    assert_eq!(e.status_code, Some(status));
    assert_eq!(e.grpc_status, Some(status));
    assert_eq!(e.http_version.as_deref(), Some("2"));
    assert_eq!(
        (
            e.grpc_request_messages.unwrap_or(0),
            e.grpc_response_messages.unwrap_or(0)
        ),
        messages,
        "{path}"
    );
}

#[test]
fn mid_connection_server_stream_with_lost_segments() {
    // The capture has no preface and no SETTINGS, and three segments of the server
    // are missing (inside DATA frames): the framing holds, the five messages are
    // counted, and the trailers still give the status.
    let e = corpus_calls("grpc_deepflow_server-stream");
    assert_eq!(e.len(), 1);
    let c = &e[0];
    check_call(
        c,
        "/timeseriesquery.TimeSeriesQueryService/ServerStreamQuery",
        0,
        (1, 5),
    );
    assert!(c.flags.contains(Flags::RESPONSE_GAP));
    assert!(
        !c.flags.contains(Flags::MALFORMED),
        "stream 1: the tables were empty"
    );
    assert_eq!(c.response_body_size, Some(3223));
    assert_eq!(
        c.request_headers.as_ref().unwrap().get("openid"),
        Some("req-010-0207")
    );
    // The request message shown without a schema.
    assert_eq!(
        text(&c.request_body),
        r#"{"1": {"1": 60, "2": ["host_id", "vpc"], "3": 1712066400, "4": 1712070000}}"#
    );
}

#[test]
fn two_packet_exchange_joined_mid_connection() {
    let e = corpus_calls("http2_deepflow_h2c-ascii");
    assert_eq!(e.len(), 1);
    check_call(&e[0], "/hipstershop.CartService/GetCart", 0, (1, 1));
    assert_eq!(e[0].grpc_message.as_deref(), Some(""));
    assert_eq!(
        (e[0].request_body_size, e[0].response_body_size),
        (Some(43), Some(21))
    );
}

#[test]
fn client_streaming_from_go() {
    for name in ["grpc_deepflow_service-name", "grpc_packt_client-streaming"] {
        let e = corpus_calls(name);
        assert_eq!(e.len(), 1, "{name}");
        let path = if name.contains("deepflow") {
            "/StreamingService/ClientStreamRPC"
        } else {
            "/greet.GreetService/LongGreet"
        };
        check_call(&e[0], path, 0, (3, 1));
        assert!(e[0].flags.is_empty(), "{name}: {:?}", e[0].flags);
        assert_eq!(text(&e[0].request_body).lines().count(), 3);
    }
}

#[test]
fn one_unary_call_among_unrelated_traffic() {
    let e = corpus_calls("grpc_packt_unary");
    assert_eq!(e.len(), 1);
    check_call(&e[0], "/greet.GreetService/Greet", 0, (1, 1));
    assert!(e[0].src_ip.is_ipv6());
}

#[test]
fn the_call_inside_a_connect_tunnel_is_seen_too() {
    let (all, stats) = dissect_file(&corpus_file("http2_suricata_errorcode"));
    let connect = all
        .iter()
        .find(|e| e.method.as_deref() == Some("CONNECT"))
        .unwrap();
    assert_eq!(connect.status_code, Some(200));
    assert!(connect.flags.contains(Flags::UPGRADE));
    assert_eq!(stats.dissect.upgrades, 1);
    let e = calls(all);
    assert_eq!(e.len(), 2);
    for c in &e {
        check_call(c, "/helloworld.GreeterService/SayHello", 0, (1, 1));
        assert_eq!(c.grpc_message.as_deref(), Some("OK"));
    }
    // One through the proxy's port (the tunnel, which tshark does not decode), one
    // from the proxy to the server.
    let mut ports: Vec<u16> = e.iter().map(|c| c.dst_port.unwrap()).collect();
    ports.sort();
    assert_eq!(ports, [6233, 8888]);
}

fn python_calls(limits: reef_dissect::Limits) -> Vec<Entry> {
    let bytes = std::fs::read(case_dir("grpc-python").join("capture.pcap")).unwrap();
    let mut reader = CaptureReader::new(Cursor::new(bytes)).unwrap();
    let mut engine = Engine::new(Config {
        dissect: limits,
        ..Config::default()
    });
    let mut out = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        engine.packet(p.ts_ns, p.link_type, p.data);
        out.extend(engine.take_entries());
    }
    engine.finish();
    out.extend(engine.take_entries());
    calls(out)
}

#[test]
fn python_grpcio_unary_streaming_errors_and_gzip() {
    let e = python_calls(reef_dissect::Limits::default());
    assert_eq!(e.len(), 6);
    check_call(&e[0], "/reef.demo.Echo/Say", 0, (1, 1));
    // The second call's request is gzip-compressed (grpc-encoding: gzip).
    check_call(&e[1], "/reef.demo.Echo/Say", 0, (1, 1));
    assert_eq!(
        e[1].request_headers.as_ref().unwrap().get("grpc-encoding"),
        Some("gzip")
    );
    assert!(text(&e[1].request_body).starts_with(r#"{"1": "zipped zipped"#));
    // An error status, its message percent-decoded, and no response message.
    check_call(&e[2], "/reef.demo.Echo/Fail", 5, (1, 0));
    assert_eq!(e[2].grpc_message.as_deref(), Some("no such thing: ✓ 100%"));
    check_call(&e[3], "/reef.demo.Echo/Countdown", 0, (1, 5));
    check_call(&e[4], "/reef.demo.Echo/Gather", 0, (3, 1));
    check_call(&e[5], "/reef.demo.Echo/Chat", 0, (2, 2));
    assert_eq!(
        text(&e[5].response_body),
        "{\"1\": \"HI\", \"2\": 1}\n{\"1\": \"THERE\", \"2\": 2}"
    );
    assert!(e.iter().all(|c| !c.incomplete));
}

#[test]
fn messages_decoded_with_the_descriptor_set() {
    let desc = std::fs::read(case_dir("grpc-python").join("demo.desc")).unwrap();
    let schema = reef_dissect::grpc::ProtoSchema::from_descriptor_set(&desc).unwrap();
    let schema: &'static _ = Box::leak(Box::new(schema));
    let e = python_calls(reef_dissect::Limits {
        proto_schema: Some(schema),
        ..reef_dissect::Limits::default()
    });
    assert_eq!(
        text(&e[0].request_body),
        r#"{"text": "reef", "n": 41, "tags": ["a", "b"], "kind": "LOUD", "attrs": {"x": 1, "y": -2}, "inner": {"blob": {"base64": "AP8="}, "ok": true}, "score": 2.25}"#
    );
    assert_eq!(
        text(&e[0].response_body),
        r#"{"text": "hello reef", "n": 42, "kind": "QUIET", "score": 0.5}"#
    );
    assert_eq!(text(&e[4].response_body), r#"{"n": 3}"#);
    // A file that is not a descriptor set is refused.
    assert!(reef_dissect::grpc::ProtoSchema::from_descriptor_set(b"\x0a\x05hello").is_err());
}

mod running_server {
    use std::process::Command;
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use super::{check_call, text};
    use crate::live_tools::{SETTLE, python_with, run};

    /// A grpcio server and client in one program, the service of
    /// `cases/grpc-python/demo.proto` (`reef.demo.Echo`) with its messages encoded by
    /// hand (no generated code, no protobuf module): unary (plain and gzip), an
    /// error status, server streaming (5), client streaming (3), bidirectional (2
    /// each way). The server takes a free port and the program prints it.
    const SCRIPT: &str = r#"
import sys
from concurrent import futures
import grpc

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def read_varint(b, i):
    n = shift = 0
    while True:
        n |= (b[i] & 0x7f) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            return n, i

def fields(b):
    out, i = {}, 0
    while i < len(b):
        key, i = read_varint(b, i)
        if key & 7 == 0:
            v, i = read_varint(b, i)
        elif key & 7 == 2:
            n, i = read_varint(b, i)
            v, i = bytes(b[i:i + n]), i + n
        else:
            raise ValueError(key)
        out[key >> 3] = v
    return out

def msg(text, n):  # Msg {text = 1; n = 2}
    t = text.encode()
    return b"\x0a" + varint(len(t)) + t + b"\x10" + varint(n)

def count(n):  # Count {n = 1}
    return b"\x08" + varint(n)

def text_n(b):
    f = fields(b)
    return f.get(1, b"").decode(), f.get(2, 0)

def say(req, ctx):
    t, n = text_n(req)
    return msg("hello " + t, n + 1)

def fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: \u2713 100%")

def countdown(req, ctx):
    for i in range(fields(req).get(1, 0), 0, -1):
        yield msg("tick", i)

def gather(reqs, ctx):
    return count(sum(1 for _ in reqs))

def chat(reqs, ctx):
    for r in reqs:
        t, n = text_n(r)
        yield msg(t.upper(), n)

server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("reef.demo.Echo", {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Fail": grpc.unary_unary_rpc_method_handler(fail),
    "Countdown": grpc.unary_stream_rpc_method_handler(countdown),
    "Gather": grpc.stream_unary_rpc_method_handler(gather),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
}),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print("port", port, flush=True)
opts = [("grpc.enable_http_proxy", 0)]
with grpc.insecure_channel(f"127.0.0.1:{port}", options=opts) as ch:
    m = lambda name: "/reef.demo.Echo/" + name
    assert text_n(ch.unary_unary(m("Say"))(msg("reef", 41), timeout=30)) == ("hello reef", 42)
    z = ch.unary_unary(m("Say"))(msg("zipped " * 20, 1), timeout=30,
                                 compression=grpc.Compression.Gzip)
    assert text_n(z)[0].startswith("hello zipped")
    try:
        ch.unary_unary(m("Fail"))(msg("x", 0), timeout=30)
        raise SystemExit("Fail did not fail")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
    got = [text_n(r)[1] for r in ch.unary_stream(m("Countdown"))(count(5), timeout=30)]
    assert got == [5, 4, 3, 2, 1], got
    g = ch.stream_unary(m("Gather"))(iter([msg(str(i), i) for i in range(3)]), timeout=30)
    assert fields(g) == {1: 3}, g
    c = ch.stream_stream(m("Chat"))(iter([msg("hi", 1), msg("there", 2)]), timeout=30)
    assert [text_n(r) for r in c] == [("HI", 1), ("THERE", 2)]
server.stop(None)
print("done", flush=True)
"#;

    #[test]
    fn live_python_grpcio_calls_of_every_kind() {
        let py = python_with("grpc", "pip install grpcio");
        let cap = LiveCapture::start("lo");
        let out = run(
            Command::new(py).args(["-c", SCRIPT]),
            Duration::from_secs(60),
        );
        let (entries, stats) = cap.stop(SETTLE);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("done"), "{said}");
        let port: u16 = said
            .lines()
            .find_map(|l| l.strip_prefix("port "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let e: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.dst_port == Some(port))
            .collect();
        assert!(
            e.iter().all(|c| c.protocol == Protocol::Grpc),
            "{e:#?} {stats:?}"
        );
        assert_eq!(e.len(), 6, "{e:#?} {stats:?}");
        check_call(e[0], "/reef.demo.Echo/Say", 0, (1, 1));
        assert_eq!(text(&e[0].request_body), r#"{"1": "reef", "2": 41}"#);
        assert_eq!(text(&e[0].response_body), r#"{"1": "hello reef", "2": 42}"#);
        check_call(e[1], "/reef.demo.Echo/Say", 0, (1, 1));
        assert_eq!(
            e[1].request_headers.as_ref().unwrap().get("grpc-encoding"),
            Some("gzip")
        );
        assert!(text(&e[1].request_body).starts_with(r#"{"1": "zipped zipped"#));
        check_call(e[2], "/reef.demo.Echo/Fail", 5, (1, 0));
        assert_eq!(e[2].grpc_message.as_deref(), Some("no such thing: ✓ 100%"));
        check_call(e[3], "/reef.demo.Echo/Countdown", 0, (1, 5));
        check_call(e[4], "/reef.demo.Echo/Gather", 0, (3, 1));
        assert_eq!(text(&e[4].response_body), r#"{"1": 3}"#);
        check_call(e[5], "/reef.demo.Echo/Chat", 0, (2, 2));
        assert_eq!(
            text(&e[5].response_body),
            "{\"1\": \"HI\", \"2\": 1}\n{\"1\": \"THERE\", \"2\": 2}"
        );
        assert!(
            e.iter().all(|c| !c.incomplete && c.flags.is_empty()),
            "{e:#?}"
        );
        // One channel: every call on one connection, a stream each.
        assert!(e.iter().all(|c| c.src_port == e[0].src_port));
        let ids: Vec<u32> = e.iter().map(|c| c.http2_stream_id.unwrap()).collect();
        assert_eq!(ids, [1, 3, 5, 7, 9, 11]);
    }
}
