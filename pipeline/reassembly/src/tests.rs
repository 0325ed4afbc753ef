use super::*;
use proptest::prelude::*;
use reef_packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Dir, u64, Vec<u8>),
    Gap(Dir, u64, u64),
    End(Dir, EndReason),
    Closed,
}

struct Harness {
    r: Reassembler<()>,
    log: Vec<(u64, Ev)>,
}

const CLIENT: &str = "10.0.0.1";
const SERVER: &str = "10.0.0.2";

impl Harness {
    fn new() -> Self {
        Self::with(Limits::default())
    }

    fn with(limits: Limits) -> Self {
        Harness {
            r: Reassembler::new(limits),
            log: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn seg(
        &mut self,
        ts: i64,
        from_client: bool,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
        sport: u16,
    ) {
        let (src, dst, sp, dp) = if from_client {
            (CLIENT, SERVER, sport, 80)
        } else {
            (SERVER, CLIENT, 80, sport)
        };
        let s = TcpSegment {
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags,
            window: 1000,
            payload,
            missing: 0,
        };
        let log = &mut self.log;
        self.r.segment(
            ts,
            src.parse().unwrap(),
            dst.parse().unwrap(),
            &s,
            &mut |_, ctx, ev| log.push((ctx.id, own(ev))),
        );
    }

    fn c(&mut self, seq: u32, flags: u8, payload: &[u8]) {
        self.seg(0, true, seq, 5001, flags, payload, 40000);
    }

    fn s(&mut self, seq: u32, ack: u32, flags: u8, payload: &[u8]) {
        self.seg(0, false, seq, ack, flags, payload, 40000);
    }

    fn finish(&mut self) {
        let log = &mut self.log;
        self.r.finish(&mut |_, ctx, ev| log.push((ctx.id, own(ev))));
    }

    /// The bytes and gaps of one direction, merged.
    fn stream(&self, dir: Dir) -> (Vec<u8>, Vec<(u64, u64)>) {
        let mut data = Vec::new();
        let mut gaps = Vec::new();
        for (_, e) in &self.log {
            match e {
                Ev::Data(d, off, bytes) if *d == dir => {
                    assert_eq!(
                        *off as usize,
                        data.len()
                            + gaps
                                .iter()
                                .map(|g: &(u64, u64)| g.1 as usize)
                                .sum::<usize>()
                    );
                    data.extend_from_slice(bytes)
                }
                Ev::Gap(d, off, len) if *d == dir => gaps.push((*off, *len)),
                _ => {}
            }
        }
        (data, gaps)
    }

    fn events(&self) -> Vec<Ev> {
        self.log.iter().map(|(_, e)| e.clone()).collect()
    }
}

fn own(ev: StreamEvent<'_>) -> Ev {
    match ev {
        StreamEvent::Data {
            dir, offset, data, ..
        } => Ev::Data(dir, offset, data.to_vec()),
        StreamEvent::Gap {
            dir, offset, len, ..
        } => Ev::Gap(dir, offset, len),
        StreamEvent::End { dir, reason, .. } => Ev::End(dir, reason),
        StreamEvent::Closed { .. } => Ev::Closed,
    }
}

const ISN: u32 = 1000;

fn handshake(h: &mut Harness) {
    h.c(ISN, SYN, b"");
    h.s(5000, ISN + 1, SYN | ACK, b"");
    h.c(ISN + 1, ACK, b"");
}

#[test]
fn in_order_stream_with_fin_both_ways() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 1, ACK | PSH, b"hello ");
    h.c(ISN + 7, ACK | PSH, b"world");
    h.s(5001, ISN + 12, ACK | PSH, b"ok");
    h.c(ISN + 12, ACK | FIN, b"");
    h.s(5003, ISN + 13, ACK | FIN, b"");
    assert_eq!(
        h.events(),
        vec![
            Ev::Data(Dir::Forward, 0, b"hello ".to_vec()),
            Ev::Data(Dir::Forward, 6, b"world".to_vec()),
            Ev::Data(Dir::Reverse, 0, b"ok".to_vec()),
            Ev::End(Dir::Forward, EndReason::Fin),
            Ev::End(Dir::Reverse, EndReason::Fin),
            Ev::Closed,
        ]
    );
    assert_eq!(h.r.stats().flows_closed, 1);
    // The last ACK and a late retransmitted FIN are absorbed, not a new connection;
    // only data after the close counts as dropped.
    h.c(ISN + 13, ACK, b"");
    h.c(ISN + 12, ACK | FIN, b"");
    assert_eq!(h.r.stats().flows_created, 1);
    let after = DropReason::AfterClose as usize;
    assert_eq!(h.r.stats().dropped_packets[after], 0);
    h.c(ISN + 13, ACK, b"late");
    assert_eq!(h.r.stats().dropped_bytes[after], 4);
}

