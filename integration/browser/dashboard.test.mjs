// The dashboard in a real browser: `reef local` replays two captures, headless Chromium
// (Debian's, through playwright-core) opens the dashboard, and every check is made
// against what `reef dissect` finds in the same files.
//
//   cd integration/browser && npm ci && node dashboard.test.mjs
//
// Needs target/debug/reef (REEF_BIN), web/dist, /usr/bin/chromium (CHROMIUM) and the
// corpus (REEF_CORPUS, default ../shared/corpus). Screenshots go to artifacts/
// (REEF_ARTIFACTS). Exits non-zero when a check fails.

import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  ARTIFACTS,
  CORPUS,
  REPO,
  checkPrerequisites,
  dissect,
  launchChromium,
  parseFeedCount,
  startReef,
} from "./lib.mjs";

const PCAPS = [
  path.join(REPO, "integration", "cases", "keepalive-1000", "capture.pcap"),
  path.join(CORPUS, "http_zeek_methods.pcap"),
];
const ERROR_FILTER = "status_code >= 400";
const BAD_FILTER = "stauts_code = 1";
const WAIT_MS = 15_000;

let reef;
let browser;
let page;
let expected; // entries from reef dissect
const pageErrors = [];
const started = Date.now();

const log = (msg) => console.log(`  [${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
const rowKey = (method, target, status) => `${method} ${target} ${status}`;
/** The feed row's status cell for an HTTP entry, as web/src/format.ts statusText writes it. */
function statusText(e) {
  if (e.status_code !== null && e.status_code !== undefined) return String(e.status_code);
  if (e.flags?.includes("no_response")) return "no resp";
  if (e.flags?.includes("timeout")) return "timeout";
  return "—";
}
/** The feed row's method, target and status for an entry (web/src/components/Feed.tsx). */
const entryKey = (e) => rowKey(e.method ?? "", e.path || e.summary || "", statusText(e));
const isError = (e) => typeof e.status_code === "number" && e.status_code >= 400;

function multiset(keys) {
  const m = new Map();
  for (const k of keys) m.set(k, (m.get(k) ?? 0) + 1);
  return m;
}

/** Differences between two multisets, for a readable assertion message. */
function multisetDiff(want, got) {
  const out = [];
  for (const [k, n] of want) if ((got.get(k) ?? 0) !== n) out.push(`${k}: want ${n}, got ${got.get(k) ?? 0}`);
  for (const [k, n] of got) if (!want.has(k)) out.push(`${k}: want 0, got ${n}`);
  return out.slice(0, 20).join("\n");
}

async function feedCount() {
  return parseFeedCount(await page.getByTestId("feed-count").textContent());
}

/** Waits until the counter reads "n of n shown". */
async function waitForCount(n) {
  try {
    await page.waitForFunction(
      (want) => {
        const t = document.querySelector('[data-testid="feed-count"]')?.textContent ?? "";
        const m = /^\s*(\S+)\s+of\s+(\S+)\s+shown/.exec(t);
        return !!m && Number(m[1].replace(/\D/g, "")) === want && Number(m[2].replace(/\D/g, "")) === want;
      },
      n,
      { timeout: WAIT_MS, polling: 100 },
    );
  } catch {
    assert.fail(`feed-count did not reach "${n} of ${n} shown" in ${WAIT_MS} ms: it reads ${JSON.stringify(await page.getByTestId("feed-count").textContent())}`);
  }
}

/**
 * Scrolls the virtual list from top to bottom and returns every distinct row it rendered
 * (by data-id), with the text of its method, path and status cells.
 */
async function collectRows() {
  return page.evaluate(async () => {
    const sc = document.querySelector('[data-testid="feed-scroll"]');
    const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0))));
    const seen = new Map();
    const grab = () => {
      for (const row of sc.querySelectorAll('[data-testid="entry-row"]')) {
        const id = row.getAttribute("data-id");
        if (seen.has(id)) continue;
        const cell = (c) => row.querySelector(c)?.textContent ?? "";
        seen.set(id, { id, method: cell(".c-method"), target: cell(".c-path"), status: cell(".c-status") });
      }
    };
    sc.scrollTop = 0;
    await frames();
    grab();
    const step = Math.max(26, sc.clientHeight - 52);
    for (let i = 0; i < 100_000; i++) {
      const before = sc.scrollTop;
      if (before + sc.clientHeight >= sc.scrollHeight - 1) break;
      sc.scrollTop = before + step;
      await frames();
      grab();
      if (sc.scrollTop === before) break;
    }
    return { rows: [...seen.values()], scrollHeight: sc.scrollHeight };
  });
}

async function applyFilter(text) {
  const input = page.getByTestId("filter-input");
  await input.fill(text);
  await input.press("Enter");
}

before(async () => {
  checkPrerequisites(PCAPS);
  expected = await dissect(PCAPS);
  log(`reef dissect: ${expected.length} entries, ${expected.filter(isError).length} with status_code >= 400`);
  reef = await startReef({ pcaps: PCAPS });
  log(`reef local on ${reef.url}: replay done, ${reef.entries} entries`);
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: "en-US" });
  page = await ctx.newPage();
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console.error: ${m.text()}`);
  });
  await page.goto(reef.url, { waitUntil: "domcontentloaded" });
  log(`chromium ${browser.version()} opened the dashboard`);
});

