//! One AF_PACKET socket with a TPACKET_V3 receive ring.
//!
//! The kernel fills fixed-size blocks with packets and hands a block over by setting its
//! status to TP_STATUS_USER; we read every packet of the block in place and give it
//! back. A block is handed over when full or after the retire timeout, so a quiet link
//! still delivers within milliseconds. No copy, no syscall per packet.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{Ordering, fence};

use crate::sys::{self, SockFilter};

/// Sizes of the ring of one socket.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Bytes per block; a power of two, a multiple of the page size.
    pub block_size: u32,
    pub block_count: u32,
    /// A partly filled block is handed over after this long.
    pub retire_ms: u32,
}

/// 1 MiB blocks.
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;
/// 64 blocks: 64 MiB of ring per socket, about 50 ms of a saturated 10 Gbit/s link.
pub const DEFAULT_BLOCK_COUNT: u32 = 64;
/// Partly filled blocks are handed over within 10 ms.
pub const DEFAULT_RETIRE_MS: u32 = 10;

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: DEFAULT_BLOCK_SIZE,
            block_count: DEFAULT_BLOCK_COUNT,
            retire_ms: DEFAULT_RETIRE_MS,
        }
    }
}

/// A packet as the ring holds it.
#[derive(Debug)]
pub struct RingPacket<'a> {
    /// Unix time in nanoseconds, from the kernel.
    pub ts_ns: i64,
    /// From the network header on (the socket is SOCK_DGRAM).
    pub data: &'a [u8],
    /// Length on the wire.
    pub len: u32,
    /// Ethertype.
    pub protocol: u16,
    pub ifindex: i32,
    /// PACKET_HOST, PACKET_OUTGOING...
    pub pkttype: u8,
    /// ARPHRD_* of the interface.
    pub hatype: u16,
}

pub struct Ring {
    fd: std::sync::Arc<OwnedFd>,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    blocks: usize,
    next: usize,
}

// SAFETY: the ring's memory is owned by this value alone (no other handle to the
// mapping exists), so moving it to another thread is sound.
unsafe impl Send for Ring {}

fn check(ret: libc::c_int, what: &str) -> io::Result<()> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn setsockopt<T>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: &T,
    what: &str,
) -> io::Result<()> {
    // SAFETY: `v` points to a live value of the size passed.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret, what)
}

/// The index of a network interface, by name.
pub fn interface_index(name: &str) -> io::Result<i32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name with a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {name:?} (see `ip link`)"),
        ));
    }
    Ok(idx as i32)
}

impl Ring {
    /// Opens a packet socket on `ifindex` (0 for every interface) with its ring and the
    /// given filter, joined to fanout group `fanout` if set.
    pub fn open(
        ifindex: i32,
        cfg: &RingConfig,
        filter: &[SockFilter],
        fanout: Option<u16>,
        promiscuous: bool,
    ) -> io::Result<Ring> {
        let proto = sys::ETH_P_ALL.to_be();
        // SAFETY: a plain socket(2) call; the result is checked.
        let raw =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, libc::c_int::from(proto)) };
        if raw < 0 {
            let e = io::Error::last_os_error();
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (live capture needs root or CAP_NET_RAW)"
            } else {
                ""
            };
            return Err(io::Error::new(
                e.kind(),
                format!("packet socket: {e}{hint}"),
            ));
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let f = fd.as_raw_fd();
        setsockopt(
            f,
            sys::SOL_PACKET,
            sys::PACKET_VERSION,
            &sys::TPACKET_V3,
            "PACKET_VERSION",
        )?;
        set_filter_fd(f, filter)?;
        let req = sys::TpacketReq3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: 2048,
            tp_frame_nr: cfg.block_size / 2048 * cfg.block_count,
            tp_retire_blk_tov: cfg.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(
            f,
            sys::SOL_PACKET,
            sys::PACKET_RX_RING,
            &req,
            "PACKET_RX_RING",
        )?;
        let map_len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::other(format!(
                "mmap of a {map_len}-byte ring: {}",
                io::Error::last_os_error()
            )));
        }
        let ring = Ring {
            fd: std::sync::Arc::new(fd),
            map: map.cast(),
            map_len,
            block_size: cfg.block_size as usize,
            blocks: cfg.block_count as usize,
            next: 0,
        };
        let sll = sys::SockaddrLl {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: proto,
            sll_ifindex: ifindex,
            ..sys::SockaddrLl::default()
        };
        // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
        let ret = unsafe {
            libc::bind(
                f,
                (&sll as *const sys::SockaddrLl).cast(),
                std::mem::size_of::<sys::SockaddrLl>() as libc::socklen_t,
            )
        };
        check(ret, "bind")?;
        if promiscuous && ifindex != 0 {
            let mreq = sys::PacketMreq {
                mr_ifindex: ifindex,
                mr_type: sys::PACKET_MR_PROMISC,
                ..sys::PacketMreq::default()
            };
            setsockopt(
                f,
                sys::SOL_PACKET,
                sys::PACKET_ADD_MEMBERSHIP,
                &mreq,
                "promiscuous mode",
            )?;
        }
        if let Some(group) = fanout {
            let arg: u32 =
                u32::from(group) | (sys::PACKET_FANOUT_HASH | sys::PACKET_FANOUT_FLAG_DEFRAG) << 16;
            setsockopt(
                f,
                sys::SOL_PACKET,
                sys::PACKET_FANOUT,
                &arg,
                "PACKET_FANOUT",
            )?;
        }
        Ok(ring)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The socket, shared with whoever must change its filter or read its counters
    /// while the ring is read on another thread.
    pub fn shared_fd(&self) -> std::sync::Arc<OwnedFd> {
        self.fd.clone()
    }

    /// Reads every packet of the next block if the kernel has handed it over, and gives
    /// the block back. Returns false when no block is ready.
    pub fn read_block<F: FnMut(RingPacket<'_>)>(&mut self, mut f: F) -> bool {
        // SAFETY: `next < blocks`, so the block lies inside the mapping.
        let block = unsafe { self.map.add(self.next * self.block_size) };
        // SAFETY: the status word is inside the block; the kernel writes it, hence the
        // volatile read.
        let status = unsafe { std::ptr::read_volatile(block.add(sys::BLOCK_STATUS).cast::<u32>()) };
        if status & sys::TP_STATUS_USER == 0 {
            return false;
        }
        // Everything the kernel wrote into the block happens-before we read it.
        fence(Ordering::Acquire);
        {
            // SAFETY: the block is ours until we set its status back to the kernel: the
            // kernel does not write it meanwhile.
            let b = unsafe { std::slice::from_raw_parts(block as *const u8, self.block_size) };
            read_packets(b, &mut f);
        }
        fence(Ordering::Release);
        // SAFETY: as above; handing the block back.
        unsafe {
            std::ptr::write_volatile(
                block.add(sys::BLOCK_STATUS).cast::<u32>(),
                sys::TP_STATUS_KERNEL,
            )
        };
        self.next = (self.next + 1) % self.blocks;
        true
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `open`, exactly once.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |v| u16::from_ne_bytes([v[0], v[1]]))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |v| u32::from_ne_bytes([v[0], v[1], v[2], v[3]]))
}

