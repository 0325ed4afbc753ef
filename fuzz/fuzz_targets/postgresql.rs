//! PostgreSQL on fuzzer-chosen bytes: the message readers, the probe, and the
//! dissector on segments, gaps and ends for either direction (after a real startup
//! exchange, or not). Must never panic; every entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::{Limits, Output, Seg};
use reef_reassembly::{Dir, Endpoint, FlowCtx};
use reef_schema::Flags;
use reef_dissect::postgresql::{self as proto, msg};

const PORT: u16 = 5432;

/// A startup message and the server's authentication-ok, key data and ready.
fn opening(client: Dir, _alt: bool) -> Vec<(Dir, Vec<u8>)> {
    let startup = b"\x00\x00\x00\x13\x00\x03\x00\x00user\x00u\x00\x00\x00\x00".to_vec();
    let mut s = b"R\x00\x00\x00\x08\x00\x00\x00\x00".to_vec();
    s.extend_from_slice(b"K\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x02");
    s.extend_from_slice(b"Z\x00\x00\x00\x05I");
    vec![(client, startup), (client.flip(), s)]
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let b = &data[1..];
    let _ = msg::untyped_len(b);
    let _ = msg::parse_untyped(b);
    let _ = msg::parse_error(b);
    let _ = msg::parse_tag(b);
    let _ = msg::parse_parse(b);
    let _ = msg::parse_bind(b);
    let _ = msg::looks_like_frontend(b);
    let _ = msg::looks_like_backend(b);
    let q = msg::query_text(b);
    assert!(q.len() <= msg::MAX_QUERY_BYTES);
    let _ = msg::lossy(b, usize::from(data[0]));

    let ctx = FlowCtx {
        id: 1,
        endpoints: [
            Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
            Endpoint { ip: "10.0.0.2".parse().unwrap(), port: PORT },
        ],
        opener_known: data[0] & 1 == 0,
        midstream: [data[0] & 2 != 0, data[0] & 4 != 0],
    };
    let _ = proto::probe(&ctx, Dir::Forward, &data[1..]);
    let _ = proto::probe(&ctx, Dir::Reverse, &data[1..]);
    let limits = Limits {
        max_body_bytes: 256,
        max_head_bytes: 512,
        response_timeout_ns: 1_000_000,
        max_kept_body_bytes_total: 4096,
        ..Limits::default()
    };
    let mut out = Output::new(limits, "fuzz");
    let client = if data[0] & 16 == 0 { Dir::Forward } else { Dir::Reverse };
    let mut d = proto::make(client, &ctx, &out);
    let mut off = [0u64; 2];
    let mut ts = 0i64;
    // A real opening first, so that the fuzzer's bytes reach the later states.
    if data[0] & 32 != 0 {
        for (dir, bytes) in opening(client, data[0] & 64 != 0) {
            let i = dir.index();
            ts += 1_000;
            let seg = Seg { dir, offset: off[i], data: &bytes, ts, peer_ack: Some(off[1 - i]) };
            d.data(&ctx, seg, &mut out);
            off[i] += bytes.len() as u64;
        }
    }
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
        d.tick(&ctx, ts * 1000, &mut out);
        rest = &tail[n..];
    }
    for dir in [Dir::Forward, Dir::Reverse] {
        d.end(&ctx, dir, ts, &mut out);
    }
    d.closed(&ctx, ts, &mut out);
    for e in out.entries.iter() {
        assert_eq!(e.incomplete, e.flags.intersects(Flags::INCOMPLETE));
        assert!(e.method.is_some() || e.status_code.is_some() || e.response_size.is_some());
        assert!(e.request_size.is_some() || e.response_size.is_some());
        assert!(!(e.flags.contains(Flags::NO_RESPONSE) && e.response_size.is_some()));
        assert!(!(e.flags.contains(Flags::NO_REQUEST) && e.request_size.is_some()));
        assert!(e.elapsed_time.is_none_or(|t| t >= 0));
        for b in [&e.request_body, &e.response_body].into_iter().flatten() {
            assert!(b.0.len() <= limits.max_body_bytes + 64);
        }
    }
});
