//! TCP segments with fuzzer-chosen flags, sequence numbers and lengths between two
//! endpoints (and a third port for a second connection), checked against the
//! reassembler's promises: data comes out in order with no overlap, offsets only grow,
//! and the memory limits hold.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use reef_packet::TcpSegment;
use reef_reassembly::{Limits, Reassembler, StreamEvent};

const PAYLOAD: [u8; 2048] = [0x5a; 2048];

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_held_bytes_per_direction: 8 * 1024,
        max_held_bytes_total: 12 * 1024,
        max_flows: 4,
        ..Limits::default()
    };
    let mut r: Reassembler<()> = Reassembler::new(limits);
    let a = "10.0.0.1".parse().unwrap();
    let b = "10.0.0.2".parse().unwrap();
    // Next offset expected per (flow, direction): every event must start there.
    let mut next: HashMap<(u64, usize), u64> = HashMap::new();
    let mut check = |_: &mut (), ctx: &reef_reassembly::FlowCtx, ev: StreamEvent<'_>| {
        let (dir, off, len) = match ev {
            StreamEvent::Data { dir, offset, data, .. } => (dir, offset, data.len() as u64),
            StreamEvent::Gap { dir, offset, len, .. } => (dir, offset, len),
            _ => return,
        };
        let n = next.entry((ctx.id, dir.index())).or_insert(off);
        assert_eq!(*n, off, "stream offsets must be contiguous");
        *n = off + len;
    };
    let mut ts = 0i64;
    for chunk in data.chunks_exact(12) {
        let from_a = chunk[0] & 1 == 0;
        let port = 1000 + u16::from(chunk[0] >> 6);
        let flags = chunk[1] & 0x1f;
        let seq = u32::from_le_bytes([chunk[2], chunk[3], chunk[4], chunk[5]]);
        let ack = u32::from_le_bytes([chunk[6], chunk[7], chunk[8], chunk[9]]);
        let len = usize::from(u16::from_le_bytes([chunk[10], chunk[11]])) % PAYLOAD.len();
        ts += i64::from(chunk[0] >> 1) * 10_000_000;
        let (src, dst, sp, dp) = if from_a { (a, b, port, 80) } else { (b, a, 80, port) };
        let seg = TcpSegment {
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags,
            window: 0,
            payload: &PAYLOAD[..len],
            missing: u32::from(chunk[1] >> 5) * 100,
        };
        r.segment(ts, src, dst, &seg, &mut check);
        assert!(r.held_bytes() <= limits.max_held_bytes_total);
        if chunk[0] == 0xff {
            r.expire(ts + 1_000_000_000_000, &mut check);
        }
    }
    r.finish(&mut check);
    assert_eq!(r.held_bytes(), 0);
    assert_eq!(r.live_flows(), 0);
});
