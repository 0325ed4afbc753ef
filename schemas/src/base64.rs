//! Standard base64 (RFC 4648, padded): only binary bodies in JSON need it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn encode(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    encode_into(data, &mut out);
    // Base64 is ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// The two symbols of every 12-bit value, as the little-endian bytes of a `u16`: half
/// the lookups of one symbol at a time.
const PAIRS: [u16; 4096] = {
    let mut t = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = u16::from_le_bytes([ALPHABET[i >> 6], ALPHABET[i & 63]]);
        i += 1;
    }
    t
};

/// Appends the base64 of `data` to `out`.
pub fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    let sym = |n: u32, shift: u32| ALPHABET[((n >> shift) & 63) as usize];
    let at = out.len();
    // Sized first and filled in place: no capacity check per group.
    out.resize(at + data.len().div_ceil(3) * 4, b'=');
    let out = &mut out[at..];
    // Six bytes at a time, read as one big-endian word (so eight must be readable): four
    // lookups of two symbols each, one eight-byte store.
    let blocks = data.len().saturating_sub(2) / 6;
    for (o, k) in out.chunks_exact_mut(8).zip(0..blocks) {
        let Some(word) = data[6 * k..].first_chunk::<8>() else {
            break;
        };
        let n = u64::from_be_bytes(*word);
        let pair = |shift: u32| u64::from(PAIRS[((n >> shift) & 0xfff) as usize]);
        let symbols = pair(52) | pair(40) << 16 | pair(28) << 32 | pair(16) << 48;
        o.copy_from_slice(&symbols.to_le_bytes());
    }
    let (data, out) = (&data[6 * blocks..], &mut out[8 * blocks..]);
    let (groups, rest) = out.split_at_mut(data.len() / 3 * 4);
    let mut chunks = data.chunks_exact(3);
    for (o, c) in groups.chunks_exact_mut(4).zip(&mut chunks) {
        let n = (usize::from(c[0]) << 16) | (usize::from(c[1]) << 8) | usize::from(c[2]);
        let symbols = u32::from(PAIRS[n >> 12]) | u32::from(PAIRS[n & 0xfff]) << 16;
        o.copy_from_slice(&symbols.to_le_bytes());
    }
    match (chunks.remainder(), rest) {
        (&[a], [o0, o1, _, _]) => {
            let n = u32::from(a) << 16;
            (*o0, *o1) = (sym(n, 18), sym(n, 12));
        }
        (&[a, b], [o0, o1, o2, _]) => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            (*o0, *o1, *o2) = (sym(n, 18), sym(n, 12), sym(n, 6));
        }
        _ => {}
    }
}

pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 character at {i}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), enc);
            assert_eq!(decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(decode("ab$d").is_err());
    }

    /// The straightforward encoder, to check the fast one against.
    fn reference(data: &[u8]) -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char
                } else {
                    '='
                });
            }
        }
        out
    }

    #[test]
    fn every_length_matches_the_reference() {
        let data: Vec<u8> = (0..100u32).map(|i| (i * 97 + 13) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(encode(&data[..len]), reference(&data[..len]), "{len}");
            let mut out = b"prefix".to_vec();
            encode_into(&data[..len], &mut out);
            assert_eq!(out[6..], *reference(&data[..len]).as_bytes());
        }
    }

    proptest! {
        #[test]
        fn matches_the_reference(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(encode(&data), reference(&data));
        }

        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(decode(&encode(&data)).unwrap(), data);
        }
    }
}
