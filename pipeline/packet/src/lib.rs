//! L2–L4 decoding of captured frames.
//!
//! [`decode`] takes one captured frame and its link type and finds the IP packet in it
//! (Ethernet with 802.1Q/802.1ad tags, Linux cooked SLL and SLL2, raw IP, BSD loopback,
//! NFLOG), then the transport header with etherparse. IP fragments are returned as such;
//! [`Defragmenter`] puts them back together within named memory limits.
//!
//! Everything here is pure: bytes in, borrowed views out, no allocation on the fast path.

mod defrag;
mod link;

use std::net::IpAddr;

use etherparse::{IpNumber, LaxIpSlice, TcpSlice};

pub use defrag::{
    Defragmenter, FRAGMENT_TIMEOUT_NS, FragDrop, FragStats, MAX_DATAGRAM_BYTES, MAX_PENDING_BYTES,
    MAX_PENDING_DATAGRAMS,
};
pub use link::{Direction, LinkFrame, linktype};

/// Why a frame yielded no IP packet. Most are normal (ARP, LLDP...) and only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The link type is not one Reef reads.
    UnsupportedLinkType(u16),
    /// A frame that is not IPv4 or IPv6 (ARP, LLDP, STP, ...).
    NotIp,
    /// The frame ended inside a link-layer header.
    TruncatedLink,
    /// The IP header is missing, truncated or invalid.
    BadIp,
}

impl DecodeError {
    pub const fn reason(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType(_) => "unsupported_link_type",
            DecodeError::NotIp => "not_ip",
            DecodeError::TruncatedLink => "truncated_link_header",
            DecodeError::BadIp => "bad_ip_header",
        }
    }
}

/// An IP fragment, to be handed to a [`Defragmenter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// IPv4 identification (16 bits) or IPv6 fragment id.
    pub id: u32,
    /// Byte offset of this fragment's data in the original payload.
    pub offset: u32,
    pub more: bool,
}

/// An IP packet found in a frame.
#[derive(Debug, Clone)]
pub struct IpPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the payload (after IPv6 extension headers).
    pub protocol: u8,
    /// The IP payload as captured (may be shorter than `payload_len` if the capture was
    /// cut by a snap length).
    pub payload: &'a [u8],
    /// Payload length according to the IP header.
    pub payload_len: usize,
    pub fragment: Option<Fragment>,
    /// 802.1Q / 802.1ad VLAN ids, outermost first (0 where absent).
    pub vlans: [u16; 2],
    /// Direction reported by the capture, when the link layer says (SLL/SLL2).
    pub direction: Option<Direction>,
}

pub mod ip_proto {
    pub const ICMP: u8 = 1;
    /// IPv4 in IP (Calico's IPIP mode, among others).
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 in IP.
    pub const IPV6_IN_IP: u8 = 41;
    pub const GRE: u8 = 47;
    pub const ICMPV6: u8 = 58;
}

/// UDP ports that carry overlay tunnels. Ports are only where to look: the header must
/// also be a valid tunnel header.
pub mod tunnel_port {
    pub const VXLAN: u16 = 4789;
    /// The Linux kernel's VXLAN default, used by flannel.
    pub const VXLAN_LINUX: u16 = 8472;
    pub const GENEVE: u16 = 6081;
}

