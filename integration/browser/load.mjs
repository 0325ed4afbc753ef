// The 60-second load run (numbers for the issue, not a CI test): `reef local` replays a
// capture at a steady ~5000 entries/s (--speed realtime) while headless Chromium keeps
// the live dashboard open. Reports the entries/s the page received, long tasks after the
// warm-up, the JS heap and DOM size over time, and a click-to-detail probe under load.
//
//   cd integration/browser && npm ci && node load.mjs
//
// Environment: LOAD_RATE (entries/s, default 5000), LOAD_SECONDS (measured seconds after
// the page opened, default 60), LOAD_WARMUP (s, default 10), LOAD_SAMPLE (s, default 5),
// LOAD_LONGTASK_MS (the limit, default 200), LOAD_HEAP_GROWTH (the live heap after a
// forced GC at the end may be at most this × the heap peak of the first third after the
// warm-up, default 1.3), LOAD_HUB (reef or mock, see below), plus REEF_BIN,
// CHROMIUM, REEF_ARTIFACTS as for dashboard.test.mjs. Writes load-report.json and
// load.png to the artifacts directory. Exits 1 when a criterion fails.

import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { ARTIFACTS, REEF_BIN, WEB_DIST, checkPrerequisites, dissect, launchChromium, parseFeedCount, startReef } from "./lib.mjs";
import { startMockHub } from "./mockhub.mjs";
import { KEEPALIVE_PCAP, buildRepeatedPcap } from "./pcapgen.mjs";

const num = (name, dflt) => (process.env[name] !== undefined ? Number(process.env[name]) : dflt);
const RATE = num("LOAD_RATE", 5000);
const SECONDS = num("LOAD_SECONDS", 60);
const WARMUP = num("LOAD_WARMUP", 10);
const SAMPLE = num("LOAD_SAMPLE", 5);
const LONGTASK_MS = num("LOAD_LONGTASK_MS", 200);
const HEAP_GROWTH = num("LOAD_HEAP_GROWTH", 1.3);
/** reef: `reef local --speed realtime` on a generated capture; mock: mockhub.mjs streams
 * reef dissect's entries at exactly LOAD_RATE (the dashboard alone, whatever the build). */
const HUB = process.env.LOAD_HUB ?? "reef";
// The capture outlasts the measurement: the page opens a little after the replay starts.
const CAPTURE_SECONDS = SECONDS + 15;

const MB = 2 ** 20;
const t0 = Date.now();
const log = (msg) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Runs in the page before the app: long tasks, event-loop stalls and what the WebSocket
// delivered (entries counted by their "cursor" keys, no parsing).
function pageProbe() {
  const w = window;
  w.__load = { longtasks: [], wsFrames: 0, wsBytes: 0, wsEntries: 0, maxTimerLagMs: 0, timerLags: [] };
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__load.longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {
    w.__load.longtaskError = String(e);
  }
  // Event Timing: how long real input (the probes' clicks and keys) took to be handled
  // and painted.
  w.__load.events = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        w.__load.events.push({ name: e.name, start: e.startTime, duration: e.duration, delay: e.processingStart - e.startTime, processing: e.processingEnd - e.processingStart });
    }).observe({ type: "event", durationThreshold: 16, buffered: true });
  } catch (e) {
    w.__load.eventError = String(e);
  }
  // A 100 ms timer: how late it fires is the input delay a user would feel.
  let expected = performance.now() + 100;
  setInterval(() => {
    const now = performance.now();
    const lag = now - expected;
    if (lag > 50) w.__load.timerLags.push({ at: now, lag });
    if (lag > w.__load.maxTimerLagMs) w.__load.maxTimerLagMs = lag;
    expected = now + 100;
  }, 100);
  const Orig = w.WebSocket;
  w.WebSocket = class extends Orig {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (ev) => {
        const s = typeof ev.data === "string" ? ev.data : "";
        w.__load.wsFrames++;
        w.__load.wsBytes += s.length;
        if (s.includes('"type":"entries"')) {
          let n = 0;
          for (let i = s.indexOf('"cursor":'); i >= 0; i = s.indexOf('"cursor":', i + 9)) n++;
          w.__load.wsEntries += Math.max(0, n - 1); // one per entry, plus the batch's own
        }
      });
    }
  };
}

