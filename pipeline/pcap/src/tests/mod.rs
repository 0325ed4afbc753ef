//! Shared fixtures: hand-built capture bytes in either byte order, and a bounded read loop.

use std::io::{self, Read};

use crate::{CaptureReader, PcapError};

mod corpus;
mod errors;
mod fixtures;
mod fuzz;
mod roundtrip;
mod truncation;

/// A packet copied out of the reader, so that a whole file can be compared at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owned {
    pub ts_ns: i64,
    pub link_type: u16,
    pub interface: u32,
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads until end or error. Fails the test if the reader returns more packets than the
/// input could possibly hold (a loop that does not advance) or if, after finishing, another
/// call disagrees with how it finished.
pub(crate) fn drain<R: Read>(
    r: &mut CaptureReader<R>,
    input_len: usize,
) -> (Vec<Owned>, Option<PcapError>) {
    let mut out = Vec::new();
    let bound = input_len / 12 + 1;
    let err = loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push(Owned {
                ts_ns: p.ts_ns,
                link_type: p.link_type,
                interface: p.interface,
                orig_len: p.orig_len,
                data: p.data.to_vec(),
            }),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
        assert!(
            out.len() <= bound,
            "more packets than {input_len} bytes can hold"
        );
    };
    assert!(
        r.buffer_len() <= crate::MAX_RECORD_BYTES + crate::reader::PCAP_RECORD_HEADER_LEN
            && r.buffer_len() >= crate::INITIAL_BUFFER_BYTES,
        "buffer of {} bytes",
        r.buffer_len()
    );
    for _ in 0..2 {
        match (r.next_packet(), &err) {
            (Ok(None), None) => {}
            (Err(again), Some(first)) => {
                assert_eq!(again.offset, first.offset);
                assert_eq!(again.to_string(), first.to_string());
            }
            (again, first) => {
                panic!("after finishing with {first:?} the reader returned {again:?}")
            }
        }
    }
    (out, err)
}

/// Opens and drains `bytes`, for tests that expect the header to be valid.
pub(crate) fn read_all(bytes: &[u8]) -> (Vec<Owned>, Option<PcapError>) {
    let mut r = CaptureReader::new(bytes).expect("valid header");
    drain(&mut r, bytes.len())
}

/// Like [`read_all`] but insists on a clean end of file.
pub(crate) fn read_ok(bytes: &[u8]) -> Vec<Owned> {
    let (pkts, err) = read_all(bytes);
    assert!(err.is_none(), "unexpected error {err:?}");
    pkts
}

/// Hands out at most `chunk` bytes per `read` and an `Interrupted` error before every other
/// read, to exercise every refill path of the reader.
pub(crate) struct Trickle<'a> {
    pub data: &'a [u8],
    pub chunk: usize,
    pub calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(2) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "signal"));
        }
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Builds pcapng byte sequences field by field, in either byte order, including the blocks
/// and corruptions the writer cannot produce.
pub(crate) struct Ng {
    pub be: bool,
    pub out: Vec<u8>,
}

impl Ng {
    pub fn new(be: bool) -> Self {
        let mut s = Ng {
            be,
            out: Vec::new(),
        };
        s.shb();
        s
    }

    pub fn u16b(&self, v: u16) -> [u8; 2] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn u32b(&self, v: u32) -> [u8; 4] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    pub fn u64b(&self, v: u64) -> [u8; 8] {
        if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// Appends a block with a correct frame around `body` (padded to 4 bytes).
    pub fn block(&mut self, block_type: u32, body: &[u8]) -> &mut Self {
        let padded = body.len().next_multiple_of(4);
        let total = (12 + padded) as u32;
        let (t, l) = (self.u32b(block_type), self.u32b(total));
        self.out.extend_from_slice(&t);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        self.out.extend_from_slice(&l);
        self
    }

    /// Starts a section in the current byte order (set `be` first to switch).
    pub fn shb(&mut self) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1a2b_3c4d));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u64b(u64::MAX));
        self.block(0x0a0d_0d0a, &body)
    }

    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&self.u16b(code));
        o.extend_from_slice(&self.u16b(value.len() as u16));
        o.extend_from_slice(value);
        o.resize(o.len().next_multiple_of(4), 0);
        o
    }

    pub fn idb(&mut self, link_type: u16, snaplen: u32, options: &[Vec<u8>]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(link_type));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b(snaplen));
        for o in options {
            body.extend_from_slice(o);
        }
        if !options.is_empty() {
            body.extend_from_slice(&[0; 4]);
        }
        self.block(1, &body)
    }

    pub fn epb(&mut self, interface: u32, ticks: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(interface));
        body.extend_from_slice(&self.u32b((ticks >> 32) as u32));
        body.extend_from_slice(&self.u32b(ticks as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(orig_len));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// Obsolete Packet Block (type 2): 16-bit interface id and a drop counter.
    pub fn pb(&mut self, interface: u16, ticks: u64, data: &[u8], orig_len: u32) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(interface));
        body.extend_from_slice(&self.u16b(7));
        body.extend_from_slice(&self.u32b((ticks >> 32) as u32));
        body.extend_from_slice(&self.u32b(ticks as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(orig_len));
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    pub fn spb(&mut self, orig_len: u32, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(orig_len));
        body.extend_from_slice(data);
        self.block(3, &body)
    }
}

/// Classic pcap file header built by hand; `link_field` is the full 32-bit word.
pub(crate) fn pcap_header(be: bool, nanosecond: bool, link_field: u32, snaplen: u32) -> Vec<u8> {
    let magic: u32 = if nanosecond { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut h = Vec::new();
    let w32 = |h: &mut Vec<u8>, v: u32| {
        h.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() })
    };
    w32(&mut h, magic);
    let (maj, min) = (2u16, 4u16);
    h.extend_from_slice(&if be {
        maj.to_be_bytes()
    } else {
        maj.to_le_bytes()
    });
    h.extend_from_slice(&if be {
        min.to_be_bytes()
    } else {
        min.to_le_bytes()
    });
    w32(&mut h, 0);
    w32(&mut h, 0);
    w32(&mut h, snaplen);
    w32(&mut h, link_field);
    h
}

pub(crate) fn pcap_record(
    out: &mut Vec<u8>,
    be: bool,
    sec: u32,
    frac: u32,
    data: &[u8],
    orig_len: u32,
) {
    for v in [sec, frac, data.len() as u32, orig_len] {
        out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
    }
    out.extend_from_slice(data);
}

/// Deterministic packet payloads of varied sizes, including empty and full-MTU ones.
pub(crate) fn payload(i: usize) -> Vec<u8> {
    let len = [0, 1, 2, 3, 4, 5, 60, 61, 62, 63, 1514, 9000][i % 12];
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}
