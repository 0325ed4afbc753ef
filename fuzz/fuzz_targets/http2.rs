//! The HTTP/2 and gRPC dissector on fuzzer-chosen byte streams: after the client
//! preface (or joined mid-connection), the input is cut into segments for either
//! direction, with gaps and ends in between, as reassembly would deliver them. Must
//! never panic; every entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::{Conn, Limits, Output};
use reef_reassembly::{Dir, Endpoint, EndReason, FlowCtx, FlowStats, StreamEvent};
use reef_schema::{Flags, Protocol};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mid = data[0] & 2 != 0;
    let ctx = FlowCtx {
        id: 1,
        endpoints: [
            Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
            Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 8080 },
        ],
        opener_known: !mid,
        midstream: [mid, mid],
    };
    let limits = Limits {
        max_body_bytes: 256,
        max_head_bytes: 512,
        response_timeout_ns: 1_000_000,
        max_kept_body_bytes_total: 4096,
        ..Limits::default()
    };
    let mut out = Output::new(limits, "fuzz");
    let mut conn = Conn::default();
    let mut off = [0u64; 2];
    let mut ts = 0i64;
    if !mid {
        let ev = StreamEvent::Data { dir: Dir::Forward, offset: 0, data: PREFACE, ts, peer_ack: Some(0) };
        off[0] = PREFACE.len() as u64;
        conn.on_event(&ctx, ev, &mut out);
    }
    let mut rest = &data[1..];
    // Each piece: a control byte (direction, gap or data, length) then the bytes.
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 1 == 0 { Dir::Forward } else { Dir::Reverse };
        let i = dir.index();
        let len = usize::from(ctl >> 2) * 4 + 1;
        ts += 1_000;
        if ctl & 2 != 0 && ctl & 0xf0 == 0xf0 {
            let ev = StreamEvent::Gap { dir, offset: off[i], len: len as u64, ts };
            off[i] += len as u64;
            conn.on_event(&ctx, ev, &mut out);
            rest = tail;
            continue;
        }
        let n = len.min(tail.len());
        let ev = StreamEvent::Data { dir, offset: off[i], data: &tail[..n], ts, peer_ack: Some(off[1 - i]) };
        off[i] += n as u64;
        conn.on_event(&ctx, ev, &mut out);
        conn.tick(&ctx, ts * 1000, &mut out);
        rest = &tail[n..];
    }
    for dir in [Dir::Forward, Dir::Reverse] {
        conn.on_event(&ctx, StreamEvent::End { dir, reason: EndReason::Fin, ts }, &mut out);
    }
    let stats = FlowStats::default();
    conn.on_event(&ctx, StreamEvent::Closed { stats: &stats, ts }, &mut out);
    for e in out.entries.iter() {
        if e.protocol == Protocol::Grpc {
            assert_eq!(e.grpc_method, e.path);
            assert_eq!(e.grpc_status, e.status_code);
        }
        if let Some(b) = &e.request_body {
            assert!(b.0.len() <= limits.max_body_bytes);
        }
        if let Some(b) = &e.response_body {
            assert!(b.0.len() <= limits.max_body_bytes);
        }
        for h in [&e.request_headers, &e.response_headers].into_iter().flatten() {
            let kept: usize = h.iter().map(|(n, v)| n.len() + v.len()).sum();
            // Headers and trailers are each capped.
            assert!(kept <= 4 * limits.max_head_bytes);
        }
        assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE));
    }
});
