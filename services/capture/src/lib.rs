//! Live capture with AF_PACKET: a TPACKET_V3 ring per socket, flow-hashed fanout over
//! several threads (both directions of a connection land on the same thread), a kernel
//! BPF filter that can change at runtime, and the kernel's own drop counts.
//!
//! The `afpacket` crate reads one packet per `read()` with no ring and no fanout; on
//! this machine it dropped 19 % of TCP packets at 1.3 GB/s where a TPACKET_V3 ring
//! dropped none (DESIGN §8). So this crate drives the ring through libc directly; the
//! unsafe code is confined to `ring.rs`, each block with its reason.
#![allow(unsafe_code)]

pub mod bpf;
mod ring;
mod sys;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use bpf::{FilterError, FilterSpec};
pub use ring::{RingConfig, RingPacket, interface_index, wait};

/// What to capture and how.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Interface names; empty or `any` captures every interface of the namespace.
    pub interfaces: Vec<String>,
    /// Capture threads; the kernel spreads flows over them by a symmetric hash.
    pub threads: usize,
    pub promiscuous: bool,
    pub ring: RingConfig,
    pub filter: FilterSpec,
    /// Open the sockets in this network namespace (a path such as
    /// `/var/run/netns/NAME` or `/proc/PID/ns/net`); they keep capturing there.
    pub netns: Option<std::path::PathBuf>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            interfaces: Vec::new(),
            threads: 1,
            promiscuous: false,
            ring: RingConfig::default(),
            filter: FilterSpec::default(),
            netns: None,
        }
    }
}

/// The sockets of one capture thread.
pub struct Source {
    rings: Vec<ring::Ring>,
    fds: Vec<RawFd>,
}

impl Source {
    /// Waits up to `timeout_ms` for packets and hands every packet of the ready blocks
    /// to `f`. A packet on a loopback device is seen twice by a packet socket (going
    /// out and coming in); the outgoing copy is skipped. Returns the packets handed on.
    pub fn poll<F: FnMut(RingPacket<'_>)>(&mut self, timeout_ms: i32, mut f: F) -> io::Result<u64> {
        let mut n = 0;
        let mut any = false;
        for r in &mut self.rings {
            while r.read_block(|p| {
                if p.pkttype == sys::PACKET_OUTGOING && p.hatype == sys::ARPHRD_LOOPBACK {
                    return;
                }
                n += 1;
                f(p)
            }) {
                any = true;
            }
        }
        if !any {
            ring::wait(&self.fds, timeout_ms)?;
        }
        Ok(n)
    }
}

/// Shared control over every socket of a capture: filters and kernel counters.
pub struct Control {
    fds: Vec<Arc<OwnedFd>>,
    spec: Mutex<FilterSpec>,
    received: AtomicU64,
    dropped: AtomicU64,
}

impl Control {
    /// Replaces the capture targets on every socket; an empty list captures everything.
    pub fn set_targets(&self, targets: Vec<std::net::IpAddr>) -> Result<(), CaptureError> {
        let mut spec = self.spec.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = spec.clone();
        next.targets = targets;
        let prog = bpf::compile(&next)?;
        for fd in &self.fds {
            ring::set_filter_fd(fd.as_raw_fd(), &prog)?;
        }
        *spec = next;
        Ok(())
    }

    pub fn targets(&self) -> Vec<std::net::IpAddr> {
        self.spec
            .lock()
            .map(|s| s.targets.clone())
            .unwrap_or_default()
    }

    /// Packets the kernel received and dropped (ring full) on every socket so far.
    pub fn kernel_counts(&self) -> io::Result<(u64, u64)> {
        for fd in &self.fds {
            let (p, d) = ring::take_stats_fd(fd.as_raw_fd())?;
            self.received.fetch_add(p, Ordering::Relaxed);
            self.dropped.fetch_add(d, Ordering::Relaxed);
        }
        Ok((
            self.received.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        ))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Filter(#[from] FilterError),
}

/// Opens every socket: one per interface and thread, the threads of an interface
/// joined in one fanout group.
pub fn open(cfg: &CaptureConfig) -> Result<(Vec<Source>, Arc<Control>), CaptureError> {
    match &cfg.netns {
        Some(ns) => ring::in_netns(ns, || open_here(cfg))?,
        None => open_here(cfg),
    }
}

fn open_here(cfg: &CaptureConfig) -> Result<(Vec<Source>, Arc<Control>), CaptureError> {
    let prog = bpf::compile(&cfg.filter)?;
    let any = cfg.interfaces.is_empty() || cfg.interfaces.iter().any(|i| i == "any");
    let ifindexes: Vec<i32> = if any {
        vec![0]
    } else {
        cfg.interfaces
            .iter()
            .map(|i| interface_index(i))
            .collect::<io::Result<_>>()?
    };
    let threads = cfg.threads.max(1);
    let mut sources: Vec<Source> = (0..threads)
        .map(|_| Source {
            rings: Vec::new(),
            fds: Vec::new(),
        })
        .collect();
    let mut fds = Vec::new();
    // Fanout groups are per device and global to the network namespace: derive them
    // from the process id so that two workers never share one by accident.
    let base = (std::process::id() as u16).wrapping_mul(7);
    for (n, &ifindex) in ifindexes.iter().enumerate() {
        let group = (threads > 1).then(|| base.wrapping_add(n as u16));
        for s in &mut sources {
            let r = ring::Ring::open(ifindex, &cfg.ring, &prog, group, cfg.promiscuous)?;
            s.fds.push(r.fd());
            fds.push(r.shared_fd());
            s.rings.push(r);
        }
    }
    let control = Control {
        fds,
        spec: Mutex::new(cfg.filter.clone()),
        received: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    };
    Ok((sources, Arc::new(control)))
}
