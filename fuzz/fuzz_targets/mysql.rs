//! MySQL on fuzzer-chosen bytes: the packet readers, the probe, and the dissector on
//! segments, gaps and ends for either direction (after a real greeting and login,
//! compressed from there on or not). Must never panic; every entry must be
//! internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::{Limits, Output, Seg};
use reef_reassembly::{Dir, Endpoint, FlowCtx};
use reef_schema::Flags;
use reef_dissect::mysql::{self as proto, packet};

const PORT: u16 = 3306;

fn pkt(seq: u8, p: &[u8]) -> Vec<u8> {
    let mut v = vec![p.len() as u8, (p.len() >> 8) as u8, 0, seq];
    v.extend_from_slice(p);
    v
}

/// A greeting, a login and its OK; with `compress`, the compressed protocol from
/// there on.
fn opening(client: Dir, compress: bool) -> Vec<(Dir, Vec<u8>)> {
    let caps: u32 = 1 | 8 | 512 | 32768 | (1 << 19) | (1 << 24) | if compress { 32 } else { 0 };
    let mut g = vec![10];
    g.extend_from_slice(b"8.0.36\0");
    g.extend_from_slice(&[1, 0, 0, 0]);
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.extend_from_slice(&[45, 2, 0]);
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    let mut l = caps.to_le_bytes().to_vec();
    l.extend_from_slice(&[0, 0, 0, 1, 45]);
    l.extend_from_slice(&[0; 23]);
    l.extend_from_slice(b"u\0\0test\0mysql_native_password\0");
    vec![
        (client.flip(), pkt(0, &g)),
        (client, pkt(1, &l)),
        (client.flip(), pkt(2, &[0, 0, 0, 2, 0, 0, 0])),
    ]
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let b = &data[1..];
    let _ = packet::parse_greeting(b);
    let _ = packet::parse_login(b);
    let _ = packet::parse_ok(b);
    let _ = packet::parse_err(b);
    let _ = packet::eof_status(b);
    let _ = packet::query_text(b, None);
    let _ = packet::looks_like_command(b);
    let _ = packet::looks_like_replies(b);
    let _ = packet::looks_like_compressed(b, data[0] & 8 != 0);
    let mut r = packet::Reader::new(b);
    while r.lenenc_bytes().is_some() {}

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
