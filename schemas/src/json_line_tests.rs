//! The fast JSON writer against serde: on random entries it must write exactly the bytes
//! serde_json (with the line-safe formatter) writes, which parse to `to_value(&entry)`,
//! on one line.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    Body, CaptureSource, Entry, Flags, Headers, Protocol, Transport, write_json_line,
    write_json_line_serde,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// Strings rich in what the escaper must handle, and arbitrary ones.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "(\\PC|[\\x00-\\x1f\\x7f\"\\\\/\u{85}\u{a0}\u{2028}\u{2029}\u{2027}€—😀])*",
        1 => any::<String>(),
        1 => "[a-zA-Z0-9 /._-]{0,40}",
        // Long enough to cross several 16-byte chunks.
        1 => "([a-z]{0,20}[\u{2028}\u{2029}\u{85}€\"\\\\\\n\\x01é😀]){0,12}",
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    option::of(text())
}

fn ip() -> impl Strategy<Value = IpAddr> {
    let segment = prop_oneof![Just(0u16), Just(1u16), any::<u16>()];
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // Zero runs, to exercise `::` compression.
        [
            segment.clone(),
            segment.clone(),
            segment.clone(),
            segment.clone(),
            segment.clone(),
            segment.clone(),
            segment.clone(),
            segment
        ]
        .prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
        any::<u32>().prop_map(|v| IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped())),
    ]
}

fn headers() -> impl Strategy<Value = Option<Headers>> {
    let name = prop_oneof![
        select(vec![
            "Host",
            "Accept",
            "accept",
            "ACCEPT",
            "Set-Cookie",
            "set-cookie",
            "SET-COOKIE",
            "Content-Type",
            "X-\u{2028}\"",
            "",
        ])
        .prop_map(String::from),
        text(),
    ];
    option::of(vec((name, text()), 0..12).prop_map(Headers))
}

fn body() -> impl Strategy<Value = Option<Body>> {
    option::of(
        prop_oneof![
            text().prop_map(String::into_bytes),
            // Mostly not UTF-8.
            vec(any::<u8>(), 0..300),
            // UTF-8 text cut inside a character.
            "[a-z€😀]{1,30}".prop_map(|s: String| {
                let mut b = s.into_bytes();
                if b.last().is_some_and(|&x| x >= 0x80) {
                    b.pop();
                }
                b
            }),
        ]
        .prop_map(Body),
    )
}

fn labels() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    option::of(btree_map(text(), text(), 0..5))
}

fn list() -> impl Strategy<Value = Option<Vec<String>>> {
    option::of(vec(text(), 0..5))
}

fn entry() -> impl Strategy<Value = Entry> {
    let scalars = (
        text(),
        any::<i64>(),
        option::of(any::<i64>()),
        select(Protocol::ALL.to_vec()),
        select(Transport::ALL.to_vec()),
        select(CaptureSource::ALL.to_vec()),
        (
            ip(),
            option::of(any::<u16>()),
            ip(),
            option::of(any::<u16>()),
        ),
        vec(option::of(any::<i32>()), 4),
        vec(option::of(any::<u64>()), 4),
        (option::of(any::<u32>()), option::of(any::<u32>())),
        any::<bool>(),
        any::<u32>(),
    );
    let composite = (
        vec(opt_text(), 43),
        (headers(), headers()),
        (body(), body()),
        (labels(), labels()),
        (list(), list(), list()),
    );
    (scalars, composite).prop_map(|(s, c)| {
        let (id, timestamp, elapsed_time, protocol, transport, capture_source, ips, i32s, u64s) =
            (s.0, s.1, s.2, s.3, s.4, s.5, s.6, s.7, s.8);
        let ((src_pid, dst_pid), incomplete, flag_bits) = (s.9, s.10, s.11);
        let (strings, (request_headers, response_headers), (request_body, response_body)) =
            (c.0, c.1, c.2);
        let ((src_labels, dst_labels), (dns_questions, dns_answers, tls_alpn)) = (c.3, c.4);
        let mut e = Entry {
            id,
            timestamp,
            elapsed_time,
            protocol,
            transport,
            capture_source,
            src_ip: ips.0,
            src_port: ips.1,
            dst_ip: ips.2,
            dst_port: ips.3,
            status_code: i32s[0],
            grpc_status: i32s[1],
            kafka_api_version: i32s[2],
            mqtt_qos: i32s[3],
            request_size: u64s[0],
            response_size: u64s[1],
            request_body_size: u64s[2],
            response_body_size: u64s[3],
            src_pid,
            dst_pid,
            incomplete,
            // Unknown bits included: they have no name in either writer.
            flags: Flags(flag_bits),
            request_headers,
            response_headers,
            request_body,
            response_body,
            src_labels,
            dst_labels,
            dns_questions,
            dns_answers,
            tls_alpn,
            ..Entry::default()
        };
        let mut strings = strings.into_iter();
        let mut next = || strings.next().flatten();
        for field in [
            &mut e.node,
            &mut e.method,
            &mut e.path,
            &mut e.summary,
            &mut e.http_version,
            &mut e.src_pod,
            &mut e.src_namespace,
            &mut e.src_service,
            &mut e.src_workload,
            &mut e.src_workload_kind,
            &mut e.src_node,
            &mut e.src_process,
            &mut e.dst_pod,
            &mut e.dst_namespace,
            &mut e.dst_service,
            &mut e.dst_workload,
            &mut e.dst_workload_kind,
            &mut e.dst_node,
            &mut e.dst_process,
            &mut e.grpc_method,
            &mut e.grpc_message,
            &mut e.graphql_operation,
            &mut e.graphql_operation_type,
            &mut e.ws_opcode,
            &mut e.dns_rcode,
            &mut e.redis_command,
            &mut e.redis_key,
            &mut e.kafka_api_key_name,
            &mut e.kafka_topic,
            &mut e.kafka_client_id,
            &mut e.amqp_method,
            &mut e.amqp_exchange,
            &mut e.amqp_routing_key,
            &mut e.postgresql_query,
            &mut e.mysql_query,
            &mut e.mongodb_command,
            &mut e.mongodb_database,
            &mut e.mongodb_collection,
            &mut e.mqtt_topic,
            &mut e.tls_sni,
            &mut e.tls_version,
            &mut e.tls_ja3,
            &mut e.tls_ja4,
        ] {
            *field = next();
        }
        e
    })
}

