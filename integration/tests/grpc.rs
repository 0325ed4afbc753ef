//! gRPC on the corpus (Go clients and servers, a 2-packet capture, a capture that
//! starts mid-connection with lost segments) and on a capture of a Python (grpcio)
//! server and client, with and without the user's descriptor set.
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
