//! The HTTP/1 dissector on fuzzer-chosen byte streams: the input is cut into segments
//! for either direction, with gaps and ends in between, as reassembly would deliver
//! them. Must never panic; every entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::{Conn, Limits, Output};
use reef_reassembly::{Dir, Endpoint, EndReason, FlowCtx, FlowStats, StreamEvent};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let ctx = FlowCtx {
        id: 1,
        endpoints: [
            Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
            Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 80 },
        ],
        opener_known: data[0] & 1 == 0,
        midstream: [data[0] & 2 != 0, data[0] & 4 != 0],
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
    let mut rest = &data[1..];
    // Each piece: a control byte (direction, gap or data, length) then the bytes.
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 1 == 0 { Dir::Forward } else { Dir::Reverse };
        let i = dir.index();
        let len = usize::from(ctl >> 2) + 1;
        ts += 1_000;
        if ctl & 2 != 0 {
            let ev = StreamEvent::Gap { dir, offset: off[i], len: len as u64, ts };
            off[i] += len as u64;
            conn.on_event(&ctx, ev, &mut out);
            rest = tail;
            continue;
        }
        let n = len.min(tail.len());
        let ev = StreamEvent::Data {
            dir,
            offset: off[i],
            data: &tail[..n],
            ts,
            peer_ack: Some(off[1 - i]),
        };
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
        assert!(e.method.is_some() || e.status_code.is_some());
        if let Some(b) = &e.request_body {
            assert!(b.0.len() <= limits.max_body_bytes);
        }
        if let Some(b) = &e.response_body {
            assert!(b.0.len() <= limits.max_body_bytes);
        }
        assert_eq!(e.incomplete, e.flags.intersects(reef_schema::Flags::INCOMPLETE));
    }
});