fn fast_line(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    write_json_line(&mut out, e).expect("writing to a Vec");
    out
}

fn serde_line(e: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    write_json_line_serde(&mut out, e).expect("writing to a Vec");
    out
}

fn check(e: &Entry) -> Result<(), TestCaseError> {
    let fast = fast_line(e);
    let text = std::str::from_utf8(&fast).expect("the line is UTF-8");
    // One line: a single '\n', at the end; no raw control characters or Unicode line
    // separators anywhere.
    prop_assert!(text.ends_with('\n'));
    let body = &text[..text.len() - 1];
    prop_assert!(
        !body.bytes().any(|b| b < 0x20),
        "raw control byte in {body:?}"
    );
    prop_assert!(
        !body.contains(['\u{2028}', '\u{2029}', '\u{85}']),
        "raw line separator in {body:?}"
    );
    prop_assert_eq!(body.lines().count(), 1);
    // The same JSON value as serde gives the entry.
    let parsed: serde_json::Value = serde_json::from_slice(&fast).expect("valid JSON");
    prop_assert_eq!(
        &parsed,
        &serde_json::to_value(e).expect("an entry is a JSON value")
    );
    // Reads back as the entry (headers aside: JSON combines repeated fields; and flag
    // bits without a name are not written). Checks the base64 of binary bodies, which
    // both writers share.
    let mut back: Entry = serde_json::from_slice(&fast).expect("an entry");
    let mut want = e.clone();
    let named = Flags::ALL.iter().fold(Flags::empty(), |a, (f, _)| a | *f);
    for x in [&mut back, &mut want] {
        x.request_headers = None;
        x.response_headers = None;
        x.flags = x.flags & named;
    }
    prop_assert_eq!(back, want);
    // Byte for byte the old writer's line: same keys in the same order, same escapes.
    let old = serde_line(e);
    prop_assert!(
        fast == old,
        "fast:  {}\nserde: {}",
        text,
        String::from_utf8_lossy(&old)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn fast_line_is_the_serde_line(e in entry()) {
        check(&e)?;
    }
}

#[test]
fn default_entry() {
    let e = Entry::default();
    check(&e).unwrap();
    assert_eq!(
        String::from_utf8(fast_line(&e)).unwrap(),
        concat!(
            r#"{"id":"","timestamp":0,"protocol":"http","transport":"tcp","src_ip":"0.0.0.0","#,
            r#""dst_ip":"0.0.0.0","capture_source":"pcap","incomplete":false}"#,
            "\n"
        )
    );
}

#[test]
fn repeated_headers_and_bodies() {
    let mut h = Headers::new();
    h.push("Accept", "a\u{2028}");
    h.push("Set-Cookie", "x=1, y");
    h.push("accept", "b\"");
    h.push("SET-COOKIE", "z=2");
    h.push("X-Empty", "");
    let e = Entry {
        request_headers: Some(h),
        response_headers: Some(Headers::new()),
        request_body: Some(Body(b"{\"a\":\"\xe2\x80\xa8\"}".to_vec())),
        response_body: Some(Body(vec![0xff, 0, 0x10, 0xe2, 0x80])),
        flags: Flags::NO_RESPONSE | Flags::TRUNCATED,
        src_labels: Some(BTreeMap::new()),
        dns_questions: Some(vec![]),
        ..Entry::default()
    };
    check(&e).unwrap();
    let line = String::from_utf8(fast_line(&e)).unwrap();
    assert!(line.contains(
        r#""request_headers":{"Accept":"a\u2028, b\"","Set-Cookie":"x=1, y\nz=2","X-Empty":""},"response_headers":{},"#
    ));
    assert!(
        line.contains(
            r#""request_body":"{\"a\":\"\u2028\"}","response_body":{"base64":"/wAQ4oA="},"#
        )
    );
    assert!(
        line.contains(r#""flags":["no_response","truncated"],"src_labels":{},"dns_questions":[]"#)
    );
}

/// A writer that writes JSON lines itself while writing: the thread's buffer must not
/// be shared between the two calls.
#[test]
fn nested_write_json_line() {
    struct Nested(Vec<u8>);
    impl std::io::Write for Nested {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut inner = Vec::new();
            write_json_line(&mut inner, &Entry::default())?;
            self.0.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = Entry {
        id: "x".repeat(1000),
        ..Entry::default()
    };
    let mut w = Nested(Vec::new());
    write_json_line(&mut w, &e).unwrap();
    assert_eq!(w.0, serde_line(&e));
}