#[test]
fn out_of_order_retransmission_and_overlap() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 11, ACK, b"KLMNO");
    h.c(ISN + 6, ACK, b"FGHIJ");
    h.c(ISN + 4, ACK, b"DEFGH"); // overlaps the held FGHIJ: the first copy wins
    assert!(h.events().is_empty());
    h.c(ISN + 1, ACK, b"ABC");
    h.c(ISN + 1, ACK, b"ABCDE"); // retransmission of delivered bytes
    h.finish();
    let (data, gaps) = h.stream(Dir::Forward);
    assert_eq!(data, b"ABCDEFGHIJKLMNO");
    assert!(gaps.is_empty());
    // FGH of the overlapping DEFGH, then all of the ABCDE retransmission.
    assert_eq!(h.r.stats().duplicate_bytes, 3 + 5);
}

#[test]
fn handshake_seen_backwards_still_names_the_opener() {
    let mut h = Harness::new();
    h.s(5000, ISN + 1, SYN | ACK, b"");
    h.c(ISN, SYN, b"");
    h.c(ISN + 1, ACK | PSH, b"GET /");
    h.finish();
    let fwd: Vec<Ev> = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Ev::Data(..)))
        .collect();
    assert_eq!(fwd, vec![Ev::Data(Dir::Forward, 0, b"GET /".to_vec())]);
}

#[test]
fn server_seen_first_is_swapped_by_the_syn_ack() {
    let mut h = Harness::new();
    // A stray server packet, then the handshake's SYN-ACK from the same side.
    h.s(5000, ISN + 1, SYN | ACK, b"");
    h.c(ISN + 1, ACK | PSH, b"req");
    h.s(5001, ISN + 4, ACK | PSH, b"resp");
    h.finish();
    assert_eq!(h.stream(Dir::Forward).0, b"req");
    assert_eq!(h.stream(Dir::Reverse).0, b"resp");
}

/// Found by the reassembly fuzzer: a SYN-ACK after data had flowed relabelled the
/// directions under the application.
#[test]
fn late_syn_ack_does_not_swap_sides_after_data() {
    let mut h = Harness::new();
    h.seg(0, true, 1000, 9000, ACK, b"request", 40000);
    h.s(9000, 1007, ACK, b"reply");
    h.seg(0, true, 7, 0, SYN | ACK, b"", 40000);
    h.seg(0, true, 1007, 9005, ACK, b" more", 40000);
    h.finish();
    assert_eq!(h.stream(Dir::Forward).0, b"request more");
    assert_eq!(h.stream(Dir::Reverse).0, b"reply");
}

#[test]
fn midstream_capture_starts_at_first_byte_seen() {
    let mut h = Harness::new();
    h.seg(
        0,
        true,
        77_000,
        9000,
        ACK | PSH,
        b"tail of something",
        40000,
    );
    h.s(9000, 77_017, ACK | PSH, b"reply");
    h.finish();
    assert_eq!(
        h.stream(Dir::Forward),
        (b"tail of something".to_vec(), vec![])
    );
    assert_eq!(h.stream(Dir::Reverse), (b"reply".to_vec(), vec![]));
}

#[test]
fn midstream_out_of_order_first_segment_waits_for_the_acknowledged_start() {
    let mut h = Harness::new();
    // The server's ACK says the client's stream is at 50_000; the segment at 50_000
    // arrives after the one behind it.
    h.s(9000, 50_000, ACK, b"");
    h.c(50_005, ACK, b"world");
    h.c(50_000, ACK, b"hello");
    h.finish();
    // The server was seen first, so it is the forward side until content says more.
    assert_eq!(h.stream(Dir::Reverse), (b"helloworld".to_vec(), vec![]));
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut h = Harness::new();
    let isn = u32::MAX - 3;
    h.c(isn, SYN, b"");
    h.s(5000, isn.wrapping_add(1), SYN | ACK, b"");
    h.c(isn.wrapping_add(1), ACK, b"abcdef"); // crosses 2^32
    h.c(isn.wrapping_add(13), ACK, b"mno");
    h.c(isn.wrapping_add(7), ACK, b"ghijkl");
    h.finish();
    assert_eq!(
        h.stream(Dir::Forward),
        (b"abcdefghijklmno".to_vec(), vec![])
    );
}

