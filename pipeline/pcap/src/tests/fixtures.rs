//! Hand-built files: big-endian variants, swapped magics and the pcapng blocks that the
//! writer never produces.

use super::{Ng, Owned, pcap_header, pcap_record, read_all, read_ok};
use crate::{CaptureReader, Format, PcapErrorKind, TsResolution};

#[test]
fn all_four_pcap_magics_are_detected() {
    for be in [false, true] {
        for nanosecond in [false, true] {
            let mut f = pcap_header(be, nanosecond, 1, 65_535);
            pcap_record(&mut f, be, 10, 999, b"abc", 3);
            let r = CaptureReader::new(f.as_slice()).expect("header");
            assert_eq!(
                r.format(),
                Format::Pcap {
                    nanosecond,
                    big_endian: be
                }
            );
            let got = read_ok(&f);
            let frac_ns = if nanosecond { 999 } else { 999_000 };
            assert_eq!(
                got[0].ts_ns,
                10_000_000_000 + frac_ns,
                "be={be} ns={nanosecond}"
            );
            assert_eq!(got[0].data, b"abc");
        }
    }
}

#[test]
fn big_endian_pcap_by_hand() {
    // Written out byte by byte so that the fixture does not share code with the reader.
    #[rustfmt::skip]
    let f: Vec<u8> = vec![
        0xa1, 0xb2, 0xc3, 0xd4, // magic, big-endian, microseconds
        0x00, 0x02, 0x00, 0x04, // version 2.4
        0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
        0x00, 0x00, 0xff, 0xff, // snaplen 65535
        0x14, 0x00, 0x00, 0x71, // link type 113 (SLL) with FCS bits set in the upper bits
        // record 1
        0x65, 0x00, 0x00, 0x00, // 0x65000000 s
        0x00, 0x01, 0xe2, 0x40, // 123456 µs
        0x00, 0x00, 0x00, 0x04, // caplen 4
        0x00, 0x00, 0x00, 0x3c, // orig_len 60
        0xde, 0xad, 0xbe, 0xef,
        // record 2, empty
        0xff, 0xff, 0xff, 0xff,
        0x00, 0x0f, 0x42, 0x3f, // 999999 µs
        0, 0, 0, 0,
        0, 0, 0, 0,
    ];
    let r = CaptureReader::new(f.as_slice()).expect("header");
    assert_eq!(
        r.format(),
        Format::Pcap {
            nanosecond: false,
            big_endian: true
        }
    );
    assert_eq!(r.interfaces()[0].link_type, 113);
    assert_eq!(r.interfaces()[0].snaplen, 65_535);
    let got = read_ok(&f);
    assert_eq!(
        got,
        vec![
            Owned {
                ts_ns: 0x6500_0000 * 1_000_000_000 + 123_456_000,
                link_type: 113,
                interface: 0,
                orig_len: 60,
                data: vec![0xde, 0xad, 0xbe, 0xef],
            },
            Owned {
                ts_ns: i64::from(u32::MAX) * 1_000_000_000 + 999_999_000,
                link_type: 113,
                interface: 0,
                orig_len: 0,
                data: vec![],
            },
        ]
    );
}

#[test]
fn big_endian_pcapng_then_little_endian_section() {
    let mut ng = Ng::new(true);
    let opts = vec![
        ng.option(2, b"eth0"),
        ng.option(9, &[9]),
        ng.option(14, &10u64.to_be_bytes()),
    ];
    ng.idb(1, 0, &opts);
    ng.epb(0, 1_000_000_123, b"hello", 50);
    ng.block(4, &[0; 8]); // name resolution block
    ng.block(5, &[0; 20]); // interface statistics block
    ng.be = false;
    ng.shb();
    ng.idb(276, 128, &[]);
    ng.epb(0, 5_000_000, b"world!", 6);
    let f = ng.out;
    // The fixture really is big-endian where it matters.
    assert_eq!(&f[8..12], &[0x1a, 0x2b, 0x3c, 0x4d]);
    assert_eq!(&f[28..32], &[0, 0, 0, 1]);

    let mut r = CaptureReader::new(f.as_slice()).expect("header");
    assert_eq!(r.format(), Format::PcapNg);
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(p.ts_ns, 11_000_000_123, "ticks in ns plus the 10 s offset");
    assert_eq!(
        (p.link_type, p.interface, p.orig_len, p.data),
        (1, 0, 50, &b"hello"[..])
    );
    let i = &r.interfaces()[0];
    assert_eq!(i.name.as_deref(), Some("eth0"));
    assert_eq!(i.ts_resolution, TsResolution::NANOSECONDS);
    assert_eq!((i.ts_offset_s, i.snaplen), (10, 0));
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!(p.ts_ns, 5_000_000_000);
    assert_eq!((p.link_type, p.data), (276, &b"world!"[..]));
    assert_eq!(r.interfaces().len(), 1);
    assert_eq!(r.interfaces()[0].snaplen, 128);
    assert!(r.next_packet().expect("ok").is_none());
}

#[test]
fn negative_ts_offset_and_binary_resolution_big_endian() {
    let mut ng = Ng::new(true);
    let opts = vec![
        ng.option(9, &[0x80 | 20]),
        ng.option(14, &(-3i64).to_be_bytes()),
    ];
    ng.idb(101, 0, &opts);
    ng.epb(0, 5 << 20, b"x", 1); // 5 s in 2^-20 ticks
    let got = read_ok(&ng.out);
    assert_eq!(got[0].ts_ns, 2_000_000_000);
    assert_eq!(got[0].link_type, 101);
}

