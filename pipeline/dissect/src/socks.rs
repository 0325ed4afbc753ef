//! SOCKS4/4a/5 handshakes: read and skipped, so that the protocol tunnelled through the
//! proxy is detected and dissected like any other connection.

use reef_reassembly::Dir;

/// Bytes a handshake may take per direction before it is not believed.
const MAX_HANDSHAKE_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V4,
    V5,
}

/// The handshake in progress: what each side has sent so far.
#[derive(Debug)]
pub struct Socks {
    version: Version,
    client: Dir,
    buf: [Vec<u8>; 2],
    /// Stream offset of `buf[d][0]`.
    start: [u64; 2],
    /// Times and acknowledgments of the first buffered bytes, for the replay.
    ts: [i64; 2],
    done: [bool; 2],
}

/// The tunnel begins: bytes of either side that followed the handshake.
pub struct Tunnel {
    pub client: Dir,
    /// Per direction: stream offset, bytes and time of what came after the handshake.
    pub rest: [(u64, Vec<u8>, i64); 2],
}

pub enum Progress {
    More,
    Open(Tunnel),
    NotSocks,
}

/// Does a connection's first data look like a SOCKS client greeting?
pub fn looks_like_greeting(b: &[u8]) -> bool {
    match b {
        // SOCKS5: version, method count, that many methods (0 none, 1 GSSAPI, 2 password...).
        [5, n, methods @ ..] => {
            (1..=16).contains(n)
                && methods.len() >= usize::from(*n)
                && methods[..usize::from(*n)]
                    .iter()
                    .all(|m| *m <= 0x09 || *m >= 0x80)
        }
        // SOCKS4: version, CONNECT or BIND, port, address, then a user id ending in NUL.
        [4, 1 | 2, _, _, _, _, _, _, rest @ ..] => rest.len() <= 256,
        _ => false,
    }
}

impl Socks {
    pub fn new(client: Dir, first: &[u8]) -> Socks {
        Socks {
            version: if first.first() == Some(&4) {
                Version::V4
            } else {
                Version::V5
            },
            client,
            buf: [Vec::new(), Vec::new()],
            start: [0, 0],
            ts: [0, 0],
            done: [false, false],
        }
    }

    pub fn feed(&mut self, dir: Dir, offset: u64, data: &[u8], ts: i64) -> Progress {
        let i = dir.index();
        if self.buf[i].is_empty() {
            self.start[i] = offset;
            self.ts[i] = ts;
        }
        self.buf[i].extend_from_slice(data);
        for d in [Dir::Forward, Dir::Reverse] {
            let j = d.index();
            if self.done[j] {
                continue;
            }
            let is_client = d == self.client;
            let parsed = match (self.version, is_client) {
                (Version::V5, true) => v5_client(&self.buf[j]),
                (Version::V5, false) => v5_server(&self.buf[j]),
                (Version::V4, true) => v4_client(&self.buf[j]),
                (Version::V4, false) => v4_server(&self.buf[j]),
            };
            match parsed {
                Parsed::Done(n) => {
                    self.buf[j].drain(..n);
                    self.start[j] += n as u64;
                    self.done[j] = true;
                }
                Parsed::More if self.buf[j].len() > MAX_HANDSHAKE_BYTES => {
                    return Progress::NotSocks;
                }
                Parsed::More => {}
                Parsed::Bad => return Progress::NotSocks,
            }
        }
        if self.done == [true, true] {
            let take =
                |k: usize, s: &mut Socks| (s.start[k], std::mem::take(&mut s.buf[k]), s.ts[k]);
            let rest = [take(0, self), take(1, self)];
            return Progress::Open(Tunnel {
                client: self.client,
                rest,
            });
        }
        Progress::More
    }
}

enum Parsed {
    /// The handshake of this side took this many bytes.
    Done(usize),
    More,
    Bad,
}

/// Greeting, optional username/password sub-negotiation, then the request.
fn v5_client(b: &[u8]) -> Parsed {
    let Some(&n) = b.get(1) else {
        return Parsed::More;
    };
    let mut at = 2 + usize::from(n);
    if b.len() < at {
        return Parsed::More;
    }
    match b.get(at) {
        None => return Parsed::More,
        Some(1) => {
            // RFC 1929: version 1, user, password.
            let Some(&ulen) = b.get(at + 1) else {
                return Parsed::More;
            };
            let p = at + 2 + usize::from(ulen);
            let Some(&plen) = b.get(p) else {
                return Parsed::More;
            };
            at = p + 1 + usize::from(plen);
        }
        Some(5) => {}
        Some(_) => return Parsed::Bad,
    }
    address_message(b, at)
}

/// Method choice, optional sub-negotiation status, then the reply.
fn v5_server(b: &[u8]) -> Parsed {
    match b.get(..2) {
        None => return Parsed::More,
        Some([5, m]) if *m != 0xff => {}
        Some(_) => return Parsed::Bad,
    }
    let mut at = 2;
    match b.get(at) {
        None => return Parsed::More,
        Some(1) => at += 2,
        Some(5) => {}
        Some(_) => return Parsed::Bad,
    }
    address_message(b, at)
}

