//! HPACK (RFC 7541) decoding as a passive observer: one decoder per direction, whose
//! dynamic table may be partly unknown.
//!
//! A capture that starts mid-connection, or lost a header block, cannot know what the
//! dynamic table holds. Rather than guess, the decoder tracks which entries it knows:
//! entries inserted since it began watching sit at the front of the table and are
//! known; everything older is "unknown". A field that refers to an unknown entry is
//! counted, not invented; literal fields still decode, so the state recovers as the
//! peer inserts new entries (and becomes fully known again once the known entries fill
//! the table, or a size update empties it).
//!
//! That partial knowledge is why this is not an HPACK crate: the decoders of `hpack`,
//! `fluke-hpack` and `h2` serve an endpoint, which always knows its whole table, and
//! fail the whole block (or the connection) on an index they do not hold.

pub mod huffman;
mod table;

use std::collections::VecDeque;

pub use table::STATIC;

/// The table size both sides start with (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Dynamic table bytes tracked per direction. A peer allowed a larger table (by
/// SETTINGS_HEADER_TABLE_SIZE) gets its older entries treated as unknown rather than
/// kept without bound.
pub const MAX_TRACKED_TABLE_BYTES: usize = 64 * 1024;
/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;
/// Octets an HPACK integer may take before it is refused (values stay below 2^32).
const MAX_INT_OCTETS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    Truncated,
    IntegerOverflow,
    BadIndex,
    BadHuffman,
}

impl HpackError {
    pub fn as_str(self) -> &'static str {
        match self {
            HpackError::Truncated => "header block cut short",
            HpackError::IntegerOverflow => "integer overflow",
            HpackError::BadIndex => "index outside the tables",
            HpackError::BadHuffman => "invalid Huffman code",
        }
    }
}

#[derive(Debug, Clone)]
enum Slot {
    Known {
        name: Box<str>,
        value: Box<str>,
        size: usize,
    },
    /// Inserted by a literal whose name referred to an unknown entry; `size` is a lower
    /// bound.
    Unknown { size: usize },
}

impl Slot {
    fn size(&self) -> usize {
        match self {
            Slot::Known { size, .. } | Slot::Unknown { size } => *size,
        }
    }
}

/// The decoded fields of one header block.
#[derive(Debug, Default)]
pub struct Block {
    /// Fields in order, names and values as sent (bytes that are not UTF-8 replaced).
    pub fields: Vec<(String, String)>,
    /// Fields that referred to dynamic-table entries whose contents are unknown.
    pub unknown: usize,
    /// Fields decoded but not kept because the block outgrew the caller's limit.
    pub dropped: usize,
    /// Where the block broke the grammar; the fields after it are lost.
    pub error: Option<HpackError>,
    /// A dynamic table size update above what SETTINGS allowed, or not at the start of
    /// the block (both applied anyway).
    pub bad_size_update: bool,
}

impl Block {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field was decoded.
    pub fn complete(&self) -> bool {
        self.unknown == 0 && self.error.is_none()
    }
}

