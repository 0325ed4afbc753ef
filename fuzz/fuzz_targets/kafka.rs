//! Kafka on fuzzer-chosen bytes: request and response bodies for every API key and
//! version, the probe, and the dissector on segments, gaps and ends for either
//! direction (after a real ApiVersions exchange, or not). Must never panic; every
//! entry must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::{Limits, Output, Seg};
use reef_reassembly::{Dir, Endpoint, FlowCtx};
use reef_schema::Flags;
use reef_dissect::kafka::{self as proto, api};

const PORT: u16 = 9092;

/// An ApiVersions v3 request (header v2) and its response.
fn opening(client: Dir, _alt: bool) -> Vec<(Dir, Vec<u8>)> {
    let req = b"\x00\x00\x00\x18\x00\x12\x00\x03\x00\x00\x00\x01\x00\x01c\x00\x02j\x021\x00\x00\x00\x00\x00".to_vec();
    let resp = b"\x00\x00\x00\x0f\x00\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    vec![(client, req), (client.flip(), resp)]
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let key = i16::from(data[1] % 96);
    let version = i16::from(data[2] % 20);
    let q = api::parse_request(key, version, &data[3..]);
    assert!(q.topics.len() <= api::MAX_TOPICS);
    let _ = api::parse_response(key, version, &data[3..]);
    let _ = api::error_name(i16::from_be_bytes([data[1], data[2]]));

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
