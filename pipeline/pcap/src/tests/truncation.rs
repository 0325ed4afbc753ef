//! Cutting a valid file at every byte: complete packets first, then a truncation error at
//! the start of the record that was cut, never a panic.

use super::{Ng, Owned, drain, read_ok};
use crate::{CaptureReader, PcapNgWriter, PcapWriter, TsResolution};

fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|j| seed.wrapping_add(j as u8)).collect()
}

/// A record of the file: where it starts and ends, and whether it is a packet.
struct Rec {
    start: usize,
    end: usize,
    packet: bool,
}

fn check_every_cut(bytes: &[u8], header_end: usize, recs: &[Rec]) {
    let all = read_ok(bytes);
    assert_eq!(all.len(), recs.iter().filter(|r| r.packet).count());
    assert_eq!(recs.last().map(|r| r.end), Some(bytes.len()));
    for cut in 0..=bytes.len() {
        let part = &bytes[..cut];
        let mut r = match CaptureReader::new(part) {
            Ok(r) => r,
            Err(e) => {
                assert!(cut < header_end, "cut {cut}: {e}");
                assert_eq!(e.offset, 0);
                assert!(e.is_truncation(), "cut {cut}: {e}");
                continue;
            }
        };
        assert!(
            cut >= header_end,
            "cut {cut} inside the header was accepted"
        );
        let (got, err) = drain(&mut r, cut);
        let complete = recs.iter().filter(|r| r.packet && r.end <= cut).count();
        assert_eq!(got.as_slice(), &all[..complete], "cut {cut}");
        match recs.iter().find(|r| r.start < cut && cut < r.end) {
            None => assert!(err.is_none(), "cut {cut} at a boundary: {err:?}"),
            Some(rec) => {
                let e = err.unwrap_or_else(|| panic!("cut {cut} inside a record but no error"));
                assert!(e.is_truncation(), "cut {cut}: {e}");
                assert_eq!(e.offset, rec.start as u64, "cut {cut}: {e}");
            }
        }
    }
}

/// Walks pcapng blocks by their length words (the fixtures are well formed).
fn ng_records(bytes: &[u8], be: bool) -> Vec<Rec> {
    let rd = |at: usize| {
        let a = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let mut recs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (t, len) = (rd(at), rd(at + 4) as usize);
        recs.push(Rec {
            start: at,
            end: at + len,
            packet: matches!(t, 2 | 3 | 6),
        });
        at += len;
    }
    recs
}

#[test]
fn pcap_cut_at_every_byte() {
    for nanosecond in [false, true] {
        let mut w = PcapWriter::new(Vec::new(), 1, nanosecond).expect("header");
        let mut recs = Vec::new();
        for i in 0..8 {
            let start = w.get_ref().len();
            w.write_packet(i * 1_000_000, &filler(i as usize * 5, i as u8), 99)
                .expect("write");
            recs.push(Rec {
                start,
                end: w.get_ref().len(),
                packet: true,
            });
        }
        let bytes = w.into_inner().expect("flush");
        check_every_cut(&bytes, 24, &recs);
    }
}

#[test]
fn big_endian_pcap_cut_at_every_byte() {
    let mut f = super::pcap_header(true, true, 276, 0);
    let mut recs = Vec::new();
    for i in 0..5u32 {
        let start = f.len();
        super::pcap_record(&mut f, true, i, i * 3, &filler(i as usize * 3, 1), 20);
        recs.push(Rec {
            start,
            end: f.len(),
            packet: true,
        });
    }
    check_every_cut(&f, 24, &recs);
}

#[test]
fn pcapng_cut_at_every_byte() {
    let mut w = PcapNgWriter::new(Vec::new()).expect("shb");
    w.add_interface(1, None, Some("eth0")).expect("idb");
    w.add_interface(113, Some(TsResolution::Binary(20)), None)
        .expect("idb");
    for i in 0..4 {
        w.write_packet(i % 2, i64::from(i) * 5_000_000, &filler(7, i as u8), 70)
            .expect("write");
    }
    w.new_section().expect("shb");
    w.add_interface(276, Some(TsResolution::NANOSECONDS), None)
        .expect("idb");
    w.write_packet(0, 123, b"section two", 11).expect("write");
    let mut bytes = w.into_inner().expect("flush");
    // Blocks the writer does not produce: a skipped one and a simple packet.
    let mut extra = Ng {
        be: false,
        out: Vec::new(),
    };
    extra.block(5, &[0; 8]).spb(9, b"simple!!!");
    bytes.extend_from_slice(&extra.out);
    let recs = ng_records(&bytes, false);
    assert_eq!(recs.iter().filter(|r| r.packet).count(), 6);
    check_every_cut(&bytes, 28, &recs);
}

#[test]
fn big_endian_pcapng_cut_at_every_byte() {
    let mut ng = Ng::new(true);
    let opts = vec![ng.option(9, &[6]), ng.option(2, b"en0")];
    ng.idb(0, 0, &opts);
    ng.epb(0, 77, b"abcdefg", 7);
    ng.block(0x0bad, b"x");
    ng.pb(0, 78, b"hij", 3);
    ng.spb(2, b"kl");
    let recs = ng_records(&ng.out, true);
    check_every_cut(&ng.out, 28, &recs);
    let got: Vec<Owned> = read_ok(&ng.out);
    assert_eq!(
        got.iter().map(|p| p.ts_ns).collect::<Vec<_>>(),
        vec![77_000, 78_000, 78_000]
    );
}