/// Walks the packets of one block. Offsets are checked against the block, so a
/// corrupt block cannot read outside it.
pub(crate) fn read_packets<F: FnMut(RingPacket<'_>)>(b: &[u8], f: &mut F) {
    let count = u32_at(b, sys::BLOCK_NUM_PKTS);
    let mut at = u32_at(b, sys::BLOCK_FIRST_PKT) as usize;
    for _ in 0..count {
        let Some(h) = b.get(at..) else { return };
        let snap = u32_at(h, sys::PKT_SNAPLEN) as usize;
        let net = usize::from(u16_at(h, sys::PKT_NET));
        let Some(data) = h.get(net..net + snap) else {
            return;
        };
        let sll = &h[sys::PKT_SLL.min(h.len())..];
        f(RingPacket {
            ts_ns: i64::from(u32_at(h, sys::PKT_SEC)) * 1_000_000_000
                + i64::from(u32_at(h, sys::PKT_NSEC)),
            data,
            len: u32_at(h, sys::PKT_LEN),
            protocol: u16::from_be(u16_at(sll, sys::SLL_PROTOCOL)),
            ifindex: u32_at(sll, sys::SLL_IFINDEX) as i32,
            pkttype: sll.get(sys::SLL_PKTTYPE).copied().unwrap_or(0),
            hatype: u16_at(sll, sys::SLL_HATYPE),
        });
        let next = u32_at(h, sys::PKT_NEXT_OFFSET) as usize;
        if next == 0 {
            return;
        }
        at += next;
    }
}

pub(crate) fn set_filter_fd(fd: RawFd, prog: &[SockFilter]) -> io::Result<()> {
    let fprog = sys::SockFprog {
        len: prog.len() as u16,
        filter: prog.as_ptr(),
    };
    setsockopt(
        fd,
        libc::SOL_SOCKET,
        sys::SO_ATTACH_FILTER,
        &fprog,
        "SO_ATTACH_FILTER",
    )
}

pub(crate) fn take_stats_fd(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut st = sys::TpacketStatsV3::default();
    let mut len = std::mem::size_of::<sys::TpacketStatsV3>() as libc::socklen_t;
    // SAFETY: `st` and `len` are valid for the kernel to write.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            sys::SOL_PACKET,
            sys::PACKET_STATISTICS,
            (&mut st as *mut sys::TpacketStatsV3).cast(),
            &mut len,
        )
    };
    check(ret, "PACKET_STATISTICS")?;
    Ok((u64::from(st.tp_packets), u64::from(st.tp_drops)))
}

/// Runs `f` with the calling thread in the network namespace at `path`, then puts the
/// thread back in its own. Sockets opened by `f` stay in the namespace they were opened
/// in.
pub fn in_netns<T>(path: &std::path::Path, f: impl FnOnce() -> T) -> io::Result<T> {
    let own = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| io::Error::new(e.kind(), format!("own network namespace: {e}")))?;
    let target = std::fs::File::open(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("network namespace {}: {e}", path.display()),
        )
    })?;
    // SAFETY: setns(2) on descriptors we hold open; it only changes this thread.
    let ret = unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) };
    check(ret, "entering the network namespace (needs root)")?;
    let result = f();
    // SAFETY: as above, back to the thread's own namespace.
    let back = unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) };
    check(back, "returning from the network namespace")?;
    Ok(result)
}

/// Waits until one of `fds` is readable or `timeout_ms` passes.
pub fn wait(fds: &[RawFd], timeout_ms: i32) -> io::Result<()> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of `p.len()` pollfds.
    let ret = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, timeout_ms) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