after(async () => {
  await browser?.close().catch(() => {});
  await reef?.stop();
  log("reef local stopped");
});

test("the hub stored every entry reef dissect finds", () => {
  assert.ok(expected.length > 1000, `dissect found only ${expected.length} entries`);
  assert.equal(reef.entries, expected.length, "reef local's `replay done, N entries` vs reef dissect");
});

test("the feed shows every entry", async () => {
  await waitForCount(expected.length);
  await page.waitForTimeout(1200); // one more stats message: nothing beyond the replay
  assert.deepEqual(await feedCount(), { shown: expected.length, matched: expected.length });
  assert.match((await page.getByTestId("lost-count").textContent()) ?? "", /^0 lost/);
  await page.screenshot({ path: path.join(ARTIFACTS, "feed.png") });

  const { rows } = await collectRows();
  assert.equal(rows.length, expected.length, "distinct rows rendered while scrolling the whole feed");
  const want = multiset(expected.map(entryKey));
  const got = multiset(rows.map((r) => rowKey(r.method, r.target, r.status)));
  assert.deepEqual(got, want, `rows differ from reef dissect (method path status):\n${multisetDiff(want, got)}`);
  log(`feed: "${expected.length} of ${expected.length} shown", 0 lost; scrolled all ${rows.length} rows, method/path/status match reef dissect`);
});

test(`the filter ${ERROR_FILTER} leaves exactly the matching rows`, async () => {
  const matching = expected.filter(isError);
  assert.ok(matching.length > 0 && matching.length < expected.length);
  await applyFilter(ERROR_FILTER);
  await waitForCount(matching.length);
  await page.waitForTimeout(1200);
  assert.deepEqual(await feedCount(), { shown: matching.length, matched: matching.length });
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("q"), ERROR_FILTER, "the filter is kept in the URL");

  const { rows } = await collectRows();
  assert.equal(rows.length, matching.length, "distinct rows rendered with the filter");
  const bad = rows.filter((r) => !(Number(r.status) >= 400));
  assert.deepEqual(bad, [], "rows with a status below 400");
  const want = multiset(matching.map(entryKey));
  const got = multiset(rows.map((r) => rowKey(r.method, r.target, r.status)));
  assert.deepEqual(got, want, `filtered rows differ from reef dissect:\n${multisetDiff(want, got)}`);
  log(`filter "${ERROR_FILTER}": ${rows.length} rows, all >= 400, same as reef dissect's ${matching.length}`);
});

test("a bad filter shows its error", async () => {
  await applyFilter(BAD_FILTER);
  const err = page.getByTestId("filter-error");
  await err.first().waitFor({ state: "visible", timeout: WAIT_MS });
  const text = (await err.first().textContent()) ?? "";
  assert.match(text, /status_code/, "the error suggests the right column");
  assert.match(text, /stauts_code/, "the error names the unknown column");
  assert.equal(await page.getByTestId("filter-input").getAttribute("aria-invalid"), "true");
  assert.equal(await page.getByTestId("entry-row").count(), 0, "no rows under a refused filter");
  log(`bad filter "${BAD_FILTER}": filter-error says ${JSON.stringify(text.trim())}`);

  await applyFilter("");
  await waitForCount(expected.length);
  assert.equal(await err.count(), 0, "the error goes away with a good filter");
  log(`cleared the filter: back to ${expected.length} rows`);
});

