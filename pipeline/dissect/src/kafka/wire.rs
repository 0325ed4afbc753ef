//! Kafka's primitive types: big-endian integers, (unsigned) varints, strings and
//! arrays in their classic (16/32-bit length) and compact (varint length + 1) forms,
//! UUIDs and tagged fields. Every read is bounds-checked; a cut message reads as
//! `None` from where it was cut.

/// Elements of one array walked before the rest is skipped unread.
pub const MAX_ARRAY_WALK: usize = 4096;
/// Tagged fields skipped per tagged-field section.
const MAX_TAGGED_FIELDS: u64 = 256;

pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    /// Compact (flexible-version) encodings.
    pub flexible: bool,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], flexible: bool) -> Reader<'a> {
        Reader { b, at: 0, flexible }
    }

    pub fn pos(&self) -> usize {
        self.at
    }

    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.at..).unwrap_or_default()
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.at.checked_add(n)?;
        if end > self.b.len() {
            self.at = self.b.len();
            return None;
        }
        self.at = end;
        Some(())
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    pub fn i8(&mut self) -> Option<i8> {
        self.bytes(1).map(|s| s[0] as i8)
    }

    pub fn i16(&mut self) -> Option<i16> {
        self.bytes(2).map(|s| i16::from_be_bytes([s[0], s[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        self.bytes(4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn i64(&mut self) -> Option<i64> {
        let s = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(i64::from_be_bytes(a))
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.bytes(1)?[0];
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    pub fn uuid(&mut self) -> Option<[u8; 16]> {
        let s = self.bytes(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(s);
        Some(a)
    }

    /// A string (nullable or not): `Some(None)` is null.
    pub fn string(&mut self) -> Option<Option<&'a [u8]>> {
        let len: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i16()?)
        };
        if len < 0 {
            return Some(None);
        }
        self.bytes(usize::try_from(len).ok()?).map(Some)
    }

    /// Bytes (nullable or not, records included): skipped, their length returned.
    pub fn skip_bytes(&mut self) -> Option<i64> {
        let len: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i32()?)
        };
        if len > 0 {
            self.skip(usize::try_from(len).ok()?)?;
        }
        Some(len)
    }

    /// An array's element count (`None` for a null array, which reads as empty).
    pub fn array_len(&mut self) -> Option<usize> {
        let n: i64 = if self.flexible {
            self.uvarint()? as i64 - 1
        } else {
            i64::from(self.i32()?)
        };
        // An element takes a byte at least: more than the bytes left is garbage.
        let n = usize::try_from(n.max(0)).ok()?;
        if n > self.rest().len() {
            return None;
        }
        Some(n)
    }

    /// The tagged fields that end a structure in flexible versions (nothing in older
    /// ones).
    pub fn tagged(&mut self) -> Option<()> {
        if !self.flexible {
            return Some(());
        }
        let n = self.uvarint()?;
        if n > MAX_TAGGED_FIELDS {
            return None;
        }
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(usize::try_from(size).ok()?)?;
        }
        Some(())
    }
}

/// A UUID as text (8-4-4-4-12 hex digits).
pub fn uuid_text(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}
