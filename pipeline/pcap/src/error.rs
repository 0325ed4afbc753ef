//! Errors that name the byte offset and say in plain words what is wrong with the file.

use std::io;
use std::sync::Arc;

use crate::MAX_RECORD_BYTES;

/// A capture file could not be read further.
///
/// `offset` is the position of the record (or block, or file header) that could not be
/// read, so that a user can look at the file with a hex editor or cut it with `head -c`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct PcapError {
    /// Byte offset in the file of the record, block or header at fault.
    pub offset: u64,
    /// What was wrong.
    pub kind: PcapErrorKind,
}

impl PcapError {
    /// True when the file simply ends in the middle of something, which is what a capture
    /// looks like when tcpdump was killed; callers usually report it as a warning.
    pub fn is_truncation(&self) -> bool {
        matches!(
            self.kind,
            PcapErrorKind::TruncatedFileHeader { .. }
                | PcapErrorKind::TruncatedRecordHeader { .. }
                | PcapErrorKind::TruncatedRecord { .. }
                | PcapErrorKind::TruncatedBlockHeader { .. }
                | PcapErrorKind::TruncatedBlock { .. }
        )
    }
}

/// What was wrong; the wording of each message is meant for the person who supplied the file.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PcapErrorKind {
    /// The underlying reader failed. Shared so that the reader can hand the same error out
    /// again when it is called after a failure.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),

    /// The first four bytes are neither a pcap nor a pcapng magic number.
    #[error("not a pcap or pcapng file (magic 0x{magic:08x}){}", magic_hint(.magic))]
    BadMagic {
        /// The first four bytes, read big-endian.
        magic: u32,
    },

    /// The file ends inside the file header.
    #[error("{}", truncated_file_header(.needed, .got))]
    TruncatedFileHeader {
        /// Size of the header.
        needed: usize,
        /// Bytes present.
        got: usize,
    },

    /// The file ends inside the 16-byte header of a classic pcap packet record.
    #[error(
        "truncated packet record header: the file ends {got} bytes into the {needed}-byte record header"
    )]
    TruncatedRecordHeader {
        /// Size of the record header.
        needed: usize,
        /// Bytes present.
        got: usize,
    },

    /// The file ends inside the packet data of a classic pcap record.
    #[error(
        "truncated packet record: header says {caplen} captured bytes but the file ends after {got}"
    )]
    TruncatedRecord {
        /// Captured length announced by the record header.
        caplen: u32,
        /// Packet bytes present.
        got: usize,
    },

    /// The file ends inside the type and length words of a pcapng block.
    #[error(
        "truncated pcapng block header: the file ends {got} bytes into a block (a block header is 12 bytes)"
    )]
    TruncatedBlockHeader {
        /// Bytes present.
        got: usize,
    },

    /// The file ends inside a pcapng block.
    #[error(
        "truncated pcapng {}: header says the block is {length} bytes long but the file ends after {got}",
        BlockName(*.block_type)
    )]
    TruncatedBlock {
        /// Block type.
        block_type: u32,
        /// Total length announced by the block.
        length: u32,
        /// Bytes present, counting from the start of the block.
        got: usize,
    },

    /// A classic pcap record announces more captured bytes than any sane capture contains.
    #[error(
        "impossible packet record: header says {caplen} captured bytes, more than the limit of {} (the file is corrupt)",
        MAX_RECORD_BYTES
    )]
    RecordTooLarge {
        /// Captured length announced by the record header.
        caplen: u32,
    },

    /// A pcapng block announces a length beyond [`MAX_RECORD_BYTES`].
    #[error(
        "impossible pcapng {}: header says {length} bytes, more than the limit of {} (the file is corrupt)",
        BlockName(*.block_type),
        MAX_RECORD_BYTES
    )]
    BlockTooLarge {
        /// Block type.
        block_type: u32,
        /// Total length announced by the block.
        length: u32,
    },

    /// A pcapng block is shorter than the fixed fields of its type.
    #[error(
        "impossible pcapng {}: header says {length} bytes but this kind of block needs at least {min}",
        BlockName(*.block_type)
    )]
    BlockTooShort {
        /// Block type.
        block_type: u32,
        /// Total length announced by the block.
        length: u32,
        /// Smallest valid length for this block type.
        min: u32,
    },

    /// pcapng blocks are 32-bit aligned; anything else means the length word is garbage.
    #[error(
        "impossible pcapng {}: header says {length} bytes, which is not a multiple of 4 (the file is corrupt)",
        BlockName(*.block_type)
    )]
    BlockLengthNotMultipleOf4 {
        /// Block type.
        block_type: u32,
        /// Total length announced by the block.
        length: u32,
    },

    /// The length repeated at the end of a pcapng block differs from the one at its start.
    #[error(
        "corrupt pcapng {}: length at its start says {leading} bytes but the copy at its end says {trailing}",
        BlockName(*.block_type)
    )]
    TrailingLengthMismatch {
        /// Block type.
        block_type: u32,
        /// Length word at the start of the block.
        leading: u32,
        /// Length word at the end of the block.
        trailing: u32,
    },

    /// A pcapng packet block announces more captured bytes than the block holds.
    #[error(
        "corrupt pcapng {}: it says {caplen} captured bytes but has room for only {room}",
        BlockName(*.block_type)
    )]
    PacketExceedsBlock {
        /// Block type.
        block_type: u32,
        /// Captured length announced by the block.
        caplen: u32,
        /// Bytes available for packet data in the block.
        room: u32,
    },

    /// A pcapng section header with a byte-order magic that is neither 0x1a2b3c4d nor its swap.
    #[error(
        "corrupt pcapng section header: byte-order magic is 0x{magic:08x}, expected 0x1a2b3c4d in either byte order"
    )]
    BadByteOrderMagic {
        /// The four bytes, read big-endian.
        magic: u32,
    },

    /// A pcapng section of a major version this reader does not know (only 1 exists).
    #[error("unsupported pcapng version {major}.{minor} (only 1.x can be read)")]
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },

    /// A packet names an interface that no Interface Description Block of its section defined.
    #[error(
        "packet refers to interface {interface}, but the current pcapng section defines only {defined} interface(s)"
    )]
    UndefinedInterface {
        /// Interface index found in the packet.
        interface: u32,
        /// Number of interfaces defined so far in the section.
        defined: usize,
    },

    /// More interfaces in one section than [`crate::MAX_INTERFACES`]; bounds memory use.
    #[error(
        "too many interfaces in one pcapng section (limit {limit}); the file is probably corrupt"
    )]
    TooManyInterfaces {
        /// The limit that was reached.
        limit: usize,
    },
}

