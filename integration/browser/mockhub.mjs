// A stand-in hub for the load run (LOAD_HUB=mock): serves web/dist and the reef.v1 API
// (schemas/hub-api.md) from Node, and streams entry summaries to every live
// subscription at exactly `rate` entries/s. It measures the dashboard alone, whatever
// the speed of the reef build at hand. Entries are real: reef dissect's entries of a
// capture, repeated with fresh ids, cursors, times and client ports.
//
// Not a hub: filters are accepted and ignored, there is no history (a subscription
// starts at "now"), and `since`/`until`/`limit`/`after` are ignored.

import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";

const SUMMARY_FIELDS = [
  "id", "node", "timestamp", "elapsed_time", "protocol", "transport", "src_ip", "src_port", "dst_ip", "dst_port",
  "method", "path", "status_code", "summary", "http_version", "request_size", "response_size", "incomplete", "flags",
  "src_pod", "src_namespace", "src_service", "src_workload", "src_workload_kind", "src_process",
  "dst_pod", "dst_namespace", "dst_service", "dst_workload", "dst_workload_kind", "dst_process",
  "grpc_status", "dns_rcode", "tls_sni",
];
/** Like the hub: one `entries` message per stored batch, about this many ms apart. */
const TICK_MS = 25;
/** Like the hub's bounded client queue: past this many bytes unsent, batches are dropped
 * and reported as `lost`. */
const MAX_UNSENT_BYTES = 8 << 20;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": "application/json", ".ico": "image/x-icon", ".png": "image/png", ".woff2": "font/woff2" };

/**
 * Starts the stand-in on 127.0.0.1 (a free port). `entries`: full entries (reef dissect
 * --format jsonl) used as templates. Resolves with { url, stop(), counters }.
 */
