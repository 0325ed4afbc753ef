//! Corrupt lengths, bad magics, I/O failures: the right kind, offset and wording.

use std::io::{self, Read};

use super::{Ng, drain, pcap_header, pcap_record, read_all};
use crate::{CaptureReader, MAX_RECORD_BYTES, PcapError, PcapErrorKind};

fn open_err(bytes: &[u8]) -> PcapError {
    CaptureReader::new(bytes).expect_err("header must be rejected")
}

/// Reads `bytes` and returns the packet count and the error that must end it.
fn read_err(bytes: &[u8]) -> (usize, PcapError) {
    let (p, e) = read_all(bytes);
    (p.len(), e.expect("an error"))
}

#[test]
fn not_a_capture_file() {
    let e = open_err(b"<html><body>404</body></html>");
    assert!(matches!(
        e.kind,
        PcapErrorKind::BadMagic { magic: 0x3c68_746d }
    ));
    assert!(
        e.to_string()
            .starts_with("at byte offset 0: not a pcap or pcapng file (magic 0x3c68746d)"),
        "{e}"
    );
    let e = open_err(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    assert!(e.to_string().contains("gzip"), "{e}");
    let e = open_err(&[0xa1, 0xb2, 0xcd, 0x34, 0, 0, 0, 0]);
    assert!(e.to_string().contains("modified"), "{e}");
    let e = open_err(&[0; 100]);
    assert_eq!(
        e.to_string(),
        "at byte offset 0: not a pcap or pcapng file (magic 0x00000000)"
    );
}

#[test]
fn empty_and_short_files() {
    let e = open_err(b"");
    assert!(matches!(
        e.kind,
        PcapErrorKind::TruncatedFileHeader { got: 0, .. }
    ));
    assert_eq!(
        e.to_string(),
        "at byte offset 0: the file is empty (no pcap or pcapng header)"
    );
    let e = open_err(&[0xd4, 0xc3]);
    assert!(matches!(
        e.kind,
        PcapErrorKind::TruncatedFileHeader { needed: 4, got: 2 }
    ));
    let e = open_err(&pcap_header(false, false, 1, 0)[..20]);
    assert!(matches!(
        e.kind,
        PcapErrorKind::TruncatedFileHeader {
            needed: 24,
            got: 20
        }
    ));
    assert!(e.is_truncation());
    assert_eq!(
        e.to_string(),
        "at byte offset 0: truncated file header: the file ends after 20 bytes, inside the 24-byte header"
    );
}

#[test]
fn truncated_pcap_record_message() {
    let mut f = pcap_header(false, false, 1, 65_535);
    pcap_record(&mut f, false, 1, 2, &[7; 1190], 1190);
    let second = f.len();
    assert_eq!(second, 1230);
    let mut rec = Vec::new();
    pcap_record(&mut rec, false, 1, 3, &[9; 1514], 1514);
    f.extend_from_slice(&rec[..16 + 200]);
    let (n, e) = read_err(&f);
    assert_eq!(n, 1);
    assert_eq!(e.offset, 1230);
    assert_eq!(
        e.to_string(),
        "at byte offset 1230: truncated packet record: header says 1514 captured bytes but the file ends after 200"
    );
    assert!(e.is_truncation());
    f.truncate(second + 5);
    let (n, e) = read_err(&f);
    assert_eq!(n, 1);
    assert!(matches!(
        e.kind,
        PcapErrorKind::TruncatedRecordHeader { needed: 16, got: 5 }
    ));
}

#[test]
fn impossible_pcap_caplen() {
    for be in [false, true] {
        let mut f = pcap_header(be, true, 1, 65_535);
        pcap_record(&mut f, be, 1, 2, b"ok", 2);
        let at = f.len() as u64;
        let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        for v in [1, 2, MAX_RECORD_BYTES as u32 + 1, 0] {
            f.extend_from_slice(&w(v));
        }
        f.extend_from_slice(&[0; 64]);
        let (n, e) = read_err(&f);
        assert_eq!(n, 1);
        assert_eq!(e.offset, at);
        assert!(
            matches!(e.kind, PcapErrorKind::RecordTooLarge { caplen } if caplen as usize == MAX_RECORD_BYTES + 1)
        );
        assert!(!e.is_truncation());
        assert!(
            e.to_string().contains("more than the limit of 16777216"),
            "{e}"
        );
    }
}

#[test]
fn largest_allowed_caplen_in_a_short_file_is_a_truncation() {
    let mut f = pcap_header(false, false, 1, 65_535);
    for v in [0, 0, MAX_RECORD_BYTES as u32, 0] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&[1; 1000]);
    let (n, e) = read_err(&f);
    assert_eq!(n, 0);
    assert!(matches!(
        e.kind,
        PcapErrorKind::TruncatedRecord { got: 1000, .. }
    ));
}