fn truncated_file_header(needed: &usize, got: &usize) -> String {
    if *got == 0 {
        "the file is empty (no pcap or pcapng header)".to_owned()
    } else {
        format!(
            "truncated file header: the file ends after {got} bytes, inside the {needed}-byte header"
        )
    }
}

/// Suggests what the file is when it is a known non-capture format, because "bad magic" alone
/// does not tell the user what to do.
fn magic_hint(magic: &u32) -> &'static str {
    match *magic {
        m if m >> 16 == 0x1f8b => "; it looks gzip-compressed, decompress it first",
        0x28b5_2ffd => "; it looks zstd-compressed, decompress it first",
        0xfd37_7a58 => "; it looks xz-compressed, decompress it first",
        0xa1b2_cd34 | 0x34cd_b2a1 => {
            "; this is the rare \"modified\" (Kuznetsov) pcap variant, convert it with editcap first"
        }
        0x3c68_746d | 0x3c21_444f => "; it looks like an HTML page, was the download URL right?",
        _ => "",
    }
}

/// Human-readable pcapng block type for error messages.
struct BlockName(u32);

impl std::fmt::Display for BlockName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            crate::reader::BT_SHB => "section header block",
            crate::reader::BT_IDB => "interface description block",
            crate::reader::BT_EPB => "enhanced packet block",
            crate::reader::BT_SPB => "simple packet block",
            crate::reader::BT_PB => "packet block (obsolete type)",
            4 => "name resolution block",
            5 => "interface statistics block",
            10 => "decryption secrets block",
            0x0000_0bad | 0x4000_0bad => "custom block",
            t => return write!(f, "block of type 0x{t:08x}"),
        };
        write!(f, "{name} (type 0x{:08x})", self.0)
    }
}