#[test]
fn bytes_acknowledged_but_never_captured_become_a_gap() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.s(5001, ISN + 1, ACK, b"HTTP/1.1 200 OK\r\n");
    // 100 bytes of the response never reach the capture; the next segment is held...
    h.s(5001 + 17 + 100, ISN + 1, ACK, b"more");
    assert_eq!(h.stream(Dir::Reverse).0, b"HTTP/1.1 200 OK\r\n");
    // ...until the client acknowledges bytes past the hole: they were sent and lost.
    h.c(ISN + 1, ACK, b"");
    h.seg(0, true, ISN + 1, 5001 + 17 + 100 + 4, ACK, b"", 40000);
    let (data, gaps) = h.stream(Dir::Reverse);
    assert_eq!(data, b"HTTP/1.1 200 OK\r\nmore");
    assert_eq!(gaps, vec![(17, 100)]);
    assert_eq!(h.r.stats().gaps, 1);
}

#[test]
fn acknowledged_tail_that_never_came_is_a_gap_at_close() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.s(5001, ISN + 1, ACK, b"abc");
    h.seg(0, true, ISN + 1, 5001 + 10, ACK, b"", 40000);
    h.finish();
    assert_eq!(h.stream(Dir::Reverse), (b"abc".to_vec(), vec![(3, 7)]));
}

/// Found by the reassembly fuzzer: bytes held past a FIN were never returned to the
/// shared budget.
#[test]
fn bytes_held_past_a_fin_are_released() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 11, ACK, b"after the end");
    h.c(ISN + 1, ACK | FIN, b"abc");
    assert!(h.r.held_bytes() > 0);
    h.s(5001, ISN + 5, ACK | FIN, b"");
    assert_eq!(h.r.held_bytes(), 0);
    assert_eq!(h.stream(Dir::Forward), (b"abc".to_vec(), vec![]));
}

#[test]
fn reset_flushes_with_gaps_and_closes() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 1, ACK, b"ab");
    h.c(ISN + 10, ACK, b"xy");
    h.s(5001, ISN + 3, RST | ACK, b"");
    let ev = h.events();
    assert_eq!(
        ev,
        vec![
            Ev::Data(Dir::Forward, 0, b"ab".to_vec()),
            Ev::Gap(Dir::Forward, 2, 7),
            Ev::Data(Dir::Forward, 9, b"xy".to_vec()),
            Ev::End(Dir::Forward, EndReason::Rst),
            Ev::End(Dir::Reverse, EndReason::Rst),
            Ev::Closed,
        ]
    );
}

#[test]
fn port_reuse_with_a_new_syn_is_a_new_connection() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 1, ACK, b"first");
    h.c(ISN + 6, ACK | FIN, b"");
    h.s(5001, ISN + 7, ACK | FIN, b"");
    h.c(900_000, SYN, b"");
    h.c(900_001, ACK, b"second");
    h.finish();
    assert_eq!(h.r.stats().flows_created, 2);
    let ids: std::collections::BTreeSet<u64> = h.log.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), 2);
    assert!(
        h.events()
            .contains(&Ev::Data(Dir::Forward, 0, b"second".to_vec()))
    );
}

#[test]
fn idle_connections_expire() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 1, ACK, b"x");
    let log = &mut h.log;
    h.r.expire(IDLE_TIMEOUT_NS + 1, &mut |_, ctx, ev| {
        log.push((ctx.id, own(ev)))
    });
    assert_eq!(h.r.live_flows(), 0);
    assert!(
        h.events()
            .contains(&Ev::End(Dir::Forward, EndReason::IdleTimeout))
    );
}

#[test]
fn per_direction_limit_forces_a_gap_and_is_counted() {
    let limits = Limits {
        max_held_bytes_per_direction: 1000,
        ..Limits::default()
    };
    let mut h = Harness::with(limits);
    handshake(&mut h);
    let chunk = [b'z'; 400];
    // Byte 0..100 never arrive; 400-byte segments pile up behind the hole.
    for i in 0..4u32 {
        h.c(ISN + 1 + 100 + i * 400, ACK, &chunk);
    }
    h.finish();
    let (data, gaps) = h.stream(Dir::Forward);
    assert_eq!(data.len(), 1600);
    assert_eq!(gaps, vec![(0, 100)]);
    assert!(h.r.stats().dropped_bytes[DropReason::FlowBufferFull as usize] > 0);
    assert_eq!(h.r.held_bytes(), 0);
}