/// The packet inside a tunnel (IP-in-IP, GRE), as (link type, frame), so that it can be
/// decoded like a captured one. Cluster overlays put pod traffic in these.
pub fn decapsulate_ip(protocol: u8, payload: &[u8]) -> Option<(u16, &[u8])> {
    match protocol {
        ip_proto::IPIP | ip_proto::IPV6_IN_IP => Some((linktype::RAW, payload)),
        ip_proto::GRE => {
            let h = payload.get(..4)?;
            let (flags, version) = (h[0], h[1] & 0x07);
            if version != 0 {
                return None; // PPTP's enhanced GRE carries PPP, not plain packets
            }
            // Checksum (+reserved), key and sequence number are each 4 optional bytes.
            let len = 4 + 4 * [0x80, 0x20, 0x10]
                .iter()
                .filter(|f| flags & *f != 0)
                .count();
            let inner = payload.get(len..)?;
            match u16::from_be_bytes([h[2], h[3]]) {
                0x0800 | 0x86dd => Some((linktype::RAW, inner)),
                0x6558 => Some((linktype::ETHERNET, inner)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The Ethernet frame inside a VXLAN or Geneve datagram.
pub fn decapsulate_udp<'a>(u: &UdpDatagram<'a>) -> Option<(u16, &'a [u8])> {
    let p = u.payload;
    match u.dst_port {
        tunnel_port::VXLAN | tunnel_port::VXLAN_LINUX => {
            // Flags with the VNI-valid bit, reserved bits zero.
            let h = p.get(..8)?;
            (h[0] & 0x08 != 0 && h[0] & !0x0c == 0 && h[7] == 0)
                .then(|| (linktype::ETHERNET, &p[8..]))
        }
        tunnel_port::GENEVE => {
            let h = p.get(..8)?;
            let (version, opt_len) = (h[0] >> 6, usize::from(h[0] & 0x3f) * 4);
            let proto = u16::from_be_bytes([h[2], h[3]]);
            if version != 0 {
                return None;
            }
            let inner = p.get(8 + opt_len..)?;
            match proto {
                0x6558 => Some((linktype::ETHERNET, inner)),
                0x0800 | 0x86dd => Some((linktype::RAW, inner)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Finds the IP packet in a captured frame.
pub fn decode(link_type: u16, frame: &[u8]) -> Result<IpPacket<'_>, DecodeError> {
    let l = link::strip(link_type, frame)?;
    decode_ip(l)
}

fn decode_ip(l: LinkFrame<'_>) -> Result<IpPacket<'_>, DecodeError> {
    let (ip, _stop) = LaxIpSlice::from_slice(l.ip).map_err(|_| DecodeError::BadIp)?;
    let src = ip.source_addr();
    let dst = ip.destination_addr();
    let fragment = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            h.is_fragmenting_payload().then(|| Fragment {
                id: u32::from(h.identification()),
                offset: u32::from(h.fragments_offset().value()) * 8,
                more: h.more_fragments(),
            })
        }
        LaxIpSlice::Ipv6(v6) => ipv6_fragment(v6.header().next_header().0, v6.extensions().slice()),
    };
    let p = ip.payload();
    // Lengths the IP header declares, to tell a snap-length cut from a short packet.
    let declared_end = match &ip {
        LaxIpSlice::Ipv4(v4) => usize::from(v4.header().total_len()),
        LaxIpSlice::Ipv6(v6) => 40 + usize::from(v6.header().payload_length()),
    };
    let offset = (p.payload.as_ptr() as usize).saturating_sub(l.ip.as_ptr() as usize);
    let payload_len = declared_end.saturating_sub(offset).max(p.payload.len());
    Ok(IpPacket {
        src,
        dst,
        protocol: p.ip_number.0,
        payload: p.payload,
        payload_len,
        fragment,
        vlans: l.vlans,
        direction: l.direction,
    })
}

/// Extension headers walked before giving up on a packet.
const MAX_IPV6_EXTENSIONS: usize = 16;

/// The fragment header among IPv6 extension headers, if the payload is fragmented.
///
/// Walked here with bounds checks rather than with etherparse's extension iterator,
/// which reads past the end of the slice when lax parsing stopped early (found by the
/// capture fuzzer with an out-of-place hop-by-hop header).
fn ipv6_fragment(first: u8, mut exts: &[u8]) -> Option<Fragment> {
    let mut next = first;
    for _ in 0..MAX_IPV6_EXTENSIONS {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => (usize::from(*exts.get(1)?) + 1) * 8,
            // Authentication header: length in 4-byte units, minus 2.
            51 => (usize::from(*exts.get(1)?) + 2) * 4,
            44 => {
                let h = exts.get(..8)?;
                let off_more = u16::from_be_bytes([h[2], h[3]]);
                let offset = u32::from(off_more >> 3) * 8;
                let more = off_more & 1 == 1;
                if offset != 0 || more {
                    return Some(Fragment {
                        id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                        offset,
                        more,
                    });
                }
                8 // an atomic fragment: a whole packet
            }
            _ => return None,
        };
        let h = exts.get(..len)?;
        next = h[0];
        exts = &exts[len..];
    }
    None
}

/// TCP flag bits as on the wire.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// A TCP segment.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// FIN, SYN, RST, PSH, ACK bits (see [`tcp_flags`]).
    pub flags: u8,
    pub window: u16,
    /// Payload bytes as captured.
    pub payload: &'a [u8],
    /// Payload bytes the segment carried on the wire but the capture cut off.
    pub missing: u32,
}

impl TcpSegment<'_> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Debug, Clone, Copy)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
    pub missing: u32,
}

#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
    /// ICMP or ICMPv6 message (type, code, rest).
    Icmp {
        v6: bool,
        icmp_type: u8,
        code: u8,
        rest: &'a [u8],
    },
    /// A protocol Reef does not dissect, or a transport header that did not parse.
    Other {
        protocol: u8,
        malformed: bool,
    },
}

/// Parses the transport header of a whole (unfragmented or reassembled) IP payload.
/// `payload_len` is the length the IP header declared, to tell capture cuts apart.
pub fn decode_transport(protocol: u8, payload: &[u8], payload_len: usize) -> Transport<'_> {
    let missing = payload_len.saturating_sub(payload.len());
    match IpNumber(protocol) {
        IpNumber::TCP => match TcpSlice::from_slice(payload) {
            Ok(t) => Transport::Tcp(TcpSegment {
                src_port: t.source_port(),
                dst_port: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: payload.get(13).copied().unwrap_or(0) & 0x1f,
                window: t.window_size(),
                payload: t.payload(),
                missing: u32::try_from(missing).unwrap_or(u32::MAX),
            }),
            Err(_) => Transport::Other {
                protocol,
                malformed: true,
            },
        },
        // The UDP length field is unreliable on captures with checksum/segmentation
        // offloads; the IP length is what the datagram had.
        IpNumber::UDP if payload.len() >= 8 => Transport::Udp(UdpDatagram {
            src_port: u16::from_be_bytes([payload[0], payload[1]]),
            dst_port: u16::from_be_bytes([payload[2], payload[3]]),
            payload: &payload[8..],
            missing: u32::try_from(missing).unwrap_or(u32::MAX),
        }),
        IpNumber::ICMP | IpNumber::IPV6_ICMP if payload.len() >= 4 => Transport::Icmp {
            v6: protocol == ip_proto::ICMPV6,
            icmp_type: payload[0],
            code: payload[1],
            rest: &payload[4..],
        },
        _ => Transport::Other {
            protocol,
            malformed: matches!(
                IpNumber(protocol),
                IpNumber::ICMP | IpNumber::IPV6_ICMP | IpNumber::UDP
            ),
        },
    }
}

#[cfg(test)]
mod tests;
