//! Whatever the writers produce, the reader must give back unchanged (up to the resolution).

use super::{Owned, Trickle, drain, payload, read_ok};
use crate::{
    CaptureReader, DEFAULT_SNAPLEN, Format, Interface, PcapNgWriter, PcapWriter, TsResolution,
    link_type,
};

const T0: i64 = 1_700_000_000_123_456_789;

/// Timestamp, data and original length of a packet handed to a writer.
type Sent = (i64, Vec<u8>, u32);

fn pcap_file(nanosecond: bool, n: usize) -> (Vec<u8>, Vec<Sent>) {
    let mut w = PcapWriter::new(Vec::new(), link_type::LINUX_SLL2, nanosecond).expect("header");
    let mut sent = Vec::new();
    for i in 0..n {
        let ts = T0 + i as i64 * 1_000_777;
        let data = payload(i);
        let orig = data.len() as u32 + (i as u32 % 3) * 100;
        w.write_packet(ts, &data, orig).expect("write");
        sent.push((ts, data, orig));
    }
    (w.into_inner().expect("flush"), sent)
}

#[test]
fn pcap_microseconds_round_trip() {
    let (bytes, sent) = pcap_file(false, 40);
    let mut r = CaptureReader::new(bytes.as_slice()).expect("header");
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanosecond: false,
            big_endian: false
        }
    );
    assert_eq!(
        r.interfaces(),
        &[Interface {
            link_type: link_type::LINUX_SLL2,
            snaplen: DEFAULT_SNAPLEN,
            ts_resolution: TsResolution::MICROSECONDS,
            ts_offset_s: 0,
            name: None,
        }]
    );
    assert_eq!(r.offset(), 24);
    let (got, err) = drain(&mut r, bytes.len());
    assert!(err.is_none());
    assert_eq!(r.offset(), bytes.len() as u64);
    assert_eq!(got.len(), sent.len());
    for (g, (ts, data, orig)) in got.iter().zip(&sent) {
        // Microsecond files drop the nanoseconds: truncated, not rounded.
        assert_eq!(g.ts_ns, ts - ts % 1_000);
        assert_eq!(&g.data, data);
        assert_eq!(g.orig_len, *orig);
        assert_eq!((g.link_type, g.interface), (link_type::LINUX_SLL2, 0));
    }
}