/// Found by the reassembly fuzzer: a segment too far ahead forced the hole closed,
/// which handed on a held segment overlapping the new one, and the overlap came out
/// twice.
#[test]
fn forced_gap_does_not_repeat_overlapping_bytes() {
    let limits = Limits {
        max_held_bytes_per_direction: 1000,
        ..Limits::default()
    };
    let mut h = Harness::with(limits);
    handshake(&mut h);
    h.c(ISN + 1 + 900, ACK, &[b'a'; 200]); // held: 900..1100
    h.c(ISN + 1 + 1050, ACK, &[b'b'; 250]); // 1050..1300 is beyond the limit
    h.finish();
    let (data, gaps) = h.stream(Dir::Forward);
    assert_eq!(gaps, vec![(0, 900)]);
    let mut want = vec![b'a'; 200];
    want.extend_from_slice(&[b'b'; 200]);
    assert_eq!(data, want);
}

#[test]
fn total_limit_is_shared_and_returned() {
    let limits = Limits {
        max_held_bytes_total: 500,
        ..Limits::default()
    };
    let mut h = Harness::with(limits);
    for port in 1..=3u16 {
        h.seg(0, true, ISN, 0, SYN, b"", port);
        h.seg(0, true, ISN + 11, 0, ACK, &[b'q'; 200], port);
    }
    assert!(h.r.stats().dropped_bytes[DropReason::MemoryLimit as usize] > 0);
    assert!(h.r.held_bytes() <= 500);
    h.finish();
    assert_eq!(h.r.held_bytes(), 0);
}

#[test]
fn flow_table_limit_drops_new_connections() {
    let limits = Limits {
        max_flows: 2,
        ..Limits::default()
    };
    let mut h = Harness::with(limits);
    for port in 1..=3u16 {
        h.seg(0, true, ISN, 0, SYN, b"", port);
    }
    assert_eq!(h.r.live_flows(), 2);
    assert_eq!(
        h.r.stats().dropped_packets[DropReason::FlowTableFull as usize],
        1
    );
}

#[test]
fn far_away_segment_is_ignored_not_jumped_to() {
    let mut h = Harness::new();
    handshake(&mut h);
    h.c(ISN + 1, ACK, b"abc");
    h.c(ISN + 1 + (1 << 31) - 10, ACK, b"junk");
    h.c(ISN + 4, ACK, b"def");
    h.finish();
    assert_eq!(h.stream(Dir::Forward), (b"abcdef".to_vec(), vec![]));
}

#[test]
fn handshake_rtt_is_measured() {
    let mut h = Harness::new();
    h.seg(1_000, true, ISN, 0, SYN, b"", 40000);
    h.seg(3_000, false, 5000, ISN + 1, SYN | ACK, b"", 40000);
    h.seg(4_500, true, ISN + 1, 5001, ACK, b"", 40000);
    let mut rtt = None;
    h.r.finish(&mut |_, _, ev| {
        if let StreamEvent::Closed { stats, .. } = ev {
            rtt = stats.handshake_rtt_ns;
        }
    });
    assert_eq!(rtt, Some(3_500));
}