fn ng_with_iface() -> Ng {
    let mut ng = Ng::new(false);
    ng.idb(1, 0, &[]);
    ng.epb(0, 1, b"good", 4);
    ng
}

/// Appends a raw block head (type, length) and `rest`, bypassing the builder's framing.
fn raw(ng: &mut Ng, block_type: u32, length: u32, rest: &[u8]) -> u64 {
    let at = ng.out.len() as u64;
    ng.out.extend_from_slice(&block_type.to_le_bytes());
    ng.out.extend_from_slice(&length.to_le_bytes());
    ng.out.extend_from_slice(rest);
    at
}

#[test]
fn pcapng_block_length_errors() {
    let mut ng = ng_with_iface();
    let at = raw(&mut ng, 6, 8, &[0; 40]);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::BlockTooShort {
            block_type: 6,
            length: 8,
            min: 12
        }
    ));

    let mut ng = ng_with_iface();
    let at = raw(&mut ng, 6, 30, &[0; 40]);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::BlockLengthNotMultipleOf4 { length: 30, .. }
    ));
    assert!(
        e.to_string()
            .contains("enhanced packet block (type 0x00000006)"),
        "{e}"
    );

    let mut ng = ng_with_iface();
    let at = raw(&mut ng, 0x1234, MAX_RECORD_BYTES as u32 + 4, &[0; 40]);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::BlockTooLarge {
            block_type: 0x1234,
            ..
        }
    ));

    // The trailing copy of the length disagrees.
    let mut ng = ng_with_iface();
    let at = raw(&mut ng, 5, 16, &[0, 0, 0, 0, 20, 0, 0, 0]);
    ng.epb(0, 2, b"unreachable", 11);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::TrailingLengthMismatch {
            block_type: 5,
            leading: 16,
            trailing: 20
        }
    ));

    // An EPB too short for its fixed fields.
    let mut ng = ng_with_iface();
    let at = ng.out.len() as u64;
    ng.block(6, &[0; 16]);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::BlockTooShort {
            length: 28,
            min: 32,
            ..
        }
    ));

    // An EPB whose captured length runs past its end.
    let mut ng = ng_with_iface();
    let at = ng.out.len() as u64;
    ng.epb(0, 2, b"12345678", 8);
    let len = ng.out.len();
    ng.out[at as usize + 20..at as usize + 24].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(len, ng.out.len());
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::PacketExceedsBlock {
            caplen: 9,
            room: 8,
            ..
        }
    ));
}

#[test]
fn pcapng_truncated_block_message() {
    let mut ng = ng_with_iface();
    let at = ng.out.len();
    ng.epb(0, 2, &[0; 100], 100);
    ng.out.truncate(at + 50);
    let (n, e) = read_err(&ng.out);
    assert_eq!(n, 1);
    assert_eq!(
        e.to_string(),
        format!(
            "at byte offset {at}: truncated pcapng enhanced packet block (type 0x00000006): header says the block is 132 bytes long but the file ends after 50"
        )
    );
}

