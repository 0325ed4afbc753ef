//! The kernel ABI of packet sockets (include/uapi/linux/if_packet.h, filter.h) that
//! this crate uses, spelled out here rather than taken from wherever a libc version
//! happens to export it. These values are part of Linux's stable user-space ABI.

pub const SOL_PACKET: libc::c_int = 263;
pub const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
pub const PACKET_RX_RING: libc::c_int = 5;
pub const PACKET_STATISTICS: libc::c_int = 6;
pub const PACKET_VERSION: libc::c_int = 10;
pub const PACKET_FANOUT: libc::c_int = 18;

pub const TPACKET_V3: libc::c_int = 2;
pub const PACKET_FANOUT_HASH: u32 = 0;
/// Reassemble IP fragments before hashing, so that every fragment of a datagram
/// reaches the same socket.
pub const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
pub const PACKET_MR_PROMISC: libc::c_ushort = 1;

pub const TP_STATUS_KERNEL: u32 = 0;
pub const TP_STATUS_USER: u32 = 1;

pub const PACKET_OUTGOING: u8 = 4;
pub const ARPHRD_LOOPBACK: u16 = 772;

pub const SO_ATTACH_FILTER: libc::c_int = 26;
pub const ETH_P_ALL: u16 = 0x0003;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TpacketReq3 {
    pub tp_block_size: u32,
    pub tp_block_nr: u32,
    pub tp_frame_size: u32,
    pub tp_frame_nr: u32,
    pub tp_retire_blk_tov: u32,
    pub tp_sizeof_priv: u32,
    pub tp_feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TpacketStatsV3 {
    pub tp_packets: u32,
    pub tp_drops: u32,
    pub tp_freeze_q_cnt: u32,
}

/// `struct sockaddr_ll`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SockaddrLl {
    pub sll_family: u16,
    pub sll_protocol: u16,
    pub sll_ifindex: i32,
    pub sll_hatype: u16,
    pub sll_pkttype: u8,
    pub sll_halen: u8,
    pub sll_addr: [u8; 8],
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketMreq {
    pub mr_ifindex: i32,
    pub mr_type: u16,
    pub mr_alen: u16,
    pub mr_address: [u8; 8],
}

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
pub struct SockFprog {
    pub len: u16,
    pub filter: *const SockFilter,
}

// Offsets inside a TPACKET_V3 block: `struct tpacket_block_desc` with its
// `tpacket_hdr_v1`, and `struct tpacket3_hdr` with the `sockaddr_ll` after it.
pub const BLOCK_STATUS: usize = 8;
pub const BLOCK_NUM_PKTS: usize = 12;
pub const BLOCK_FIRST_PKT: usize = 16;
pub const PKT_NEXT_OFFSET: usize = 0;
pub const PKT_SEC: usize = 4;
pub const PKT_NSEC: usize = 8;
pub const PKT_SNAPLEN: usize = 12;
pub const PKT_LEN: usize = 16;
pub const PKT_NET: usize = 26;
/// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where the `sockaddr_ll` starts.
pub const PKT_SLL: usize = 48;
pub const SLL_PROTOCOL: usize = 2;
pub const SLL_IFINDEX: usize = 4;
pub const SLL_HATYPE: usize = 8;
pub const SLL_PKTTYPE: usize = 10;