/// A naive model: the stream is `data`; segments are slices of it.
fn cut(data: &[u8], cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| (w[0], w[1])).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Cut into segments, shuffled and duplicated, the stream comes out whole.
    #[test]
    fn reordered_and_duplicated_segments_reassemble(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        order in proptest::collection::vec(any::<u32>(), 0..80),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        isn in any::<u32>(),
    ) {
        let segs = cut(&data, &cuts);
        let mut sends: Vec<(usize, usize)> = segs.clone();
        for d in &dups {
            sends.push(segs[d.index(segs.len())]);
        }
        // Overlapping re-segmentation too: a retransmission spanning two segments.
        if segs.len() > 1 {
            sends.push((segs[0].0, segs[1].1));
        }
        let keys: Vec<u32> = (0..sends.len()).map(|i| order.get(i).copied().unwrap_or(i as u32)).collect();
        let mut idx: Vec<usize> = (0..sends.len()).collect();
        idx.sort_by_key(|&i| keys[i]);

        let mut h = Harness::new();
        h.c(isn, SYN, b"");
        for i in idx {
            let (s, e) = sends[i];
            h.c(isn.wrapping_add(1).wrapping_add(s as u32), ACK, &data[s..e]);
        }
        h.finish();
        let (out, gaps) = h.stream(Dir::Forward);
        prop_assert!(gaps.is_empty());
        prop_assert_eq!(out, data);
        prop_assert_eq!(h.r.held_bytes(), 0);
    }

    /// With segments removed, the rest comes out in order and each hole is a gap of
    /// exactly the missing length at the right offset.
    #[test]
    fn missing_segments_become_exact_gaps(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(any::<usize>(), 1..40),
        drop in proptest::collection::vec(any::<bool>(), 40),
        order in proptest::collection::vec(any::<u32>(), 40),
    ) {
        let segs = cut(&data, &cuts);
        let kept: Vec<(usize, usize)> = segs.iter().enumerate()
            .filter(|(i, _)| !drop[*i % drop.len()]).map(|(_, s)| *s).collect();
        let mut idx: Vec<usize> = (0..kept.len()).collect();
        idx.sort_by_key(|&i| order[i % order.len()]);
        let mut h = Harness::new();
        h.c(ISN, SYN, b"");
        for i in idx {
            let (s, e) = kept[i];
            h.c(ISN + 1 + s as u32, ACK, &data[s..e]);
        }
        // The receiver acknowledges everything: the holes were sent but not captured.
        h.seg(0, false, 5000, ISN + 1 + data.len() as u32, ACK, b"", 40000);
        h.finish();
        let (out, gaps) = h.stream(Dir::Forward);
        let mut expect = Vec::new();
        let mut expect_gaps: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in &segs {
            if kept.contains(&(s, e)) {
                expect.extend_from_slice(&data[s..e]);
            } else if let Some(last) = expect_gaps.last_mut().filter(|g| g.0 + g.1 == s as u64) {
                last.1 += (e - s) as u64;
            } else {
                expect_gaps.push((s as u64, (e - s) as u64));
            }
        }
        // Adjacent gaps may be reported in pieces; compare the union.
        let merge = |g: Vec<(u64, u64)>| {
            let mut m: Vec<(u64, u64)> = Vec::new();
            for (o, l) in g {
                match m.last_mut() {
                    Some(x) if x.0 + x.1 == o => x.1 += l,
                    _ => m.push((o, l)),
                }
            }
            m
        };
        prop_assert_eq!(out, expect);
        prop_assert_eq!(merge(gaps), expect_gaps);
    }

    /// Under tight memory limits bytes may be given up as gaps, but whatever comes out
    /// is in order, without repeats, and every byte is the one sent at its offset.
    #[test]
    fn tight_limits_never_garble_the_stream(
        data in proptest::collection::vec(any::<u8>(), 1..4000),
        cuts in proptest::collection::vec(any::<usize>(), 1..60),
        order in proptest::collection::vec(any::<u32>(), 60),
        dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        spans in proptest::collection::vec((any::<usize>(), 1usize..800), 0..8),
        max_hold in 16usize..600,
    ) {
        let segs = cut(&data, &cuts);
        let mut sends = segs.clone();
        for d in &dups {
            sends.push(segs[d.index(segs.len())]);
        }
        // Re-segmented retransmissions that overlap others.
        for (at, len) in spans {
            let a = at % data.len();
            sends.push((a, (a + len).min(data.len())));
        }
        let mut idx: Vec<usize> = (0..sends.len()).collect();
        idx.sort_by_key(|&i| order[i % order.len()]);
        let limits = Limits { max_held_bytes_per_direction: max_hold, ..Limits::default() };
        let mut h = Harness::with(limits);
        h.c(ISN, SYN, b"");
        for i in idx {
            let (s, e) = sends[i];
            h.c(ISN + 1 + s as u32, ACK, &data[s..e]);
        }
        h.finish();
        // `stream` itself asserts that offsets are contiguous.
        let mut covered = 0u64;
        for (_, ev) in &h.log {
            match ev {
                Ev::Data(Dir::Forward, off, bytes) => {
                    let at = *off as usize;
                    prop_assert_eq!(bytes.as_slice(), &data[at..at + bytes.len()]);
                    prop_assert_eq!(*off, covered);
                    covered += bytes.len() as u64;
                }
                Ev::Gap(Dir::Forward, off, len) => {
                    prop_assert_eq!(*off, covered);
                    covered += len;
                }
                _ => {}
            }
        }
        prop_assert_eq!(covered, data.len() as u64);
        prop_assert_eq!(h.r.held_bytes(), 0);
    }
}