/// The decoding state of one direction.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first, so index 62 is `table[0]`.
    table: VecDeque<Slot>,
    /// Sum of the tracked entries' sizes (a lower bound where some are unknown).
    bytes: usize,
    /// The table's maximum size, as the last size update set it.
    max_size: usize,
    /// `max_size` is what the encoder uses (false when joined mid-connection).
    max_known: bool,
    /// Entries older than the tracked ones may exist, contents unknown.
    tail_unknown: bool,
    /// SETTINGS_HEADER_TABLE_SIZE announced by the side that decodes this direction.
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder for a connection seen from its start.
    pub fn new() -> Decoder {
        Decoder {
            table: VecDeque::new(),
            bytes: 0,
            max_size: DEFAULT_TABLE_SIZE,
            max_known: true,
            tail_unknown: false,
            limit: DEFAULT_TABLE_SIZE,
        }
    }

    /// A decoder for a connection joined mid-way: nothing in the table is known.
    pub fn unknown() -> Decoder {
        let mut d = Decoder::new();
        d.forget();
        d
    }

    /// The state can no longer be trusted (a header block was lost or broken): every
    /// entry becomes unknown.
    pub fn forget(&mut self) {
        self.table.clear();
        self.bytes = 0;
        self.tail_unknown = true;
        self.max_known = false;
    }

    /// Whether any entry of the dynamic table is unknown.
    pub fn is_uncertain(&self) -> bool {
        self.tail_unknown || self.table.iter().any(|s| matches!(s, Slot::Unknown { .. }))
    }

    /// The connection is known to be at its first header block in this direction:
    /// the table is empty, whatever was believed before.
    pub fn starts_empty(&mut self) {
        self.table.clear();
        self.bytes = 0;
        self.tail_unknown = false;
        self.max_size = DEFAULT_TABLE_SIZE.min(self.limit);
        self.max_known = true;
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        if self.max_size > limit {
            // The encoder must shrink to it (and say so with a size update).
            self.max_size = limit;
            self.evict();
        }
    }

    fn set_max_size(&mut self, size: usize) {
        self.max_size = size;
        self.max_known = true;
        self.evict();
    }

    fn evict(&mut self) {
        if self.max_known {
            // The real table is at least as full as the tracked part, so whatever does
            // not fit here was evicted by the encoder too, oldest (the unknown tail)
            // first.
            while self.bytes > self.max_size {
                self.pop_oldest();
                self.tail_unknown = false;
            }
            if self.bytes + ENTRY_OVERHEAD > self.max_size {
                self.tail_unknown = false;
            }
        }
        while self.bytes > MAX_TRACKED_TABLE_BYTES {
            // Dropped for memory only: the encoder may still refer to it.
            self.pop_oldest();
            self.tail_unknown = true;
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(s) = self.table.pop_back() {
            self.bytes -= s.size();
        }
    }

    fn insert(&mut self, slot: Slot) {
        let size = slot.size();
        if self.max_known && size > self.max_size {
            // An entry larger than the table empties it (RFC 7541 §4.4).
            self.table.clear();
            self.bytes = 0;
            self.tail_unknown = false;
            return;
        }
        self.table.push_front(slot);
        self.bytes += size;
        self.evict();
    }

    /// The entry at `index` (1-based over the static then the dynamic table):
    /// `Ok(None)` when it exists but is unknown.
    fn lookup(&self, index: u64) -> Result<Option<(&str, &str)>, HpackError> {
        let i = usize::try_from(index).map_err(|_| HpackError::BadIndex)?;
        if i == 0 {
            return Err(HpackError::BadIndex);
        }
        if let Some(&(n, v)) = STATIC.get(i - 1) {
            return Ok(Some((n, v)));
        }
        match self.table.get(i - 1 - STATIC.len()) {
            Some(Slot::Known { name, value, .. }) => Ok(Some((name, value))),
            Some(Slot::Unknown { .. }) => Ok(None),
            None if self.tail_unknown => Ok(None),
            None => Err(HpackError::BadIndex),
        }
    }

    /// Decodes one whole header block. Kept fields stop at `max_kept` bytes of names
    /// and values; the table is updated by every field either way.
    pub fn decode(&mut self, block: &[u8], max_kept: usize) -> Block {
        let mut out = Block::default();
        let mut kept = 0usize;
        let mut p = 0usize;
        let mut seen_field = false;
        let mut scratch = Vec::new();
        while p < block.len() {
            match self.field(block, &mut p, &mut scratch, &mut out, seen_field) {
                Ok(Some((name, value))) => {
                    seen_field = true;
                    let len = name.len() + value.len();
                    // Once one field is dropped all later ones are, so that what is
                    // kept is the start of the block.
                    if out.dropped == 0 && kept + len <= max_kept {
                        kept += len;
                        out.fields.push((name, value));
                    } else {
                        out.dropped += 1;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    out.error = Some(e);
                    // Insertions after this point were missed: indexes shifted.
                    self.forget();
                    break;
                }
            }
        }
        out
    }

    /// One field representation at `*p`; `None` for a size update or an unknown field.
    fn field(
        &mut self,
        b: &[u8],
        p: &mut usize,
        scratch: &mut Vec<u8>,
        out: &mut Block,
        seen_field: bool,
    ) -> Result<Option<(String, String)>, HpackError> {
        let first = b[*p];
        if first & 0x80 != 0 {
            let index = integer(b, p, 7)?;
            return match self.lookup(index)? {
                Some((n, v)) => Ok(Some((n.to_string(), v.to_string()))),
                None => {
                    out.unknown += 1;
                    Ok(None)
                }
            };
        }
        if first & 0xe0 == 0x20 {
            let size = integer(b, p, 5)?;
            let size = usize::try_from(size).map_err(|_| HpackError::IntegerOverflow)?;
            if size > self.limit || seen_field {
                out.bad_size_update = true;
            }
            self.set_max_size(size);
            return Ok(None);
        }
        let (indexing, prefix) = if first & 0xc0 == 0x40 {
            (true, 6)
        } else {
            (false, 4)
        };
        let index = integer(b, p, prefix)?;
        let name: Option<String> = if index == 0 {
            Some(string(b, p, scratch)?)
        } else {
            self.lookup(index)?.map(|(n, _)| n.to_string())
        };
        let value = string(b, p, scratch)?;
        match name {
            Some(name) => {
                if indexing {
                    let size = name.len() + value.len() + ENTRY_OVERHEAD;
                    self.insert(Slot::Known {
                        name: name.clone().into_boxed_str(),
                        value: value.clone().into_boxed_str(),
                        size,
                    });
                }
                Ok(Some((name, value)))
            }
            None => {
                if indexing {
                    // The name had at least one byte.
                    let size = value.len() + 1 + ENTRY_OVERHEAD;
                    self.insert(Slot::Unknown { size });
                }
                out.unknown += 1;
                Ok(None)
            }
        }
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(b: &[u8], p: &mut usize, n: u32) -> Result<u64, HpackError> {
    let mask = (1u64 << n) - 1;
    let first = *b.get(*p).ok_or(HpackError::Truncated)?;
    *p += 1;
    let mut v = u64::from(first) & mask;
    if v < mask {
        return Ok(v);
    }
    let mut shift = 0u32;
    for _ in 0..MAX_INT_OCTETS {
        let byte = *b.get(*p).ok_or(HpackError::Truncated)?;
        *p += 1;
        v += u64::from(byte & 0x7f) << shift;
        if v > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return Ok(v);
        }
        shift += 7;
    }
    Err(HpackError::IntegerOverflow)
}

/// A string literal (RFC 7541 §5.2), Huffman-coded or not.
fn string(b: &[u8], p: &mut usize, scratch: &mut Vec<u8>) -> Result<String, HpackError> {
    let huff = b.get(*p).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(b, p, 7)?;
    let len = usize::try_from(len).map_err(|_| HpackError::IntegerOverflow)?;
    let end = p.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = b.get(*p..end).ok_or(HpackError::Truncated)?;
    *p = end;
    let bytes = if huff {
        scratch.clear();
        huffman::decode(raw, scratch).ok_or(HpackError::BadHuffman)?;
        &scratch[..]
    } else {
        raw
    };
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// What the first field of a header block says about its sender, without any state:
/// pseudo-header fields come first, and requests and responses have different ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

pub fn first_field_sender(block: &[u8]) -> Option<Sender> {
    let mut p = 0usize;
    let mut scratch = Vec::new();
    loop {
        let first = *block.get(p)?;
        if first & 0xe0 == 0x20 {
            integer(block, &mut p, 5).ok()?;
            continue;
        }
        let prefix = if first & 0x80 != 0 {
            7
        } else if first & 0xc0 == 0x40 {
            6
        } else {
            4
        };
        let index = integer(block, &mut p, prefix).ok()?;
        let name = if index == 0 && prefix != 7 {
            string(block, &mut p, &mut scratch).ok()?
        } else {
            let (n, _) = STATIC.get(usize::try_from(index).ok()?.checked_sub(1)?)?;
            (*n).to_string()
        };
        return match name.as_str() {
            ":method" | ":path" | ":scheme" | ":authority" | ":protocol" => Some(Sender::Client),
            ":status" => Some(Sender::Server),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests;
