//! WebSocket on fuzzer-chosen bytes: the frame header reader on the raw input, and
//! the dissector (with or without permessage-deflate, with or without context
//! takeover) on segments, gaps and ends for either direction. Must never panic; every
//! entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::websocket::{self as proto, Deflate, Handshake, frame};
use reef_dissect::{Limits, Output, Seg, StreamDissector};
use reef_reassembly::{Dir, Endpoint, FlowCtx};
use reef_schema::Flags;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    if let frame::Parsed::Header(h) = frame::header(&data[1..]) {
        assert!(h.len <= frame::MAX_HEADER_LEN && h.len <= data.len() - 1);
    }

    let ctx = FlowCtx {
        id: 1,
        endpoints: [
            Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
            Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 80 },
        ],
        opener_known: true,
        midstream: [false, false],
    };
    let limits = Limits { max_body_bytes: 256, max_kept_body_bytes_total: 4096, ..Limits::default() };
    let mut out = Output::new(limits, "fuzz");
    let client = if data[0] & 16 == 0 { Dir::Forward } else { Dir::Reverse };
    let hs = Handshake {
        path: Some("/ws".into()),
        parent_id: Some("fuzz-0".into()),
        deflate: (data[0] & 1 != 0).then_some(Deflate {
            client_no_context_takeover: data[0] & 2 != 0,
            server_no_context_takeover: data[0] & 4 != 0,
        }),
    };
    let mut d = proto::WebSocket::new(client, &ctx, &out, hs);
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
            d.gap(&ctx, dir, len as u64, ts, &mut out);
            off[i] += len as u64;
            rest = tail;
            continue;
        }
        let n = len.min(tail.len());
        let seg = Seg { dir, offset: off[i], data: &tail[..n], ts, peer_ack: Some(off[1 - i]) };
        d.data(&ctx, seg, &mut out);
        off[i] += n as u64;
        rest = &tail[n..];
    }
    for dir in [Dir::Forward, Dir::Reverse] {
        d.end(&ctx, dir, ts, &mut out);
    }
    d.closed(&ctx, ts, &mut out);
    for e in out.entries.iter() {
        assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE));
        assert_eq!(e.method, e.ws_opcode);
        assert!(e.request_size.is_some() != e.response_size.is_some());
        assert!(e.elapsed_time.is_none_or(|t| t >= 0));
        for b in [&e.request_body, &e.response_body].into_iter().flatten() {
            assert!(b.0.len() <= limits.max_body_bytes);
        }
    }
});
