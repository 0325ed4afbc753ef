//! Writers for classic pcap and pcapng, little-endian only.
//!
//! Each record goes out with two `write_all` calls and nothing is buffered here, so pass a
//! `BufWriter` (or a `Vec<u8>`) when writing many packets.

use std::io::{self, Write};

use crate::reader::{BT_EPB, BT_IDB, BT_SHB, BYTE_ORDER_MAGIC, PCAP_MAGIC_NS, PCAP_MAGIC_US};
use crate::ts::TsResolution;
use crate::{DEFAULT_SNAPLEN, MAX_RECORD_BYTES};

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn non_negative(ts_ns: i64) -> io::Result<u64> {
    u64::try_from(ts_ns).map_err(|_| {
        invalid(format!(
            "timestamp {ts_ns} ns is before 1970, which capture files cannot represent"
        ))
    })
}

/// Writes a classic pcap file: little-endian, one link type, µs or ns timestamps.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    inner: W,
    nanosecond: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header with [`DEFAULT_SNAPLEN`].
    pub fn new(w: W, link_type: u16, nanosecond: bool) -> io::Result<Self> {
        Self::with_snaplen(w, link_type, nanosecond, DEFAULT_SNAPLEN)
    }

    /// Writes the file header with the given snaplen, for exporting captures that were cut.
    pub fn with_snaplen(
        mut w: W,
        link_type: u16,
        nanosecond: bool,
        snaplen: u32,
    ) -> io::Result<Self> {
        let magic = if nanosecond {
            PCAP_MAGIC_NS
        } else {
            PCAP_MAGIC_US
        };
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&magic.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0, as every modern writer does.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&u32::from(link_type).to_le_bytes());
        w.write_all(&h)?;
        Ok(Self {
            inner: w,
            nanosecond,
        })
    }

    /// Appends one packet. The timestamp is truncated to the file's resolution; timestamps
    /// before 1970 or after 2106 and packets near or over [`MAX_RECORD_BYTES`] are refused with
    /// `InvalidInput` because the reader would not accept them. `orig_len` is written as
    /// given, even if smaller than `data`, so that odd captures can be re-exported unchanged.
    pub fn write_packet(&mut self, ts_ns: i64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let ts = non_negative(ts_ns)?;
        let sec = u32::try_from(ts / 1_000_000_000).map_err(|_| {
            invalid(format!(
                "timestamp {ts_ns} ns is after 2106, which classic pcap cannot represent"
            ))
        })?;
        let sub_ns = ts % 1_000_000_000;
        let frac = if self.nanosecond {
            sub_ns
        } else {
            sub_ns / 1_000
        } as u32;
        let caplen = record_len(data)?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&sec.to_le_bytes());
        h[4..8].copy_from_slice(&frac.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(data)
    }

    /// The underlying writer, for inspecting what was written so far.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// Largest packet the writers accept: [`MAX_RECORD_BYTES`] minus room for the pcapng block
/// framing, so that everything written can be read back.
const MAX_WRITE_BYTES: usize = MAX_RECORD_BYTES - 64;

fn record_len(data: &[u8]) -> io::Result<u32> {
    if data.len() > MAX_WRITE_BYTES {
        return Err(invalid(format!(
            "packet of {} bytes exceeds the {MAX_WRITE_BYTES}-byte limit that readers accept",
            data.len()
        )));
    }
    Ok(data.len() as u32)
}

/// Writes a pcapng file: little-endian sections, each with its own interfaces, packets as
/// Enhanced Packet Blocks.
#[derive(Debug)]
pub struct PcapNgWriter<W: Write> {
    inner: W,
    /// Resolutions of the interfaces of the current section, indexed by interface id.
    interfaces: Vec<TsResolution>,
}

impl<W: Write> PcapNgWriter<W> {
    /// Writes the first Section Header Block.
    pub fn new(w: W) -> io::Result<Self> {
        let mut s = Self {
            inner: w,
            interfaces: Vec::new(),
        };
        s.write_shb()?;
        Ok(s)
    }