async function main() {
  checkPrerequisites();
  const loadAtStart = loadavg().map((x) => Number(x.toFixed(2)));
  log(`machine: ${cpus().length} CPUs, load average ${loadAtStart.join(" ")}${loadAtStart[0] > cpus().length / 2 ? " (busy: the figures will be noisy)" : ""}`);
  const tmp = mkdtempSync(path.join(tmpdir(), "reef-load-"));
  let reef;
  let browser;
  try {
    let gen = null;
    if (HUB === "mock") {
      const entries = await dissect([KEEPALIVE_PCAP]);
      const mock = await startMockHub({ entries, rate: RATE, webDist: WEB_DIST });
      reef = { url: mock.url, stop: mock.stop, stderr: () => JSON.stringify(mock.counters), mock };
      log(`hub: MOCK (mockhub.mjs) on ${mock.url}: ${entries.length} entries of keepalive-1000 from reef dissect, streamed at ${RATE}/s`);
    } else if (HUB === "reef") {
      const big = path.join(tmp, "big.pcap");
      gen = buildRepeatedPcap({ out: big, rate: RATE, seconds: CAPTURE_SECONDS });
      log(`capture: ${gen.requests} requests (${gen.copies} copies of keepalive-1000, one every ${gen.periodUsec / 1000} ms: ${RATE}/s for ${CAPTURE_SECONDS} s), ${gen.packets} packets, ${(gen.bytes / MB).toFixed(0)} MiB`);
      reef = await startReef({ pcaps: [big], extraArgs: ["--speed", "realtime"], waitFor: "listening" });
      log(`hub: ${reef.args.join(" ")}`);
      log(`hub build: ${REEF_BIN}${/\/debug\//.test(REEF_BIN) ? " (DEBUG build: the hub, worker and correlator are unoptimized)" : ""}`);
    } else throw new Error(`LOAD_HUB=${HUB}: reef or mock`);
    const replayDoneAt = () => {
      const m = /replay done, (\d+) entries/.exec(reef.stderr());
      return m ? Number(m[1]) : null;
    };

    browser = await launchChromium();
    const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US" });
    await ctx.addInitScript(pageProbe);
    const page = await ctx.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`console.error: ${m.text()}`);
    });
    const cdp = await ctx.newCDPSession(page);
    await cdp.send("Performance.enable");
    const opened = Date.now();
    await page.goto(reef.url, { waitUntil: "domcontentloaded" });
    log(`chromium ${browser.version()} opened ${reef.url} (live)`);

    const samples = [];
    const sample = async () => {
      const t = (Date.now() - opened) / 1000;
      const slow = []; // parts of this sample that took over a second
      const timed = async (what, f) => {
        const t1 = Date.now();
        try {
          return await f();
        } finally {
          if (Date.now() - t1 > 1000) slow.push(`${what} ${Date.now() - t1} ms`);
        }
      };
      const { metrics } = await timed("CDP Performance.getMetrics", () => cdp.send("Performance.getMetrics"));
      const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
      const p = await timed("page.evaluate", () => page.evaluate(() => ({
        pageT: performance.now(),
        count: document.querySelector('[data-testid="feed-count"]')?.textContent ?? "",
        lost: document.querySelector('[data-testid="lost-count"]')?.textContent ?? "",
        rows: document.querySelectorAll('[data-testid="entry-row"]').length,
        elements: document.getElementsByTagName("*").length,
        usedJSHeap: performance.memory?.usedJSHeapSize ?? null,
        ws: { frames: window.__load.wsFrames, bytes: window.__load.wsBytes, entries: window.__load.wsEntries },
        longtasks: window.__load.longtasks.length,
        maxTimerLagMs: window.__load.maxTimerLagMs,
      })));
      let hub = null;
      try {
        hub = await timed("GET /api/stats", async () => (await fetch(`${reef.url}/api/stats`, { signal: AbortSignal.timeout(30_000) })).json());
      } catch {}
      const c = parseFeedCount(p.count) ?? { shown: null, matched: null };
      const s = {
        t: Number(t.toFixed(1)),
        pageS: Number((p.pageT / 1000).toFixed(2)),
        heapMB: Number((m.JSHeapUsedSize / MB).toFixed(1)),
        heapTotalMB: Number((m.JSHeapTotalSize / MB).toFixed(1)),
        domNodes: m.Nodes,
        elements: p.elements,
        rows: p.rows,
        shown: c.shown,
        matched: c.matched,
        lost: Number((p.lost.match(/^[\d,]+/)?.[0] ?? "0").replace(/,/g, "")),
        wsEntries: p.ws.entries,
        wsMB: Number((p.ws.bytes / MB).toFixed(1)),
        hubEntriesPerS: hub?.entries_per_s ?? null,
        hubWindowEntries: hub?.window?.entries ?? null,
        longtasks: p.longtasks,
        scriptS: Number(m.ScriptDuration.toFixed(2)),
        taskS: Number(m.TaskDuration.toFixed(2)),
        layouts: m.LayoutCount,
      };
      if (HUB === "reef") {
        s.replayDone = replayDoneAt();
        // What the replay has stored on the local bus so far (the hub reads it from there).
        try {
          s.busMB = Number((readdirSync(reef.dataDir).reduce((a, f) => a + statSync(path.join(reef.dataDir, f)).size, 0) / MB).toFixed(1));
        } catch {}
      }
      if (slow.length > 0) s.slow = slow;
      const prev = samples[samples.length - 1];
      s.recvPerS = prev && s.t > prev.t ? Math.round((s.wsEntries - prev.wsEntries) / (s.t - prev.t)) : null;
      samples.push(s);
      log(
        `t=${String(s.t).padStart(5)}s  recv ${String(s.recvPerS ?? "-").padStart(5)}/s  hub ${String(s.hubEntriesPerS ?? "-").padStart(7)}/s  ` +
          `feed "${p.count}"  lost ${s.lost}  heap ${s.heapMB} MB  DOM ${s.domNodes} nodes (${s.elements} elements, ${s.rows} rows)  ` +
          `longtasks ${s.longtasks}  cpu(script) ${s.scriptS}s${s.slow ? `  SLOW SAMPLE: ${s.slow.join(", ")}` : ""}${s.busMB !== undefined ? `  bus ${s.busMB} MB${s.replayDone !== null ? ` (replay done: ${s.replayDone})` : ""}` : ""}`,
      );
    };

    for (let next = SAMPLE; next <= SECONDS; next += SAMPLE) {
      const wait = opened + next * 1000 - Date.now();
      if (wait < -SAMPLE * 1000) continue; // a slow sample overran this slot
      if (wait > 0) await sleep(wait);
      await sample();
    }

    // Under load still: real input. A click in the middle of the feed (whatever row is
    // there: the list follows the newest), timed until the detail pane shows the headers
    // fetched from the hub; then typing a filter (not applied).
    const probes = { clickToPaneMs: null, clickToHeadersMs: null, typing: null };
    const probeStart = await page.evaluate(() => performance.now());
    try {
      const box = await page.getByTestId("feed-scroll").boundingBox();
      const c0 = Date.now();
      await page.mouse.click(box.x + box.width / 3, box.y + box.height / 2);
      await page.getByTestId("entry-detail").waitFor({ state: "visible", timeout: 10_000 });
      probes.clickToPaneMs = Date.now() - c0;
      await page.getByTestId("entry-detail").locator("table.headers").first().waitFor({ state: "visible", timeout: 10_000 });
      probes.clickToHeadersMs = Date.now() - c0;
      log(`click on a row → detail pane in ${probes.clickToPaneMs} ms, with the headers from the hub in ${probes.clickToHeadersMs} ms (under load)`);
      await page.screenshot({ path: path.join(ARTIFACTS, "load.png") });
      await page.keyboard.press("Escape");
      const input = page.getByTestId("filter-input");
      await input.click();
      const k0 = Date.now();
      await page.keyboard.type("status_code >= 400", { delay: 30 });
      probes.typing = { chars: 18, ms: Date.now() - k0, value: await input.inputValue() };
      await input.fill("");
      await page.keyboard.press("Escape");
    } catch (e) {
      log(`input probe failed: ${e.message.split("\n")[0]}`);
    }

    const probe = await page.evaluate(() => window.__load);
    await cdp.send("HeapProfiler.enable");
    await cdp.send("HeapProfiler.collectGarbage");
    const { metrics: after } = await cdp.send("Performance.getMetrics");
    const heapAfterGcMB = Number((after.find((x) => x.name === "JSHeapUsedSize").value / MB).toFixed(1));
    const nodesAfterGc = after.find((x) => x.name === "Nodes").value;
    const inputEvents = probe.events.filter((e) => e.start >= probeStart);
    const worstEvent = inputEvents.reduce((a, e) => (a && a.duration >= e.duration ? a : e), null);
    const hubStderr = reef.stderr();
    const replayDone = HUB === "reef" ? replayDoneAt() : null;
    const mockCounters = reef.mock ? { ...reef.mock.counters } : null;
    await browser.close();
    browser = null;
    await reef.stop();
    reef = null;

    // ---- figures ----
    const warmupMs = WARMUP * 1000;
    const lt = probe.longtasks.filter((x) => x.start >= warmupMs);
    const over = lt.filter((x) => x.duration > LONGTASK_MS);
    const maxLt = lt.reduce((a, x) => Math.max(a, x.duration), 0);
    const afterWarm = samples.filter((s) => s.t >= WARMUP);
    const first = afterWarm[0];
    const last = afterWarm[afterWarm.length - 1];
    const recvRate = (last.wsEntries - first.wsEntries) / (last.t - first.t);
    const matchedRate = (last.matched - first.matched) / (last.t - first.t);
    const heaps = afterWarm.map((s) => s.heapMB);
    const third = Math.max(1, Math.floor(afterWarm.length / 3));
    const early = Math.max(...heaps.slice(0, third));
    const late = Math.max(...heaps.slice(-third));
    const hubRates = afterWarm.map((s) => s.hubEntriesPerS).filter((x) => x !== null);
    const timerLagsAfterWarm = probe.timerLags.filter((x) => x.at >= warmupMs);

    const report = {
      command: `cd integration/browser && LOAD_HUB=${HUB} LOAD_RATE=${RATE} LOAD_SECONDS=${SECONDS} LOAD_WARMUP=${WARMUP} node load.mjs`,
      hub:
        HUB === "mock"
          ? { kind: "mock", what: "integration/browser/mockhub.mjs: web/dist + reef.v1 API, entries of keepalive-1000 (reef dissect) streamed at the rate", counters: mockCounters }
          : { kind: "reef local", binary: REEF_BIN, debugBuild: /\/debug\//.test(REEF_BIN), args: "local --pcap big.pcap --speed realtime --listen 127.0.0.1:PORT --data-dir TMP --web web/dist", replayDoneEntries: replayDone },
      chromium: "headless, --no-sandbox --disable-gpu --disable-background-networking",
      machine: { cpus: cpus().length, loadavgAtStart: loadAtStart, loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))) },
      capture: gen && { rate: RATE, seconds: CAPTURE_SECONDS, requests: gen.requests, packets: gen.packets, MiB: Number((gen.bytes / MB).toFixed(1)) },
      measured: { seconds: SECONDS, warmup: WARMUP },
      received: {
        entriesPerS: Math.round(recvRate),
        matchedPerS: Math.round(matchedRate),
        hubIngestPerS: { min: Math.min(...hubRates), max: Math.max(...hubRates), mean: Math.round(hubRates.reduce((a, b) => a + b, 0) / hubRates.length) },
        totalEntries: last.wsEntries,
        lost: last.lost,
      },
      longTasks: {
        afterWarmup: lt.length,
        overLimit: over.length,
        limitMs: LONGTASK_MS,
        maxMs: Math.round(maxLt),
        over50: lt.filter((x) => x.duration > 50).length,
        over100: lt.filter((x) => x.duration > 100).length,
        duringWarmup: probe.longtasks.length - lt.length,
        maxDuringWarmupMs: Math.round(probe.longtasks.filter((x) => x.start < warmupMs).reduce((a, x) => Math.max(a, x.duration), 0)),
        observerError: probe.longtaskError ?? null,
        over100List: lt.filter((x) => x.duration > 100).map((x) => ({ atS: Number((x.start / 1000).toFixed(2)), ms: Math.round(x.duration) })),
      },
      timerLag: { maxMsAfterWarmup: Math.round(timerLagsAfterWarm.reduce((a, x) => Math.max(a, x.lag), 0)), over50msAfterWarmup: timerLagsAfterWarm.length },
      heapMB: { min: Math.min(...heaps), max: Math.max(...heaps), last: heaps[heaps.length - 1], peakFirstThird: early, peakLastThird: late, afterGc: heapAfterGcMB },
      dom: {
        nodesMin: Math.min(...afterWarm.map((s) => s.domNodes)),
        nodesMax: Math.max(...afterWarm.map((s) => s.domNodes)),
        nodesAfterGc,
        elementsMax: Math.max(...afterWarm.map((s) => s.elements)),
        rowsMax: Math.max(...afterWarm.map((s) => s.rows)),
      },
      input: {
        ...probes,
        events: inputEvents.length,
        worstEvent: worstEvent && { name: worstEvent.name, durationMs: Math.round(worstEvent.duration), delayMs: Math.round(worstEvent.delay), processingMs: Math.round(worstEvent.processing) },
        eventObserverError: probe.eventError ?? null,
      },
      pageErrors,
      samples,
      hubStderrTail: hubStderr.split("\n").slice(-8).join("\n"),
    };
    writeFileSync(path.join(ARTIFACTS, "load-report.json"), JSON.stringify(report, null, 2));

    const checks = [
      [over.length === 0, `long tasks > ${LONGTASK_MS} ms after the ${WARMUP} s warm-up: ${over.length} (max long task ${Math.round(maxLt)} ms, ${lt.length} long tasks > 50 ms)`],
      [
        heapAfterGcMB <= early * HEAP_GROWTH,
        `heap bounded: ${heapAfterGcMB} MB live after a forced GC at the end vs a peak of ${early} MB in the first third after warm-up (limit ×${HEAP_GROWTH}); samples min ${report.heapMB.min} / max ${report.heapMB.max} / last ${report.heapMB.last} MB (peak ${late} MB in the last third)`,
      ],
      [report.dom.elementsMax < 5000, `DOM bounded: at most ${report.dom.elementsMax} elements in the document, ${report.dom.rowsMax} rows (CDP node count ${report.dom.nodesMin}–${report.dom.nodesMax} incl. detached nodes awaiting GC; ${nodesAfterGc} after GC)`],
      [recvRate >= RATE * 0.9, `load delivered: the page received ${Math.round(recvRate)} entries/s after the warm-up (target ${RATE}/s, at least 90 %)`],
      [pageErrors.length === 0, `page errors: ${pageErrors.length}${pageErrors.length ? `: ${pageErrors.slice(0, 3).join(" | ")}` : ""}`],
    ];
    console.log("");
    console.log(`received by the page: ${report.received.entriesPerS} entries/s (hub matched ${report.received.matchedPerS}/s; hub ingest ${report.received.hubIngestPerS.min}–${report.received.hubIngestPerS.max}/s, mean ${report.received.hubIngestPerS.mean}); ${report.received.totalEntries} entries in total, ${report.received.lost} lost`);
    console.log(`timer lag (100 ms interval) after warm-up: max ${report.timerLag.maxMsAfterWarmup} ms`);
    console.log(`input under load: click → detail pane ${probes.clickToPaneMs ?? "n/a"} ms, → headers ${probes.clickToHeadersMs ?? "n/a"} ms; typing 18 chars ${probes.typing?.ms ?? "n/a"} ms (30 ms/key); worst input event ${report.input.worstEvent ? `${report.input.worstEvent.name} ${report.input.worstEvent.durationMs} ms (delay ${report.input.worstEvent.delayMs}, processing ${report.input.worstEvent.processingMs})` : "none over 16 ms"}`);
    for (const [ok, what] of checks) console.log(`${ok ? "PASS" : "FAIL"}  ${what}`);
    console.log(`report: ${path.join(ARTIFACTS, "load-report.json")}`);
    process.exitCode = checks.every(([ok]) => ok) ? 0 : 1;
  } finally {
    await browser?.close().catch(() => {});
    await reef?.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