/// VER CMD/REP RSV ATYP ADDR PORT, starting at `at`.
fn address_message(b: &[u8], at: usize) -> Parsed {
    let Some(h) = b.get(at..at + 4) else {
        return Parsed::More;
    };
    if h[0] != 5 || h[2] != 0 {
        return Parsed::Bad;
    }
    let addr = match h[3] {
        1 => 4,
        4 => 16,
        3 => match b.get(at + 4) {
            Some(&len) => 1 + usize::from(len),
            None => return Parsed::More,
        },
        _ => return Parsed::Bad,
    };
    let end = at + 4 + addr + 2;
    if b.len() < end {
        Parsed::More
    } else {
        Parsed::Done(end)
    }
}

/// VN CD DSTPORT DSTIP USERID NUL [DOMAIN NUL when DSTIP is 0.0.0.x].
fn v4_client(b: &[u8]) -> Parsed {
    if b.len() < 9 {
        return Parsed::More;
    }
    let Some(nul) = b[8..].iter().position(|c| *c == 0) else {
        return Parsed::More;
    };
    let mut end = 8 + nul + 1;
    if b[4..7] == [0, 0, 0] && b[7] != 0 {
        let Some(nul) = b[end..].iter().position(|c| *c == 0) else {
            return Parsed::More;
        };
        end += nul + 1;
    }
    Parsed::Done(end)
}

/// VN(0) CD DSTPORT DSTIP: eight bytes; 0x5a means granted.
fn v4_server(b: &[u8]) -> Parsed {
    match b.get(..8) {
        None => Parsed::More,
        Some(h) if h[0] == 0 && (0x5a..=0x5d).contains(&h[1]) => Parsed::Done(8),
        Some(_) => Parsed::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: Progress) -> Tunnel {
        match p {
            Progress::Open(t) => t,
            Progress::More => panic!("handshake not finished"),
            Progress::NotSocks => panic!("not socks"),
        }
    }

    #[test]
    fn socks5_with_domain_name() {
        let hello = [5, 1, 0];
        assert!(looks_like_greeting(&hello));
        let mut s = Socks::new(Dir::Forward, &hello);
        assert!(matches!(s.feed(Dir::Forward, 0, &hello, 1), Progress::More));
        assert!(matches!(
            s.feed(Dir::Reverse, 0, &[5, 0], 2),
            Progress::More
        ));
        let mut req = vec![5, 1, 0, 3, 14];
        req.extend_from_slice(b"www.google.com");
        req.extend_from_slice(&[0, 80]);
        assert!(matches!(s.feed(Dir::Forward, 3, &req, 3), Progress::More));
        let mut reply = vec![5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90];
        reply.extend_from_slice(b"HTTP/1.1 ");
        let t = open(s.feed(Dir::Reverse, 2, &reply, 4));
        assert_eq!(t.rest[1].0, 12);
        assert_eq!(t.rest[1].1, b"HTTP/1.1 ");
        assert!(t.rest[0].1.is_empty());
        assert_eq!(t.rest[0].0, 3 + req.len() as u64);
    }

    #[test]
    fn socks5_with_password_and_request_in_one_segment() {
        let mut c = vec![5, 1, 2, 1, 3];
        c.extend_from_slice(b"bob");
        c.extend_from_slice(&[2]);
        c.extend_from_slice(b"pw");
        c.extend_from_slice(&[5, 1, 0, 1, 10, 0, 0, 2, 0, 80]);
        c.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut s = Socks::new(Dir::Forward, &c);
        assert!(matches!(s.feed(Dir::Forward, 0, &c, 1), Progress::More));
        let t = open(s.feed(
            Dir::Reverse,
            0,
            &[5, 2, 1, 0, 5, 0, 0, 1, 1, 2, 3, 4, 0, 80],
            2,
        ));
        assert_eq!(t.rest[0].1, b"GET / HTTP/1.1\r\n");
    }

    #[test]
    fn socks4a() {
        let mut c = vec![4, 1, 0, 80, 0, 0, 0, 1];
        c.extend_from_slice(b"user\0example.com\0");
        assert!(looks_like_greeting(&c));
        let mut s = Socks::new(Dir::Forward, &c);
        assert!(matches!(s.feed(Dir::Forward, 0, &c, 1), Progress::More));
        let t = open(s.feed(Dir::Reverse, 0, &[0, 0x5a, 0, 0, 0, 0, 0, 0], 2));
        assert!(t.rest[0].1.is_empty() && t.rest[1].1.is_empty());
    }

    #[test]
    fn not_socks() {
        assert!(!looks_like_greeting(b"GET / HTTP/1.1"));
        assert!(!looks_like_greeting(&[5, 0]));
        let mut s = Socks::new(Dir::Forward, &[5, 1, 0]);
        s.feed(Dir::Forward, 0, &[5, 1, 0], 1);
        assert!(matches!(
            s.feed(Dir::Reverse, 0, b"SSH-2.0", 2),
            Progress::NotSocks
        ));
    }
}