export async function startMockHub({ entries, rate, webDist }) {
  if (entries.length === 0) throw new Error("no template entries");
  const templates = entries.map((e) => {
    const s = {};
    for (const f of SUMMARY_FIELDS) s[f] = e[f] ?? (f === "flags" ? [] : null);
    s.node = "mock";
    return s;
  });
  const counters = { generated: 0, sent: 0, lost: 0, messages: 0, bytes: 0, clients: 0 };
  const full = new Map(); // id → template index, for GET /api/entries/{id} (bounded)
  let seq = 0; // "stream sequence" of the batches generated
  const startedAt = Date.now();
  const windowCap = 200_000;

  const makeBatch = (n) => {
    seq += 1;
    const now = Date.now() * 1e6;
    const out = new Array(n);
    for (let row = 0; row < n; row++) {
      const k = counters.generated++;
      const ti = k % templates.length;
      const e = { cursor: `${seq}.${row}`, ...templates[ti] };
      e.id = `mock-${k}`;
      e.timestamp = now + row * 1000;
      e.src_port = 20000 + (Math.floor(k / templates.length) % 40000);
      out[row] = e;
      full.set(e.id, ti);
      if (full.size > windowCap) full.delete(full.keys().next().value);
    }
    return out;
  };

  // ---- HTTP ----
  const json = (res, code, body) => {
    const s = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(s) });
    res.end(s);
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    const p = url.pathname;
    if (p === "/api/stats") {
      const windowEntries = Math.min(counters.generated, windowCap);
      return json(res, 200, {
        entries_per_s: rate,
        protocols: { http: windowEntries },
        workers: [{ node: "mock", entries: counters.generated, batches: seq, kernel_drops: 0, dropped: 0, last_seen: new Date().toISOString() }],
        window: { entries: windowEntries, bytes: windowEntries * 400, max_bytes: 256 << 20, oldest: new Date(startedAt).toISOString(), newest: new Date().toISOString() },
        clients: counters.clients,
        ingesting: true,
        source: "mock hub (integration/browser/mockhub.mjs)",
      });
    }
    if (p === "/api/schema") {
      return json(res, 200, {
        version: "reef.v1",
        columns: SUMMARY_FIELDS.map((name) => ({ name, type: typeof templates[0][name] === "number" ? "integer" : "text", nullable: true, values: [] })),
      });
    }
    if (p === "/api/validate") return json(res, 200, { ok: true });
    if (p === "/api/servicemap") {
      const n = Math.min(counters.generated, windowCap);
      return json(res, 200, {
        nodes: [
          { id: "ip:10.78.0.2", name: "10.78.0.2", namespace: null, kind: "ip", requests: 0 },
          { id: "ip:10.78.0.1", name: "10.78.0.1", namespace: null, kind: "ip", requests: n },
        ],
        edges: [{ source: "ip:10.78.0.2", target: "ip:10.78.0.1", protocols: ["http"], requests: n, errors: 0, error_rate: 0, request_bytes: 0, response_bytes: 0, latency_avg_us: 80, latency_p50_us: 60, latency_p99_us: 250 }],
        entries: n,
      });
    }
    const m = /^\/api\/entries\/([^/]+)$/.exec(p);
    if (m) {
      const id = decodeURIComponent(m[1]);
      const ti = full.get(id);
      if (ti === undefined) return json(res, 404, { error: `no entry ${id} in the window` });
      return json(res, 200, { ...entries[ti], ...templates[ti], id, node: "mock" });
    }
    if (p.startsWith("/api/")) return json(res, 404, { error: `${p}: not served by the mock hub` });
    // The dashboard's files.
    let file = path.join(webDist, path.normalize(p).replace(/^(\.\.[/\\])+/, ""));
    try {
      if (!statSync(file).isFile()) file = path.join(webDist, "index.html");
    } catch {
      file = path.join(webDist, "index.html");
    }
    const body = readFileSync(file);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "content-length": body.length });
    res.end(body);
  });

  // ---- WebSocket /ws (RFC 6455, text frames only) ----
  const sockets = new Set();
  server.on("upgrade", (req, socket) => {
    if (new URL(req.url, "http://x").pathname !== "/ws") return socket.destroy();
    const key = req.headers["sec-websocket-key"];
    const accept = createHash("sha1").update(key + WS_GUID).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.setNoDelay(true);
    counters.clients++;
    const conn = { socket, sub: 0, live: null, paused: false, seen: 0, matched: 0, lostUnreported: 0, timer: null, statsTimer: null, due: 0, t0: 0 };
    sockets.add(conn);

    const frame = (opcode, payload) => {
      const len = payload.length;
      const head = len < 126 ? Buffer.alloc(2) : len <= 0xffff ? Buffer.alloc(4) : Buffer.alloc(10);
      head[0] = 0x80 | opcode;
      if (len < 126) head[1] = len;
      else if (len <= 0xffff) {
        head[1] = 126;
        head.writeUInt16BE(len, 2);
      } else {
        head[1] = 127;
        head.writeBigUInt64BE(BigInt(len), 2);
      }
      socket.write(Buffer.concat([head, payload]));
    };
    const send = (msg) => {
      const b = Buffer.from(JSON.stringify(msg));
      counters.messages++;
      counters.bytes += b.length;
      frame(0x1, b);
    };

    const stopStream = () => {
      clearInterval(conn.timer);
      clearInterval(conn.statsTimer);
      conn.timer = conn.statsTimer = null;
    };
    const startStream = () => {
      stopStream();
      conn.t0 = Date.now();
      conn.due = 0;
      conn.timer = setInterval(() => {
        if (conn.paused) return;
        const want = Math.floor(((Date.now() - conn.t0) / 1000) * rate) - conn.due;
        if (want <= 0) return;
        conn.due += want;
        for (let left = want; left > 0; ) {
          const n = Math.min(left, 1000);
          left -= n;
          const batch = makeBatch(n);
          conn.seen += n;
          conn.matched += n;
          if (socket.writableLength > MAX_UNSENT_BYTES) {
            conn.lostUnreported += n;
            counters.lost += n;
            continue;
          }
          counters.sent += n;
          send({ type: "entries", sub: conn.sub, entries: batch, cursor: batch[batch.length - 1].cursor });
        }
      }, TICK_MS);
      conn.statsTimer = setInterval(() => {
        if (conn.lostUnreported > 0 && socket.writableLength <= MAX_UNSENT_BYTES) {
          send({ type: "lost", sub: conn.sub, count: conn.lostUnreported, reason: "slow client: its queue was full, so these entries were dropped" });
          conn.lostUnreported = 0;
        }
        send({ type: "stats", sub: conn.sub, seen: conn.seen, matched: conn.matched, lag_ms: 0, paused: conn.paused });
      }, 1000);
    };

    const onText = (text) => {
      let msg;
      try {
        msg = JSON.parse(text);
      } catch {
        return send({ type: "error", message: "not JSON", position: null });
      }
      if (msg.type === "subscribe") {
        conn.sub += 1;
        conn.seen = conn.matched = 0;
        conn.paused = false;
        send({ type: "subscribed", sub: conn.sub, filter: msg.filter ?? "", since: new Date().toISOString(), until: null, limit: null });
        startStream();
      } else if (msg.type === "pause") conn.paused = true;
      else if (msg.type === "resume") {
        conn.paused = false;
        conn.t0 = Date.now() - (conn.due / rate) * 1000;
      }
    };

    let buf = Buffer.alloc(0);
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 0x0f;
        const masked = (buf[1] & 0x80) !== 0;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const maskAt = off;
        if (masked) off += 4;
        if (buf.length < off + len) return;
        const payload = Buffer.from(buf.subarray(off, off + len));
        if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskAt + (i % 4)];
        buf = buf.subarray(off + len);
        if (opcode === 0x1) onText(payload.toString("utf8"));
        else if (opcode === 0x8) {
          frame(0x8, Buffer.alloc(0));
          socket.end();
        } else if (opcode === 0x9) frame(0xa, payload);
      }
    });
    const gone = () => {
      if (!sockets.has(conn)) return;
      stopStream();
      sockets.delete(conn);
      counters.clients--;
    };
    socket.on("close", gone);
    socket.on("error", gone);
  });

  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    counters,
    stop: () =>
      new Promise((r) => {
        for (const c of sockets) c.socket.destroy();
        server.close(() => r());
      }),
  };
}
