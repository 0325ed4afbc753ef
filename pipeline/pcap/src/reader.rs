//! Streaming reader for classic pcap and pcapng.
//!
//! The reader owns one large buffer and hands out packets as slices into it, so reading a
//! packet costs neither an allocation nor a system call; `read` is only called when the
//! buffer runs dry, and then asks for as much as fits.

use std::io::{self, Read};
use std::sync::Arc;

use crate::error::{PcapError, PcapErrorKind};
use crate::ts::TsResolution;
use crate::{INITIAL_BUFFER_BYTES, MAX_INTERFACES, MAX_NAME_BYTES, MAX_RECORD_BYTES};

pub(crate) const BT_SHB: u32 = 0x0a0d_0d0a;
pub(crate) const BT_IDB: u32 = 0x0000_0001;
pub(crate) const BT_PB: u32 = 0x0000_0002;
pub(crate) const BT_SPB: u32 = 0x0000_0003;
pub(crate) const BT_EPB: u32 = 0x0000_0006;

pub(crate) const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
pub(crate) const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
pub(crate) const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;

pub(crate) const PCAP_FILE_HEADER_LEN: usize = 24;
pub(crate) const PCAP_RECORD_HEADER_LEN: usize = 16;

/// Block type, total length, trailing length: the frame every pcapng block shares.
const BLOCK_OVERHEAD: usize = 12;
const SHB_MIN: u32 = 28;
const IDB_MIN: u32 = 20;
const EPB_MIN: u32 = 32;
const PB_MIN: u32 = 32;
const SPB_MIN: u32 = 16;

const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_NAME: u16 = 2;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// The container format, detected from the magic number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps carry nanoseconds (magic 0xa1b23c4d) instead of microseconds.
        nanosecond: bool,
        /// Written by a big-endian host.
        big_endian: bool,
    },
    /// pcapng; byte order may change from one section to the next.
    PcapNg,
}

/// One capture interface: the link type and clock that packets on it are interpreted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// LINKTYPE_* value (1 Ethernet, 113 Linux SLL, 276 SLL2, 101 raw IP, 0 BSD loopback, ...).
    pub link_type: u16,
    /// Maximum captured length per packet as declared by the capture tool; 0 means no limit.
    pub snaplen: u32,
    /// Unit of this interface's timestamps.
    pub ts_resolution: TsResolution,
    /// Seconds to add to every timestamp (pcapng `if_tsoffset`).
    pub ts_offset_s: i64,
    /// Interface name (pcapng `if_name`), cut to [`MAX_NAME_BYTES`].
    pub name: Option<String>,
}

/// One captured packet, borrowing its bytes from the reader's buffer until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time in Unix epoch nanoseconds.
    pub ts_ns: i64,
    /// LINKTYPE_* of the interface the packet was captured on.
    pub link_type: u16,
    /// Index of that interface in [`CaptureReader::interfaces`] (always 0 for classic pcap).
    pub interface: u32,
    /// Length of the packet on the wire, which may exceed `data.len()` when a snaplen cut it.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Everything about a packet except the borrow, so that the block-skipping loop can finish
/// before the buffer is borrowed for the caller.
struct PacketMeta {
    ts_ns: i64,
    link_type: u16,
    interface: u32,
    orig_len: u32,
    start: usize,
    len: usize,
}

enum Block {
    Packet(PacketMeta),
    Other,
    End,
}

#[derive(Debug)]
enum State {
    Reading,
    Finished,
    Failed(PcapError),
}

/// Reads packets from a classic pcap or pcapng stream.
///
/// Simple Packet Blocks carry no timestamp; they are given the timestamp of the last packet
/// read before them (0 if there was none), which keeps time monotonic for downstream
/// consumers such as flow timeouts, where a 1970 timestamp would be far more harmful.
///
/// After an error every further call returns the same error: a corrupt length leaves no
/// trustworthy way to find the next record.
pub struct CaptureReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    /// `inner` returned end of file; it is not asked again, so that a terminal on stdin does
    /// not block a second time.
    eof: bool,
    state: State,
    format: Format,
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts_ns: i64,
}

impl<R: Read> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("offset", &self.offset)
            .field("interfaces", &self.interfaces)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[inline]