    fn write_shb(&mut self) -> io::Result<()> {
        let mut b = [0u8; 28];
        b[0..4].copy_from_slice(&BT_SHB.to_le_bytes());
        b[4..8].copy_from_slice(&28u32.to_le_bytes());
        b[8..12].copy_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        b[12..14].copy_from_slice(&1u16.to_le_bytes());
        // Minor 0, section length -1: unknown, as for any streamed capture.
        b[16..24].copy_from_slice(&(-1i64).to_le_bytes());
        b[24..28].copy_from_slice(&28u32.to_le_bytes());
        self.inner.write_all(&b)
    }

    /// Adds an Interface Description Block to the current section and returns its index.
    ///
    /// `ts_resol` of `None` writes no `if_tsresol` option, which readers take as
    /// microseconds; exponents over 127 cannot be encoded and are refused.
    pub fn add_interface(
        &mut self,
        link_type: u16,
        ts_resol: Option<TsResolution>,
        name: Option<&str>,
    ) -> io::Result<u32> {
        let index = u32::try_from(self.interfaces.len())
            .ok()
            .filter(|&i| usize::try_from(i).is_ok_and(|i| i < crate::MAX_INTERFACES))
            .ok_or_else(|| invalid("too many interfaces in one section".to_owned()))?;
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&BT_IDB.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
        b.extend_from_slice(&link_type.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&DEFAULT_SNAPLEN.to_le_bytes());
        if let Some(name) = name {
            let bytes = name.as_bytes();
            if bytes.len() > crate::MAX_NAME_BYTES {
                return Err(invalid(format!(
                    "interface name of {} bytes exceeds {}",
                    bytes.len(),
                    crate::MAX_NAME_BYTES
                )));
            }
            push_option(&mut b, 2, bytes);
        }
        if let Some(r) = ts_resol {
            let raw = r
                .to_if_tsresol()
                .ok_or_else(|| invalid(format!("timestamp resolution {r:?} cannot be encoded")))?;
            push_option(&mut b, 9, &[raw]);
        }
        if name.is_some() || ts_resol.is_some() {
            push_option(&mut b, 0, &[]);
        }
        let total = b.len() as u32 + 4;
        b[4..8].copy_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        self.inner.write_all(&b)?;
        self.interfaces.push(ts_resol.unwrap_or_default());
        Ok(index)
    }

    /// Appends one packet as an Enhanced Packet Block on `interface` of the current section.
    /// Refuses (`InvalidInput`) unknown interfaces, timestamps that the interface's resolution
    /// cannot hold, and packets near or over [`MAX_RECORD_BYTES`].
    pub fn write_packet(
        &mut self,
        interface: u32,
        ts_ns: i64,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let res = usize::try_from(interface)
            .ok()
            .and_then(|i| self.interfaces.get(i))
            .copied()
            .ok_or_else(|| {
                invalid(format!(
                    "interface {interface} was not added to the current section"
                ))
            })?;
        let ticks = res.ns_to_ticks(non_negative(ts_ns)?).ok_or_else(|| {
            invalid(format!(
                "timestamp {ts_ns} ns does not fit in 64 bits at resolution {res:?}"
            ))
        })?;
        let caplen = record_len(data)?;
        let padded = data.len().next_multiple_of(4);
        let total = (32 + padded) as u32;
        let mut h = [0u8; 28];
        h[0..4].copy_from_slice(&BT_EPB.to_le_bytes());
        h[4..8].copy_from_slice(&total.to_le_bytes());
        h[8..12].copy_from_slice(&interface.to_le_bytes());
        h[12..16].copy_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(ticks as u32).to_le_bytes());
        h[20..24].copy_from_slice(&caplen.to_le_bytes());
        h[24..28].copy_from_slice(&orig_len.to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(data)?;
        let mut tail = [0u8; 7];
        let pad = padded - data.len();
        tail[pad..pad + 4].copy_from_slice(&total.to_le_bytes());
        self.inner.write_all(&tail[..pad + 4])
    }

    /// Starts a new section: readers forget all interfaces, so they must be added again.
    pub fn new_section(&mut self) -> io::Result<()> {
        self.write_shb()?;
        self.interfaces.clear();
        Ok(())
    }

    /// The underlying writer, for inspecting what was written so far.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn push_option(b: &mut Vec<u8>, code: u16, value: &[u8]) {
    b.extend_from_slice(&code.to_le_bytes());
    b.extend_from_slice(&(value.len() as u16).to_le_bytes());
    b.extend_from_slice(value);
    b.resize(b.len().next_multiple_of(4), 0);
}
