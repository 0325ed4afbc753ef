//! What the live tests share: finding the real clients and servers they drive,
//! running them with a deadline, and network namespaces joined to this one by a veth
//! pair for servers the tests start themselves.
//!
//! The live tests run every time the suite runs, as root (they capture with
//! `reef_integration::live::LiveCapture`). A missing client or server fails the test
//! with the package that provides it: never a silent skip. The packages (scripts/setup
//! installs them): redis-server and redis-tools (redis-cli, redis-benchmark),
//! rabbitmq-server, mosquitto and mosquitto-clients, postgresql and
//! postgresql-contrib (pgbench), mariadb-server and mariadb-client, dnsmasq-base,
//! bind9-dnsutils (dig), iputils-ping, openssl, nghttp2-server, nghttp2-proxy and
//! nghttp2-client (nghttpd, nghttpx, nghttp, h2load), iproute2 (ip); and the Python
//! modules pika, mysql-connector-python, websockets and grpcio (scripts/test's venv,
//! `REEF_PYTHON`).
//!
//! Tests run in parallel and a capture on `lo` sees everyone's traffic: each test
//! keeps only the entries of its own server port and of the names it made unique
//! with [`unique`].

#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the capture waits for the last packets after the clients are done.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Directories searched for tools beyond `PATH` (daemons live in sbin).
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"];

/// The path of `name`, or a failure naming the Debian package to install.
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: this live test needs the package {package} \
                 (apt-get install -y {package}; scripts/setup installs it)"
            )
        })
}

/// The Python of `REEF_PYTHON` (scripts/test's venv) or `python3`, after checking it
/// can import `module`.
pub fn python_with(module: &str, install: &str) -> PathBuf {
    let py = std::env::var_os("REEF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| tool("python3", "python3"));
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python module `{module}` is missing: this live test needs it ({install})"
    );
    py
}

/// Fails unless a server listens at `addr`.
pub fn server(addr: &str, what: &str) {
    let sa = addr.parse().unwrap();
    if let Err(e) = TcpStream::connect_timeout(&sa, Duration::from_secs(2)) {
        panic!("no {what} at {addr} ({e}): this live test needs it installed and running");
    }
}

/// A name no other test run uses: `reef-live-<pid>-<tag>`.
pub fn unique(tag: &str) -> String {
    format!("reef-live-{}-{tag}", std::process::id())
}

/// Runs `cmd` to its end within `limit`, killing it past that; fails unless it exits
/// with success.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let out = run_any(cmd, limit);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` to its end within `limit`, whatever its exit status.
pub fn run_any(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    wait(child, limit, &format!("{cmd:?}"))
}

/// Waits for `child` within `limit`, killing it past that.
pub fn wait(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().unwrap(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "{what} did not finish within {limit:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// A network namespace with a veth pair: `host_if` (address `host_ip`) stays in this
/// namespace, where `LiveCapture` can open it; its peer (`peer_ip`) is inside.
/// Removed on drop.
pub struct NetNs {
    pub name: String,
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub peer_ip: Ipv4Addr,
    ip: PathBuf,
}

impl NetNs {
    /// `slot` (0 or 1) tells apart the namespaces of one test process; the pid tells
    /// apart processes. Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking),
    /// one /30 per namespace, so nothing real is shadowed.
    pub fn new(slot: u8) -> NetNs {
        let ip = tool("ip", "iproute2");
        let pid = std::process::id();
        let name = format!("reef-{pid}-{slot}");
        let host_if = format!("r{pid}x{slot}h");
        let peer_if = format!("r{pid}x{slot}n");
        let b = ((pid >> 6) & 0xff) as u8;
        let c = ((pid & 0x3f) << 2) as u8;
        let host_ip = Ipv4Addr::new(198, 18 + (slot & 1), b, c + 1);
        let peer_ip = Ipv4Addr::new(198, 18 + (slot & 1), b, c + 2);
        // Left over by a run of the same pid that was killed: start clean.
        let _ = Command::new(&ip).args(["link", "del", &host_if]).output();
        let _ = Command::new(&ip).args(["netns", "del", &name]).output();
        let ns = NetNs {
            name,
            host_if,
            host_ip,
            peer_ip,
            ip,
        };
        let host_cidr = format!("{host_ip}/30");
        let peer_cidr = format!("{peer_ip}/30");
        ns.ip(&["netns", "add", &ns.name]);
        ns.ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &peer_if,
        ]);
        ns.ip(&["link", "set", &peer_if, "netns", &ns.name]);
        ns.ip(&["addr", "add", &host_cidr, "dev", &ns.host_if]);
        ns.ip(&["link", "set", &ns.host_if, "up"]);
        ns.ip(&["-n", &ns.name, "addr", "add", &peer_cidr, "dev", &peer_if]);
        ns.ip(&["-n", &ns.name, "link", "set", &peer_if, "up"]);
        ns.ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new(&self.ip).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {} failed (the live tests need root and network namespaces): {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new(&self.ip);
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting one end of the pair deletes both.
        let _ = Command::new(&self.ip)
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A process this test started, killed on drop (a server in a namespace).
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
