//! TLS handshakes on fuzzer-chosen bytes: the ClientHello and ServerHello readers and
//! their fingerprints on the raw input, the probe, and the dissector on segments, gaps
//! and ends for either direction, each direction opening with a handshake record
//! header so that the hello readers are reached. Must never panic; every entry must be
//! internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::tls::{self as proto, hello};
use reef_dissect::{Limits, Output, Seg};
use reef_reassembly::{Dir, Endpoint, FlowCtx};
use reef_schema::Flags;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let ch = hello::client_hello(&data[1..]);
    let _ = (hello::ja3(&ch), hello::ja4(&ch));
    let sh = hello::server_hello(&data[1..]);
    let _ = (hello::cipher_name(sh.cipher_suite), hello::version_name(sh.version()));

    let ctx = FlowCtx {
        id: 1,
        endpoints: [
            Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 40000 },
            Endpoint { ip: "10.0.0.2".parse().unwrap(), port: 443 },
        ],
        opener_known: data[0] & 1 == 0,
        midstream: [data[0] & 2 != 0, data[0] & 4 != 0],
    };
    let _ = proto::probe(&ctx, Dir::Forward, &data[1..]);
    let _ = proto::probe(&ctx, Dir::Reverse, &data[1..]);
    let limits = Limits { response_timeout_ns: 1_000_000, ..Limits::default() };
    let mut out = Output::new(limits, "fuzz");
    let client = if data[0] & 16 == 0 { Dir::Forward } else { Dir::Reverse };
    let mut d = proto::make(client, &ctx, &out);
    let mut off = [0u64; 2];
    let mut ts = 0i64;
    // A record and handshake header for a hello of the input's length, each side.
    let n = (data.len() as u32).min(0x3fff);
    for (dir, typ) in [(client, 1u8), (client.flip(), 2)] {
        let rec = (n + 4) as u16;
        let head = [22, 3, 1, (rec >> 8) as u8, rec as u8, typ, 0, (n >> 8) as u8, n as u8];
        let seg = Seg { dir, offset: 0, data: &head, ts, peer_ack: None };
        d.data(&ctx, seg, &mut out);
        off[dir.index()] = head.len() as u64;
    }
    let mut rest = &data[1..];
    // Each piece: a control byte (direction, gap or data, length) then the bytes.
    while let Some((&ctl, tail)) = rest.split_first() {
        let dir = if ctl & 1 == 0 { Dir::Forward } else { Dir::Reverse };
        let i = dir.index();
        let len = usize::from(ctl >> 2) * 8 + 1;
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
        assert!(e.method.is_some());
        assert!(e.request_size.is_some() || e.response_size.is_some());
        assert!(!(e.flags.contains(Flags::NO_RESPONSE) && e.response_size.is_some()));
        assert!(!(e.flags.contains(Flags::NO_REQUEST) && e.request_size.is_some()));
        assert!(e.elapsed_time.is_none_or(|t| t >= 0));
        assert_eq!(e.path, e.tls_sni);
    }
});