test("clicking a row opens the detail with headers and body", async () => {
  // A row whose entry is unique by method/path/status in the captures and has a text
  // body, so the pane can be compared with reef dissect's entry.
  const byKey = new Map();
  for (const e of expected) byKey.set(entryKey(e), byKey.has(entryKey(e)) ? null : e);
  const usable = (e) =>
    e && typeof e.response_body === "string" && e.response_body.split(/\r?\n/).some((l) => l.trim().length >= 8) && e.request_headers && e.response_headers;

  const pick = async () => {
    const visible = await page.getByTestId("entry-row").evaluateAll((rows) =>
      rows.map((r) => {
        const cell = (c) => r.querySelector(c)?.textContent ?? "";
        return { id: r.getAttribute("data-id"), method: cell(".c-method"), target: cell(".c-path"), status: cell(".c-status") };
      }),
    );
    for (const r of visible) {
      const e = byKey.get(rowKey(r.method, r.target, r.status));
      // By data-id, not by position: the list re-renders its rows when one is selected.
      if (usable(e)) return { row: page.locator(`[data-testid="entry-row"][data-id="${r.id}"]`), e };
    }
    return null;
  };
  let found = await pick();
  if (!found) {
    await page.getByTestId("feed-scroll").evaluate((el) => (el.scrollTop = 0));
    await page.waitForTimeout(200);
    found = await pick();
  }
  assert.ok(found, "no visible row with a unique entry and a text body");
  const { row, e } = found;
  await row.click();

  const detail = page.getByTestId("entry-detail");
  await detail.waitFor({ state: "visible", timeout: WAIT_MS });
  await detail.locator("table.headers").first().waitFor({ state: "visible", timeout: WAIT_MS });
  await page.waitForFunction((el) => el.getAttribute("aria-selected") === "true", await row.elementHandle(), { timeout: WAIT_MS });
  const title = (await detail.locator("h2").textContent()) ?? "";
  assert.ok(title.includes(e.path), `detail title ${JSON.stringify(title)} names ${e.path}`);

  const headerNames = (await detail.locator("table.headers th").allTextContents()).map((h) => h.toLowerCase());
  for (const name of [...Object.keys(e.request_headers), ...Object.keys(e.response_headers)]) {
    assert.ok(headerNames.includes(name.toLowerCase()), `header ${name} is shown (shown: ${headerNames.join(", ")})`);
  }
  const bodies = detail.locator(".body-view pre");
  await bodies.first().waitFor({ state: "visible", timeout: WAIT_MS });
  assert.ok(await bodies.first().isVisible());
  const bodyText = (await bodies.allTextContents()).join("\n");
  const snippet = e.response_body.split(/\r?\n/).map((l) => l.trim()).find((l) => l.length >= 8).slice(0, 60);
  assert.ok(bodyText.includes(snippet), `the response body shows ${JSON.stringify(snippet)}`);
  await page.screenshot({ path: path.join(ARTIFACTS, "detail.png") });
  log(`detail of ${e.method} ${e.path} → ${e.status_code}: ${headerNames.length} headers, response body shows ${JSON.stringify(snippet)}`);

  await page.keyboard.press("Escape");
  await detail.waitFor({ state: "detached", timeout: WAIT_MS });
});

test("the service map renders nodes and edges", async () => {
  const api = await (await fetch(`${reef.url}/api/servicemap`)).json();
  assert.ok(api.nodes.length >= 2 && api.edges.length >= 1, `the hub's map: ${JSON.stringify(api).slice(0, 300)}`);
  await page.getByTestId("tab-map").click();
  const map = page.getByTestId("service-map");
  await map.waitFor({ state: "visible", timeout: WAIT_MS });
  const svg = map.locator("svg.map-svg");
  await svg.locator("g.node").nth(api.nodes.length - 1).waitFor({ state: "visible", timeout: WAIT_MS });
  assert.equal(await svg.locator("g.node").count(), api.nodes.length, "nodes: dashboard vs /api/servicemap");
  assert.equal(await svg.locator("path.edge").count(), api.edges.length, "edges: dashboard vs /api/servicemap");
  const labels = await svg.locator("g.node .node-label").allTextContents();
  assert.deepEqual([...labels].sort(), api.nodes.map((n) => n.name).sort());
  const box = await svg.boundingBox();
  assert.ok(box && box.width > 200 && box.height > 200, `svg box ${JSON.stringify(box)}`);
  // Every node inside the drawn area (the view box fits the layout).
  const outside = await svg.evaluate((el) => {
    const r = el.getBoundingClientRect();
    return [...el.querySelectorAll("g.node circle")]
      .map((c) => c.getBoundingClientRect())
      .filter((c) => c.left < r.left - 1 || c.right > r.right + 1 || c.top < r.top - 1 || c.bottom > r.bottom + 1).length;
  });
  assert.equal(outside, 0, "nodes drawn outside the svg");
  // Every edge has its arrowhead, and wide edges do not bury it under their stroke.
  const heads = await svg.evaluate((el) =>
    [...el.querySelectorAll("path.edge")].map((p) => {
      const id = /url\(#([^)]+)\)/.exec(p.getAttribute("marker-end") ?? "")?.[1];
      const m = id ? el.querySelector(`marker[id="${id}"]`) : null;
      return { stroke: Number(p.getAttribute("stroke-width")), head: m ? Number(m.getAttribute("markerWidth")) : null };
    }),
  );
  for (const h of heads) {
    assert.ok(h.head !== null, `an edge without its arrowhead marker: ${JSON.stringify(heads)}`);
    assert.ok(h.head >= 2 * h.stroke, `arrowhead ${h.head} px on a ${h.stroke} px edge: hidden by the stroke`);
  }
  await page.waitForTimeout(1500); // let the force layout settle for the screenshot
  await page.screenshot({ path: path.join(ARTIFACTS, "servicemap.png") });
  log(`service map: ${api.nodes.length} nodes, ${api.edges.length} edges with arrowheads (${labels.join(", ")})`);
});

test("no errors in the page", () => {
  assert.deepEqual(pageErrors, []);
  log(`no page errors; screenshots in ${ARTIFACTS} (feed.png, detail.png, servicemap.png)`);
});
