// Shared helpers of the browser test and the load run: paths, a free port, `reef local`
// as a child process, `reef dissect`, and the headless Chromium launch.

import { spawn, execFile } from "node:child_process";
import { mkdtempSync, rmSync, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The repository root (integration/browser/../..). */
export const REPO = path.resolve(here, "..", "..");
/** The reef binary: REEF_BIN, else target/debug/reef. */
export const REEF_BIN = process.env.REEF_BIN ? path.resolve(process.env.REEF_BIN) : path.join(REPO, "target", "debug", "reef");
/** The shared capture corpus: REEF_CORPUS, else ../shared/corpus next to the repository. */
export const CORPUS = path.resolve(process.env.REEF_CORPUS ?? path.join(REPO, "..", "shared", "corpus"));
/** The built dashboard served by the hub. */
export const WEB_DIST = path.join(REPO, "web", "dist");
/** Where screenshots go: REEF_ARTIFACTS, else integration/browser/artifacts. */
export const ARTIFACTS = path.resolve(process.env.REEF_ARTIFACTS ?? path.join(here, "artifacts"));
/** Chromium: CHROMIUM, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Fails early, with what to do, when something the run needs is missing. */
export function checkPrerequisites(files = []) {
  const missing = [];
  if (!existsSync(REEF_BIN)) missing.push(`${REEF_BIN} (build it: cargo build -p reef)`);
  if (!existsSync(path.join(WEB_DIST, "index.html"))) missing.push(`${WEB_DIST}/index.html (build it: cd web && npm ci && npm run build)`);
  if (!existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)`);
  for (const f of files) if (!existsSync(f)) missing.push(f);
  if (missing.length > 0) throw new Error(`missing:\n  ${missing.join("\n  ")}`);
  mkdirSync(ARTIFACTS, { recursive: true });
}

// Ctrl-C or a CI timeout: exit normally so the "exit" handlers kill the reef children.
let signalsHooked = false;
function hookSignals() {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.once(sig, () => process.exit(130));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** `reef dissect --format jsonl FILES…` → the entries. */
export async function dissect(files) {
  const { stdout } = await promisify(execFile)(REEF_BIN, ["dissect", "--format", "jsonl", ...files], {
    maxBuffer: 1 << 30,
  });
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
}

/**
 * Starts `reef local` on a free port with a fresh data dir. Resolves once it printed
 * `replay done` (or, with `waitFor: "listening"`, once the dashboard is served), with
 * `{ url, port, entries, stop(), stderr() }`. The process is killed on `stop()` and, as a
 * last resort, when this Node process exits.
 */
export async function startReef({ pcaps, extraArgs = [], waitFor = "replay", timeoutMs = 60_000 }) {
  hookSignals();
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), "reef-browser-"));
  const args = ["local", ...pcaps.flatMap((p) => ["--pcap", p]), "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir, "--web", WEB_DIST, ...extraArgs];
  const child = spawn(REEF_BIN, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } });
  let err = "";
  let out = "";
  let exited = null;
  const killNow = () => {
    if (exited === null) child.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
  process.on("exit", killNow);
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));

  const stop = async () => {
    process.off("exit", killNow);
    if (exited === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  const ready = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: `reef local did not get ready in ${timeoutMs} ms` }), timeoutMs);
    const check = () => {
      const m = /replay done, (\d+) entries/.exec(err);
      if (m && waitFor === "replay") {
        clearTimeout(timer);
        resolve({ entries: Number(m[1]) });
      } else if (waitFor === "listening" && /dashboard and API on/.test(err)) {
        clearTimeout(timer);
        resolve({ entries: null });
      }
    };
    child.stderr.on("data", check);
    child.once("exit", (code, signal) => {
      exited = code ?? signal;
      clearTimeout(timer);
      resolve({ error: `reef local exited (${exited}) before it was ready` });
    });
    check();
  });
  if (ready.error) {
    await stop();
    throw new Error(`${ready.error}\n${REEF_BIN} ${args.join(" ")}\nstderr:\n${err}\nstdout:\n${out}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    args: [REEF_BIN, ...args],
    entries: ready.entries,
    dataDir,
    stop,
    stderr: () => err,
    pid: child.pid,
  };
}

/** Debian's Chromium, headless, through playwright-core (no downloaded browser). */
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", ...extraArgs],
  });
}

/** "1,027 of 1,027 shown" → { shown: 1027, matched: 1027 } (any digit grouping). */
export function parseFeedCount(text) {
  const m = /^\s*([\d.,\s\u00a0\u202f]+?)\s+of\s+([\d.,\s\u00a0\u202f]+?)\s+shown/.exec(text ?? "");
  if (!m) return null;
  const n = (s) => Number(s.replace(/\D/g, ""));
  return { shown: n(m[1]), matched: n(m[2]) };
}