#[test]
fn pcap_nanoseconds_round_trip() {
    let (bytes, sent) = pcap_file(true, 40);
    assert_eq!(&bytes[..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
    let r = CaptureReader::new(bytes.as_slice()).expect("header");
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanosecond: true,
            big_endian: false
        }
    );
    assert_eq!(r.interfaces()[0].ts_resolution, TsResolution::NANOSECONDS);
    let got = read_ok(&bytes);
    let expected: Vec<Owned> = sent
        .iter()
        .map(|(ts, data, orig)| Owned {
            ts_ns: *ts,
            link_type: link_type::LINUX_SLL2,
            interface: 0,
            orig_len: *orig,
            data: data.clone(),
        })
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn pcap_timestamp_extremes() {
    let mut w = PcapWriter::new(Vec::new(), 1, true).expect("header");
    let max = i64::from(u32::MAX) * 1_000_000_000 + 999_999_999;
    w.write_packet(0, b"a", 1).expect("epoch");
    w.write_packet(max, b"b", 1).expect("2106");
    let got = read_ok(&w.into_inner().expect("flush"));
    assert_eq!(got[0].ts_ns, 0);
    assert_eq!(got[1].ts_ns, max);
}

struct IfSpec {
    link: u16,
    resol: Option<TsResolution>,
    name: Option<&'static str>,
}

const IFACES: [IfSpec; 5] = [
    IfSpec {
        link: link_type::ETHERNET,
        resol: None,
        name: Some("eth0"),
    },
    IfSpec {
        link: link_type::LINUX_SLL,
        resol: Some(TsResolution::NANOSECONDS),
        name: Some("any"),
    },
    IfSpec {
        link: link_type::LINUX_SLL2,
        resol: Some(TsResolution::Binary(20)),
        name: None,
    },
    IfSpec {
        link: link_type::RAW,
        resol: Some(TsResolution::Decimal(3)),
        name: Some("tun0 \u{e9}"),
    },
    IfSpec {
        link: link_type::NULL,
        resol: Some(TsResolution::Decimal(10)),
        name: None,
    },
];

fn check_close(got: &Owned, ts: i64, resol: TsResolution) {
    let lost = ts - got.ts_ns;
    assert!(
        lost >= 0 && (lost as u64) < resol.tick_ns_ceil().max(1),
        "{resol:?}: wrote {ts}, read {}",
        got.ts_ns
    );
}

#[test]
fn pcapng_several_interfaces_and_resolutions() {
    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    for (i, s) in IFACES.iter().enumerate() {
        assert_eq!(
            w.add_interface(s.link, s.resol, s.name).expect("idb"),
            i as u32
        );
    }
    let mut sent = Vec::new();
    for i in 0..60 {
        let iface = (i * 7 % IFACES.len()) as u32;
        let ts = T0 + i as i64 * 3_333_333;
        let data = payload(i);
        w.write_packet(iface, ts, &data, data.len() as u32 + 4)
            .expect("epb");
        sent.push((iface, ts, data));
    }
    let bytes = w.into_inner().expect("flush");
    let mut r = CaptureReader::new(bytes.as_slice()).expect("header");
    assert_eq!(r.format(), Format::PcapNg);
    let (got, err) = drain(&mut r, bytes.len());
    assert!(err.is_none());
    assert_eq!(got.len(), sent.len());
    for (g, (iface, ts, data)) in got.iter().zip(&sent) {
        let spec = &IFACES[*iface as usize];
        assert_eq!(g.interface, *iface);
        assert_eq!(g.link_type, spec.link);
        assert_eq!(&g.data, data);
        assert_eq!(g.orig_len, data.len() as u32 + 4);
        check_close(g, *ts, spec.resol.unwrap_or_default());
    }
    let seen: Vec<_> = r
        .interfaces()
        .iter()
        .map(|i| (i.link_type, i.ts_resolution, i.name.as_deref(), i.snaplen))
        .collect();
    let want: Vec<_> = IFACES
        .iter()
        .map(|s| (s.link, s.resol.unwrap_or_default(), s.name, DEFAULT_SNAPLEN))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn pcapng_several_sections_reset_interfaces() {
    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    w.add_interface(link_type::ETHERNET, None, Some("eth0"))
        .expect("idb");
    w.add_interface(link_type::NFLOG, Some(TsResolution::NANOSECONDS), None)
        .expect("idb");
    w.write_packet(1, 5, b"nflog", 5).expect("epb");
    w.write_packet(0, 7_000, b"ether", 5).expect("epb");
    w.new_section().expect("shb");
    assert!(
        w.write_packet(1, 0, b"x", 1).is_err(),
        "interfaces must be forgotten"
    );
    w.add_interface(link_type::LINUX_SLL2, Some(TsResolution::Binary(10)), None)
        .expect("idb");
    w.write_packet(0, 2_000_000_000, b"sll2", 4).expect("epb");
    w.new_section().expect("shb");
    w.new_section().expect("shb");
    w.add_interface(link_type::RAW, None, Some("last"))
        .expect("idb");
    let bytes = w.into_inner().expect("flush");

    let mut r = CaptureReader::new(bytes.as_slice()).expect("header");
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(
        (p.interface, p.link_type, p.ts_ns, p.data),
        (1, 239, 5, &b"nflog"[..])
    );
    assert_eq!(r.interfaces().len(), 2);
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!((p.interface, p.link_type, p.ts_ns), (0, 1, 7_000));
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(
        (p.interface, p.link_type, p.ts_ns, p.data),
        (0, 276, 2_000_000_000, &b"sll2"[..])
    );
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(r.interfaces()[0].ts_resolution, TsResolution::Binary(10));
    assert!(r.next_packet().expect("ok").is_none());
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(r.interfaces()[0].name.as_deref(), Some("last"));
    assert_eq!(r.offset(), bytes.len() as u64);
}

#[test]
fn records_larger_than_the_initial_buffer() {
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 5).map(|i| (i % 251) as u8).collect();
    let mut w = PcapWriter::new(Vec::new(), 1, false).expect("header");
    w.write_packet(1_000, b"small", 5).expect("write");
    w.write_packet(2_000, &big, big.len() as u32)
        .expect("write");
    w.write_packet(3_000, b"after", 5).expect("write");
    let got = read_ok(&w.into_inner().expect("flush"));
    assert_eq!(got.len(), 3);
    assert_eq!(got[1].data, big);
    assert_eq!(got[2].data, b"after");

    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    w.add_interface(1, None, None).expect("idb");
    w.write_packet(0, 1_000, &big, big.len() as u32)
        .expect("write");
    w.write_packet(0, 2_000, b"after", 5).expect("write");
    let got = read_ok(&w.into_inner().expect("flush"));
    assert_eq!(got[0].data, big);
    assert_eq!(got[1].data, b"after");
}

#[test]
fn refills_across_many_buffers_and_short_reads() {
    // About 3 MiB of mixed packets, so that records straddle buffer refills.
    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    w.add_interface(1, Some(TsResolution::NANOSECONDS), None)
        .expect("idb");
    w.add_interface(113, None, None).expect("idb");
    for i in 0..2_500 {
        w.write_packet((i % 2) as u32, i as i64 * 1_000, &payload(i), 9_999)
            .expect("write");
    }
    let bytes = w.into_inner().expect("flush");
    let whole = read_ok(&bytes);
    assert_eq!(whole.len(), 2_500);
    for chunk in [1, 3, 4096, 1 << 20] {
        let src = Trickle {
            data: &bytes,
            chunk,
            calls: 0,
        };
        if chunk == 1 && bytes.len() > 200_000 {
            // One byte per call over megabytes is slow in debug builds; the small-file
            // tests cover single-byte reads.
            continue;
        }
        let mut r = CaptureReader::new(src).expect("header");
        let (got, err) = drain(&mut r, bytes.len());
        assert!(err.is_none());
        assert_eq!(got, whole, "chunk {chunk}");
    }
    let small = &bytes[..20_000];
    let cut = read_ok_or_truncated(small);
    let mut r = CaptureReader::new(Trickle {
        data: small,
        chunk: 1,
        calls: 0,
    })
    .expect("header");
    let (got, err) = drain(&mut r, small.len());
    assert_eq!(got, cut.0);
    assert_eq!(err.map(|e| e.offset), cut.1);
}

fn read_ok_or_truncated(bytes: &[u8]) -> (Vec<Owned>, Option<u64>) {
    let (p, e) = super::read_all(bytes);
    (p, e.map(|e| e.offset))
}

#[test]
fn writers_refuse_what_the_format_cannot_hold() {
    let mut w = PcapWriter::new(Vec::new(), 1, false).expect("header");
    assert!(w.write_packet(-1, b"x", 1).is_err());
    assert!(
        w.write_packet((i64::from(u32::MAX) + 1) * 1_000_000_000, b"x", 1)
            .is_err()
    );
    let huge = vec![0u8; crate::MAX_RECORD_BYTES];
    assert!(w.write_packet(0, &huge, 1).is_err());
    // Refused packets leave nothing behind.
    assert_eq!(w.get_ref().len(), 24);

    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    assert!(w.write_packet(0, 0, b"x", 1).is_err(), "no interface yet");
    assert!(
        w.add_interface(1, Some(TsResolution::Decimal(200)), None)
            .is_err()
    );
    let i = w
        .add_interface(1, Some(TsResolution::Decimal(19)), None)
        .expect("idb");
    // 10^-19 s ticks overflow 64 bits after about 1.8 seconds.
    assert!(w.write_packet(i, 2_000_000_000, b"x", 1).is_err());
    w.write_packet(i, 1_000_000_000, b"x", 1).expect("fits");
    assert!(w.write_packet(i, -5, b"x", 1).is_err());
    assert!(w.write_packet(i, 0, &huge, 1).is_err());
    let bytes = w.into_inner().expect("flush");
    let got = read_ok(&bytes);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ts_ns, 1_000_000_000);
}