#[test]
fn simple_packet_blocks() {
    let mut ng = Ng::new(false);
    ng.idb(1, 64, &[]);
    // Before any timestamped packet: the documented choice is the last seen, here 0.
    ng.spb(3, b"abc");
    ng.epb(0, 42_000_000, b"epb", 3);
    let long: Vec<u8> = (0..100).collect();
    ng.spb(100, &long); // cut to the 64-byte snaplen
    ng.spb(10, &long[..10]); // body padded to 12: orig_len bounds it
    ng.spb(500, &long[..20]); // a lying orig_len: the block body bounds it
    let mut ng2 = Ng::new(false);
    ng2.idb(113, 0, &[]); // snaplen 0: no limit
    ng2.spb(100, &long);
    let mut f = ng.out;
    f.extend_from_slice(&ng2.out);
    let got = read_ok(&f);
    let shape: Vec<_> = got
        .iter()
        .map(|p| (p.ts_ns, p.link_type, p.orig_len, p.data.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (0, 1, 3, 3),
            (42_000_000_000, 1, 3, 3),
            (42_000_000_000, 1, 100, 64),
            (42_000_000_000, 1, 10, 10),
            (42_000_000_000, 1, 500, 20),
            (42_000_000_000, 113, 100, 100),
        ]
    );
    assert_eq!(got[2].data, &long[..64]);
    assert_eq!(got[5].data, long);
}

#[test]
fn simple_packet_block_without_interface_is_an_error() {
    let mut ng = Ng::new(false);
    ng.spb(3, b"abc");
    let (got, err) = read_all(&ng.out);
    assert!(got.is_empty());
    let err = err.expect("error");
    assert!(matches!(
        err.kind,
        PcapErrorKind::UndefinedInterface {
            interface: 0,
            defined: 0
        }
    ));
    assert_eq!(err.offset, 28);
}

#[test]
fn obsolete_packet_blocks() {
    for be in [false, true] {
        let mut ng = Ng::new(be);
        ng.idb(1, 0, &[]);
        let opts = vec![ng.option(9, &[3])];
        ng.idb(0, 0, &opts);
        ng.pb(1, 1_234, b"loopback", 80);
        ng.pb(0, 7, b"eth", 3);
        let got = read_ok(&ng.out);
        let shape: Vec<_> = got
            .iter()
            .map(|p| (p.interface, p.link_type, p.ts_ns, p.orig_len))
            .collect();
        assert_eq!(shape, vec![(1, 0, 1_234_000_000, 80), (0, 1, 7_000, 3)]);
        assert_eq!(got[0].data, b"loopback");
    }
}

#[test]
fn unknown_and_uninteresting_blocks_are_skipped() {
    let mut ng = Ng::new(false);
    ng.block(0x0000_0bad, b"custom, copyable");
    ng.idb(1, 0, &[]);
    ng.block(4, &[]); // empty name resolution block: 12 bytes total
    ng.epb(0, 1, b"one", 3);
    ng.block(5, &[1; 24]);
    ng.block(9, b"systemd journal entry");
    ng.block(10, &[2; 100]); // decryption secrets
    ng.block(0x4000_0bad, b"custom, do not copy");
    ng.block(0x1234_5678, &[3; 7]);
    ng.block(0x8000_0001, &[]); // reserved local-use type
    ng.epb(0, 2, b"two", 3);
    ng.block(0x0000_0bad, &[]);
    let f = ng.out;
    let mut r = CaptureReader::new(f.as_slice()).expect("header");
    let (got, err) = super::drain(&mut r, f.len());
    assert!(err.is_none());
    let data: Vec<_> = got.iter().map(|p| p.data.as_slice()).collect();
    assert_eq!(data, vec![&b"one"[..], b"two"]);
    assert_eq!(r.offset(), f.len() as u64);
}

#[test]
fn epb_options_after_the_data_are_not_packet_bytes() {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&9u32.to_le_bytes());
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(&64u32.to_le_bytes());
    body.extend_from_slice(b"abcde\0\0\0");
    body.extend_from_slice(&ng.option(2, &1u32.to_le_bytes())); // epb_flags
    body.extend_from_slice(&ng.option(1, b"a comment"));
    body.extend_from_slice(&[0; 4]);
    ng.block(6, &body);
    let got = read_ok(&ng.out);
    assert_eq!(
        (got[0].data.as_slice(), got[0].orig_len, got[0].ts_ns),
        (&b"abcde"[..], 64, 9_000)
    );
}

#[test]
fn malformed_idb_options_are_ignored_not_fatal() {
    let mut ng = Ng::new(false);
    // if_tsresol with an option length running past the block end.
    let mut bad = ng.option(9, &[9]);
    bad[2..4].copy_from_slice(&400u16.to_le_bytes());
    let mut body = Vec::new();
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&bad);
    ng.block(1, &body);
    // A name longer than the cap, with a NUL terminator and invalid UTF-8 inside.
    let mut name = vec![b'x'; 300];
    name[1] = 0xff;
    name.push(0);
    let opts = vec![ng.option(2, &name), ng.option(9, &[])];
    ng.idb(113, 0, &opts);
    ng.epb(1, 5, b"p", 1);
    let mut r = CaptureReader::new(ng.out.as_slice()).expect("header");
    let p = r.next_packet().expect("ok").expect("packet");
    assert_eq!((p.link_type, p.ts_ns), (113, 5_000));
    let ifs = r.interfaces();
    assert_eq!(ifs[0].ts_resolution, TsResolution::MICROSECONDS);
    let name = ifs[1].name.as_deref().expect("name");
    assert!(name.starts_with("x\u{fffd}x"));
    assert_eq!(name.chars().count(), crate::MAX_NAME_BYTES);
}