#[test]
fn pcapng_section_header_errors() {
    // Bad byte-order magic in the first section header: nothing can be read.
    let mut f = Ng::new(false).out;
    f[8..12].copy_from_slice(&[1, 2, 3, 4]);
    let e = open_err(&f);
    assert_eq!(e.offset, 0);
    assert!(matches!(
        e.kind,
        PcapErrorKind::BadByteOrderMagic { magic: 0x0102_0304 }
    ));

    // ... and in a later one, after the packets before it.
    let mut ng = ng_with_iface();
    let at = ng.out.len();
    ng.shb();
    ng.out[at + 8] = 0;
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at as u64));
    assert!(matches!(e.kind, PcapErrorKind::BadByteOrderMagic { .. }));

    let mut f = Ng::new(true).out;
    f[12..14].copy_from_slice(&2u16.to_be_bytes());
    let e = open_err(&f);
    assert!(matches!(
        e.kind,
        PcapErrorKind::UnsupportedVersion { major: 2, minor: 0 }
    ));
    assert_eq!(
        e.to_string(),
        "at byte offset 0: unsupported pcapng version 2.0 (only 1.x can be read)"
    );

    let mut ng = Ng::new(false);
    ng.block(0x0a0d_0d0a, &0x1a2b_3c4du32.to_le_bytes());
    let e = open_err(&ng.out[28..]);
    assert!(matches!(
        e.kind,
        PcapErrorKind::BlockTooShort {
            length: 16,
            min: 28,
            ..
        }
    ));
}

#[test]
fn undefined_interfaces() {
    let mut ng = ng_with_iface();
    let at = ng.out.len() as u64;
    ng.epb(3, 1, b"x", 1);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.kind,
        PcapErrorKind::UndefinedInterface {
            interface: 3,
            defined: 1
        }
    ));
    assert_eq!(
        e.to_string(),
        format!(
            "at byte offset {at}: packet refers to interface 3, but the current pcapng section defines only 1 interface(s)"
        )
    );

    // A new section forgets the interfaces of the previous one.
    let mut ng = ng_with_iface();
    ng.shb();
    ng.epb(0, 1, b"x", 1);
    let (n, e) = read_err(&ng.out);
    assert_eq!(n, 1);
    assert!(matches!(
        e.kind,
        PcapErrorKind::UndefinedInterface {
            interface: 0,
            defined: 0
        }
    ));
}

#[test]
fn interface_count_is_bounded() {
    let mut ng = Ng::new(false);
    for _ in 0..crate::MAX_INTERFACES {
        ng.idb(1, 0, &[]);
    }
    let at = ng.out.len() as u64;
    ng.idb(1, 0, &[]);
    let (n, e) = read_err(&ng.out);
    assert_eq!((n, e.offset), (0, at));
    assert!(matches!(e.kind, PcapErrorKind::TooManyInterfaces { .. }));
}

/// Yields `data`, then fails.
struct FailAfter<'a> {
    data: &'a [u8],
}

impl Read for FailAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn io_errors_come_after_the_complete_packets() {
    let mut f = pcap_header(false, false, 1, 65_535);
    pcap_record(&mut f, false, 1, 0, b"one", 3);
    pcap_record(&mut f, false, 2, 0, b"two", 3);
    let cut = f.len() + 10;
    pcap_record(&mut f, false, 3, 0, b"three", 5);
    let mut r = CaptureReader::new(FailAfter { data: &f[..cut] }).expect("header");
    let (got, e) = drain(&mut r, cut);
    assert_eq!(got.len(), 2);
    let e = e.expect("error");
    assert_eq!(e.offset, cut as u64 - 10);
    assert!(matches!(&e.kind, PcapErrorKind::Io(io) if io.kind() == io::ErrorKind::Other));
    assert!(!e.is_truncation());
    assert!(e.to_string().ends_with("I/O error: disk on fire"), "{e}");

    let e = CaptureReader::new(FailAfter { data: &[] }).expect_err("no header");
    assert!(matches!(e.kind, PcapErrorKind::Io(_)));
}

#[test]
fn errors_are_sticky_and_end_is_final() {
    let mut f = pcap_header(false, false, 1, 65_535);
    pcap_record(&mut f, false, 1, 0, b"one", 3);
    let full = f.clone();
    f.extend_from_slice(&[1, 2, 3]);
    let mut r = CaptureReader::new(f.as_slice()).expect("header");
    assert!(r.next_packet().expect("ok").is_some());
    let first = r.next_packet().expect_err("truncated");
    for _ in 0..3 {
        let again = r.next_packet().expect_err("still failed");
        assert_eq!(
            (again.offset, again.to_string()),
            (first.offset, first.to_string())
        );
    }
    let mut r = CaptureReader::new(full.as_slice()).expect("header");
    assert!(r.next_packet().expect("ok").is_some());
    for _ in 0..3 {
        assert!(r.next_packet().expect("ok").is_none());
    }
}
