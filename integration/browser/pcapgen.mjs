// A long, steady capture made of keepalive-1000's packets: the 1000-request connection
// is repeated every 1000/rate seconds, each copy on its own client port (so the flows
// never collide) and with its timestamps shifted. Classic pcap, microsecond timestamps.
//
//   node pcapgen.mjs OUT.pcap [--rate 5000] [--seconds 70]

import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const KEEPALIVE_PCAP = path.resolve(here, "..", "cases", "keepalive-1000", "capture.pcap");

/** Packets of a classic pcap (either byte order, µs or ns timestamps) → { linktype, packets: [{ usec, data }] }. */
export function readPcap(file) {
  const buf = readFileSync(file);
  const magicLE = buf.readUInt32LE(0);
  let le;
  let nano;
  if (magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d) {
    le = true;
    nano = magicLE === 0xa1b23c4d;
  } else if (buf.readUInt32BE(0) === 0xa1b2c3d4 || buf.readUInt32BE(0) === 0xa1b23c4d) {
    le = false;
    nano = buf.readUInt32BE(0) === 0xa1b23c4d;
  } else throw new Error(`${file}: not a classic pcap (pcapng is not supported here)`);
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linktype = u32(20);
  const packets = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    const data = buf.subarray(off + 16, off + 16 + incl);
    packets.push({ usec: sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac), data });
    off += 16 + incl;
  }
  return { linktype, packets };
}

/** Offset of the TCP header in an Ethernet/IPv4 (or raw IPv4) frame, or -1. */
function tcpOffset(data, linktype) {
  let ip;
  if (linktype === 1) {
    if (data.length < 34 || data.readUInt16BE(12) !== 0x0800) return -1;
    ip = 14;
  } else if (linktype === 101 || linktype === 228) ip = 0;
  else return -1;
  if (data[ip] >> 4 !== 4 || data[ip + 9] !== 6) return -1;
  return ip + (data[ip] & 0x0f) * 4;
}

/** One's-complement checksum update for a 16-bit field changed from `from` to `to` (RFC 1624). */
function updateChecksum(sum, from, to) {
  let s = (~sum & 0xffff) + (~from & 0xffff) + to;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/**
 * Writes `out`: `seconds` of the source capture repeated at `rate` requests/s (the
 * source holds `requestsPerCopy` requests). Copy k starts k·period after `startUsec` and
 * uses client port `basePort + k` instead of the source's. Returns what it wrote.
 */
export function buildRepeatedPcap({
  out,
  source = KEEPALIVE_PCAP,
  rate = 5000,
  seconds = 70,
  requestsPerCopy = 1000,
  serverPort = 8080,
  basePort = 20000,
  startUsec = Date.now() * 1000,
}) {
  const { linktype, packets } = readPcap(source);
  const t0 = packets[0].usec;
  const periodUsec = Math.round((requestsPerCopy / rate) * 1e6);
  const copies = Math.ceil((seconds * 1e6) / periodUsec);
  if (basePort + copies > 65535) throw new Error(`too many copies (${copies}) for distinct client ports`);

  // Client port of the source connection, and where each packet's ports are.
  const meta = packets.map((p) => {
    const t = tcpOffset(p.data, linktype);
    if (t < 0 || p.data.length < t + 18) return null;
    const sport = p.data.readUInt16BE(t);
    const dport = p.data.readUInt16BE(t + 2);
    return { t, sport, dport };
  });
  const clientPorts = new Set(meta.filter(Boolean).map((m) => (m.dport === serverPort ? m.sport : m.dport)));
  if (clientPorts.size !== 1) throw new Error(`expected one client connection in ${source}, found ports ${[...clientPorts]}`);

  // (time, copy, packet) in time order; copies overlap a little when the source is
  // longer than the period.
  const n = packets.length;
  const order = new Array(copies * n);
  for (let k = 0, i = 0; k < copies; k++) for (let j = 0; j < n; j++, i++) order[i] = i;
  const when = (i) => startUsec + Math.floor(i / n) * periodUsec + (packets[i % n].usec - t0);
  order.sort((a, b) => when(a) - when(b) || a - b);

  const fd = openSync(out, "w");
  const CHUNK = 8 << 20;
  let chunk = Buffer.alloc(CHUNK);
  let used = 0;
  let bytes = 0;
  const flush = () => {
    writeSync(fd, chunk, 0, used);
    bytes += used;
    used = 0;
  };
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeInt32LE(0, 8);
  head.writeUInt32LE(0, 12);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(linktype, 20);
  head.copy(chunk, 0);
  used = 24;
  for (const i of order) {
    const k = Math.floor(i / n);
    const p = packets[i % n];
    const m = meta[i % n];
    if (used + 16 + p.data.length > CHUNK) flush();
    const t = when(i);
    chunk.writeUInt32LE(Math.floor(t / 1e6), used);
    chunk.writeUInt32LE(t % 1e6, used + 4);
    chunk.writeUInt32LE(p.data.length, used + 8);
    chunk.writeUInt32LE(p.data.length, used + 12);
    const d = used + 16;
    p.data.copy(chunk, d);
    if (m) {
      const port = basePort + k;
      const at = m.dport === serverPort ? m.t : m.t + 2; // the client's port field
      const old = chunk.readUInt16BE(d + at);
      chunk.writeUInt16BE(port, d + at);
      const sumAt = d + m.t + 16;
      chunk.writeUInt16BE(updateChecksum(chunk.readUInt16BE(sumAt), old, port), sumAt);
    }
    used += 16 + p.data.length;
  }
  flush();
  closeSync(fd);
  return { out, copies, packets: copies * n, bytes, periodUsec, requests: copies * requestsPerCopy, startUsec };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const out = args.find((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
  if (!out) {
    console.error("usage: node pcapgen.mjs OUT.pcap [--rate 5000] [--seconds 70]");
    process.exit(2);
  }
  const t = Date.now();
  const r = buildRepeatedPcap({ out, rate: opt("rate", 5000), seconds: opt("seconds", 70) });
  console.log(`${r.out}: ${r.copies} copies, ${r.packets} packets, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${r.requests} requests at ${(1e6 * 1000) / r.periodUsec}/s, in ${Date.now() - t} ms`);
}
