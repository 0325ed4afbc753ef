//! Reading and writing of packet capture files (classic pcap and pcapng).
//!
//! This is the first stage of the offline pipeline, so it is built for throughput (one large
//! buffer, packets returned as borrowed slices, no per-packet allocation or system call) and
//! for hostile input: any byte sequence yields packets and then at worst an error that names
//! the byte offset, never a panic, an endless loop or unbounded memory.
//!
//! ```
//! use reef_pcap::{CaptureReader, PcapWriter};
//!
//! let mut w = PcapWriter::new(Vec::new(), 1, false)?;
//! w.write_packet(1_700_000_000_000_000_000, &[0xde, 0xad], 60)?;
//! let file = w.into_inner()?;
//!
//! let mut r = CaptureReader::new(file.as_slice())?;
//! while let Some(p) = r.next_packet()? {
//!     assert_eq!((p.link_type, p.data, p.orig_len), (1, &[0xde, 0xad][..], 60));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod reader;
mod ts;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{PcapError, PcapErrorKind};
pub use reader::{CaptureReader, Format, Interface, Packet};
pub use ts::TsResolution;
pub use writer::{PcapNgWriter, PcapWriter};

/// Largest classic pcap packet record (captured bytes) or pcapng block accepted. Real
/// captures stay far below (jumbo frames and 256 KiB snaplens); anything larger is a corrupt
/// length word, and refusing it bounds the reader's memory.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// Size of the reader's buffer, large enough that `read` system calls are rare; it grows only
/// for a single record that does not fit, up to [`MAX_RECORD_BYTES`] plus a record header.
pub const INITIAL_BUFFER_BYTES: usize = 1024 * 1024;

/// Most interfaces one pcapng section may define; bounds memory on corrupt files while being
/// far above what capture tools produce.
pub const MAX_INTERFACES: usize = 65_536;

/// Interface names longer than this are cut, keeping [`MAX_INTERFACES`] names in bounded memory.
pub const MAX_NAME_BYTES: usize = 256;

/// Snaplen the writers declare: what tcpdump and Wireshark use by default.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// LINKTYPE_* values that the capture sources of this project produce.
pub mod link_type {
    /// BSD loopback (4-byte address family, host byte order).
    pub const NULL: u16 = 0;
    /// Ethernet II.
    pub const ETHERNET: u16 = 1;
    /// Raw IPv4 or IPv6, no link header.
    pub const RAW: u16 = 101;
    /// Linux "cooked" capture v1.
    pub const LINUX_SLL: u16 = 113;
    /// Linux netfilter NFLOG.
    pub const NFLOG: u16 = 239;
    /// Linux "cooked" capture v2.
    pub const LINUX_SLL2: u16 = 276;
}