fn rd_u16(b: &[u8], at: usize, be: bool) -> u16 {
    let a = [b[at], b[at + 1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

#[inline]
fn rd_u32(b: &[u8], at: usize, be: bool) -> u32 {
    let a = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[inline]
fn rd_u64(b: &[u8], at: usize, be: bool) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    if be {
        u64::from_be_bytes(a)
    } else {
        u64::from_le_bytes(a)
    }
}

/// Widens a length that was already checked against [`MAX_RECORD_BYTES`].
#[inline]
fn usize_of(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

fn u32_of(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and detects the format from the magic number.
    pub fn new(inner: R) -> Result<Self, PcapError> {
        let mut r = CaptureReader {
            inner,
            buf: vec![0; INITIAL_BUFFER_BYTES],
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
            state: State::Reading,
            format: Format::PcapNg,
            big_endian: false,
            interfaces: Vec::new(),
            last_ts_ns: 0,
        };
        let avail = r.fill(4)?;
        if avail < 4 {
            return Err(r.err(PcapErrorKind::TruncatedFileHeader {
                needed: 4,
                got: avail,
            }));
        }
        let magic = rd_u32(&r.buf, r.pos, true);
        match magic {
            BT_SHB => {
                // The first block of a pcapng file is its first section header; an error in
                // it means there is nothing to read at all, so it is reported here.
                r.format = Format::PcapNg;
                r.next_ng_block()?;
            }
            PCAP_MAGIC_US | PCAP_MAGIC_NS | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                let big_endian = magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS;
                let nanosecond = magic == PCAP_MAGIC_NS || magic == 0x4d3c_b2a1;
                let avail = r.fill(PCAP_FILE_HEADER_LEN)?;
                if avail < PCAP_FILE_HEADER_LEN {
                    return Err(r.err(PcapErrorKind::TruncatedFileHeader {
                        needed: PCAP_FILE_HEADER_LEN,
                        got: avail,
                    }));
                }
                let h = &r.buf[r.pos..r.pos + PCAP_FILE_HEADER_LEN];
                // Version and thiszone are ignored like libpcap does: writers in the wild put
                // odd values there and the record layout does not depend on them.
                let snaplen = rd_u32(h, 16, big_endian);
                // The upper bits of the link-type word carry FCS information, not the type.
                let link_type = (rd_u32(h, 20, big_endian) & 0xffff) as u16;
                r.interfaces.push(Interface {
                    link_type,
                    snaplen,
                    ts_resolution: if nanosecond {
                        TsResolution::NANOSECONDS
                    } else {
                        TsResolution::MICROSECONDS
                    },
                    ts_offset_s: 0,
                    name: None,
                });
                r.format = Format::Pcap {
                    nanosecond,
                    big_endian,
                };
                r.big_endian = big_endian;
                r.consume(PCAP_FILE_HEADER_LEN);
            }
            _ => return Err(r.err(PcapErrorKind::BadMagic { magic })),
        }
        Ok(r)
    }

    /// The container format detected by [`CaptureReader::new`].
    pub fn format(&self) -> Format {
        self.format
    }

    /// Byte offset in the file of the next record to be read (for error messages and
    /// progress reporting).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Interfaces packets may refer to: exactly one for classic pcap; for pcapng those defined
    /// so far in the current section (a new section starts an empty list).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Gives back the underlying reader, for instance to reuse a socket.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next packet, or `Ok(None)` at a clean end of file.
    ///
    /// Every complete record before a truncation or corruption is returned before the error.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, PcapError> {
        match &self.state {
            State::Reading => {}
            State::Finished => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let res = match self.format {
            Format::Pcap { nanosecond, .. } => self.next_pcap(nanosecond),
            Format::PcapNg => self.next_ng(),
        };
        match res {
            Ok(Some(m)) => {
                self.last_ts_ns = m.ts_ns;
                Ok(Some(Packet {
                    ts_ns: m.ts_ns,
                    link_type: m.link_type,
                    interface: m.interface,
                    orig_len: m.orig_len,
                    data: &self.buf[m.start..m.start + m.len],
                }))
            }
            Ok(None) => {
                self.state = State::Finished;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn buffer_len(&self) -> usize {
        self.buf.len()
    }

    fn err(&self, kind: PcapErrorKind) -> PcapError {
        PcapError {
            offset: self.offset,
            kind,
        }
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    /// Makes at least `n` unread bytes available unless the input ends first; returns how
    /// many are available. `n` must not exceed [`MAX_RECORD_BYTES`] plus a record header,
    /// which bounds the buffer.
    #[inline]
    fn fill(&mut self, n: usize) -> Result<usize, PcapError> {
        let avail = self.end - self.pos;
        if avail >= n {
            return Ok(avail);
        }
        self.fill_slow(n)
    }

    #[cold]
    #[inline(never)]
    fn fill_slow(&mut self, n: usize) -> Result<usize, PcapError> {
        if self.eof {
            return Ok(self.end - self.pos);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end < n {
            if self.end == self.buf.len() {
                // Grow by doubling rather than straight to `n`, so that a corrupt length in a
                // short file does not allocate the maximum.
                let new_len = self.buf.len().saturating_mul(2).clamp(self.end + 1, n);
                self.buf.resize(new_len, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.end += k.min(self.buf.len() - self.end),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(PcapErrorKind::Io(Arc::new(e)))),
            }
        }
        Ok(self.end - self.pos)
    }

    fn next_pcap(&mut self, nanosecond: bool) -> Result<Option<PacketMeta>, PcapError> {
        let avail = self.fill(PCAP_RECORD_HEADER_LEN)?;
        if avail < PCAP_RECORD_HEADER_LEN {
            if avail == 0 {
                return Ok(None);
            }
            return Err(self.err(PcapErrorKind::TruncatedRecordHeader {
                needed: PCAP_RECORD_HEADER_LEN,
                got: avail,
            }));
        }
        let be = self.big_endian;
        let h = &self.buf[self.pos..self.pos + PCAP_RECORD_HEADER_LEN];
        let ts_sec = rd_u32(h, 0, be);
        let ts_frac = rd_u32(h, 4, be);
        let caplen = rd_u32(h, 8, be);
        let orig_len = rd_u32(h, 12, be);
        if usize_of(caplen) > MAX_RECORD_BYTES {
            return Err(self.err(PcapErrorKind::RecordTooLarge { caplen }));
        }
        let total = PCAP_RECORD_HEADER_LEN + usize_of(caplen);
        let avail = self.fill(total)?;
        if avail < total {
            return Err(self.err(PcapErrorKind::TruncatedRecord {
                caplen,
                got: avail - PCAP_RECORD_HEADER_LEN,
            }));
        }
        // Seconds are unsigned 32-bit; u32::MAX s plus u32::MAX µs still fits in i64 ns.
        let frac_ns = if nanosecond {
            i64::from(ts_frac)
        } else {
            i64::from(ts_frac) * 1_000
        };
        let ts_ns = i64::from(ts_sec) * 1_000_000_000 + frac_ns;
        let start = self.pos + PCAP_RECORD_HEADER_LEN;
        let link_type = self.interfaces.first().map_or(0, |i| i.link_type);
        self.consume(total);
        Ok(Some(PacketMeta {
            ts_ns,
            link_type,
            interface: 0,
            orig_len,
            start,
            len: usize_of(caplen),
        }))
    }

    fn next_ng(&mut self) -> Result<Option<PacketMeta>, PcapError> {
        loop {
            match self.next_ng_block()? {
                Block::Packet(m) => return Ok(Some(m)),
                Block::Other => {}
                Block::End => return Ok(None),
            }
        }
    }

    /// Reads and interprets one pcapng block.
    fn next_ng_block(&mut self) -> Result<Block, PcapError> {
        let avail = self.fill(BLOCK_OVERHEAD)?;
        if avail < BLOCK_OVERHEAD {
            if avail == 0 {
                return Ok(Block::End);
            }
            return Err(self.err(PcapErrorKind::TruncatedBlockHeader { got: avail }));
        }
        let h = &self.buf[self.pos..self.pos + BLOCK_OVERHEAD];
        let is_shb = rd_u32(h, 0, true) == BT_SHB;
        // A section header brings its own byte order, which must be known before its length
        // can be read.
        let be = if is_shb {
            match rd_u32(h, 8, true) {
                BYTE_ORDER_MAGIC => true,
                0x4d3c_2b1a => false,
                magic => return Err(self.err(PcapErrorKind::BadByteOrderMagic { magic })),
            }
        } else {
            self.big_endian
        };
        let block_type = rd_u32(h, 0, be);
        let length = rd_u32(h, 4, be);
        if length < BLOCK_OVERHEAD as u32 {
            return Err(self.err(PcapErrorKind::BlockTooShort {
                block_type,
                length,
                min: BLOCK_OVERHEAD as u32,
            }));
        }
        if !length.is_multiple_of(4) {
            return Err(self.err(PcapErrorKind::BlockLengthNotMultipleOf4 { block_type, length }));
        }
        if usize_of(length) > MAX_RECORD_BYTES {
            return Err(self.err(PcapErrorKind::BlockTooLarge { block_type, length }));
        }
        let len = usize_of(length);
        let avail = self.fill(len)?;
        if avail < len {
            return Err(self.err(PcapErrorKind::TruncatedBlock {
                block_type,
                length,
                got: avail,
            }));
        }
        let trailing = rd_u32(&self.buf, self.pos + len - 4, be);
        if trailing != length {
            return Err(self.err(PcapErrorKind::TrailingLengthMismatch {
                block_type,
                leading: length,
                trailing,
            }));
        }
        let min = match block_type {
            BT_SHB => SHB_MIN,
            BT_IDB => IDB_MIN,
            BT_EPB => EPB_MIN,
            BT_PB => PB_MIN,
            BT_SPB => SPB_MIN,
            _ => 0,
        };
        if length < min {
            return Err(self.err(PcapErrorKind::BlockTooShort {
                block_type,
                length,
                min,
            }));
        }
        // Body: between the 8-byte head and the 4-byte trailing length.
        let body_start = self.pos + 8;
        let body_len = len - BLOCK_OVERHEAD;
        let meta = match block_type {
            BT_SHB => {
                let body = &self.buf[body_start..body_start + body_len];
                let major = rd_u16(body, 4, be);
                let minor = rd_u16(body, 6, be);
                if major != 1 {
                    return Err(self.err(PcapErrorKind::UnsupportedVersion { major, minor }));
                }
                self.big_endian = be;
                self.interfaces.clear();
                Block::Other
            }
            BT_IDB => {
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(self.err(PcapErrorKind::TooManyInterfaces {
                        limit: MAX_INTERFACES,
                    }));
                }
                let iface = parse_idb(&self.buf[body_start..body_start + body_len], be);
                self.interfaces.push(iface);
                Block::Other
            }
            BT_EPB | BT_PB => {
                let body = &self.buf[body_start..body_start + body_len];
                let interface = if block_type == BT_EPB {
                    rd_u32(body, 0, be)
                } else {
                    u32::from(rd_u16(body, 0, be))
                };
                let ticks = (u64::from(rd_u32(body, 4, be)) << 32) | u64::from(rd_u32(body, 8, be));
                let caplen = rd_u32(body, 12, be);
                let orig_len = rd_u32(body, 16, be);
                let room = body_len - 20;
                if usize_of(caplen) > room {
                    return Err(self.err(PcapErrorKind::PacketExceedsBlock {
                        block_type,
                        caplen,
                        room: u32_of(room),
                    }));
                }
                let iface = self.interface(interface)?;
                Block::Packet(PacketMeta {
                    ts_ns: iface
                        .ts_resolution
                        .ticks_to_ns(ticks)
                        .saturating_add(iface.ts_offset_s.saturating_mul(1_000_000_000)),
                    link_type: iface.link_type,
                    interface,
                    orig_len,
                    start: body_start + 20,
                    len: usize_of(caplen),
                })
            }
            BT_SPB => {
                let orig_len = rd_u32(&self.buf, body_start, be);
                let iface = self.interface(0)?;
                let mut caplen = usize_of(orig_len).min(body_len - 4);
                if iface.snaplen != 0 {
                    caplen = caplen.min(usize_of(iface.snaplen));
                }
                Block::Packet(PacketMeta {
                    ts_ns: self.last_ts_ns,
                    link_type: iface.link_type,
                    interface: 0,
                    orig_len,
                    start: body_start + 4,
                    len: caplen,
                })
            }
            // Name resolution, statistics, decryption secrets, custom and unknown blocks carry
            // nothing the pipeline needs.
            _ => Block::Other,
        };
        self.consume(len);
        Ok(meta)
    }

    fn interface(&self, index: u32) -> Result<&Interface, PcapError> {
        self.interfaces.get(usize_of(index)).ok_or_else(|| {
            self.err(PcapErrorKind::UndefinedInterface {
                interface: index,
                defined: self.interfaces.len(),
            })
        })
    }
}

/// Interface Description Block body. Malformed options are ignored rather than fatal: they
/// never affect where the next block starts, and losing an interface name is better than
/// losing the capture.
fn parse_idb(body: &[u8], be: bool) -> Interface {
    let mut iface = Interface {
        link_type: rd_u16(body, 0, be),
        snaplen: rd_u32(body, 4, be),
        ts_resolution: TsResolution::default(),
        ts_offset_s: 0,
        name: None,
    };
    let mut opts = &body[8..];
    while opts.len() >= 4 {
        let code = rd_u16(opts, 0, be);
        let len = usize::from(rd_u16(opts, 2, be));
        if code == OPT_ENDOFOPT || 4 + len > opts.len() {
            break;
        }
        let value = &opts[4..4 + len];
        match code {
            OPT_IF_TSRESOL if len >= 1 => {
                iface.ts_resolution = TsResolution::from_if_tsresol(value[0]);
            }
            OPT_IF_TSOFFSET if len >= 8 => {
                iface.ts_offset_s = rd_u64(value, 0, be).cast_signed();
            }
            OPT_IF_NAME => {
                let text = value.split(|&b| b == 0).next().unwrap_or_default();
                let text = &text[..text.len().min(MAX_NAME_BYTES)];
                iface.name = Some(String::from_utf8_lossy(text).into_owned());
            }
            _ => {}
        }
        let padded = (4 + len).next_multiple_of(4);
        opts = opts.get(padded..).unwrap_or_default();
    }
    iface
}
