// The whole page against a scripted hub: a fake WebSocket and a fake fetch.

import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { resetTokenCache } from "./auth";
import { FakeSocket } from "./test/fakeSocket";
import type { EntrySummary } from "./types";

const entry = (i: number, extra: Partial<EntrySummary> = {}): EntrySummary => ({
  id: `e${i}`,
  cursor: `9.${i}`,
  timestamp: 1_764_151_200_000_000_000 + i * 1e6,
  elapsed_time: 2500,
  protocol: "http",
  transport: "tcp",
  src_ip: "10.0.0.1",
  src_port: 40000 + i,
  dst_ip: "10.0.0.2",
  dst_port: 8080,
  method: "GET",
  path: `/items/${i}`,
  status_code: 200,
  dst_service: "cart",
  dst_namespace: "shop",
  ...extra,
});

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const url = String(input);
  if (url.startsWith("/api/stats")) {
    return json({
      entries_per_s: 12,
      protocols: { http: 10 },
      workers: [{ node: "n1", entries: 10, batches: 1, kernel_drops: 0, dropped: 0, last_seen: null }],
      window: { entries: 10, bytes: 100, max_bytes: 1000, oldest: null, newest: null },
      clients: 1,
      ingesting: true,
    });
  }
  if (url.startsWith("/api/schema")) {
    return json({ version: "reef.v1", columns: [{ name: "status_code", type: "Int32", nullable: true, values: [{ value: 200, count: 5 }] }] });
  }
  if (url.startsWith("/api/validate")) {
    const { filter } = JSON.parse(String(init?.body)) as { filter: string };
    return json(filter.includes("bogus") ? { ok: false, message: "unknown column 'bogus'", position: { line: 1, column: 1 } } : { ok: true });
  }
  const m = /^\/api\/entries\/([^?]+)/.exec(url);
  if (m) return json({ ...entry(Number(m[1]!.slice(1))), request_headers: { Accept: "*/*" }, response_body: '{"ok":true}' });
  if (url.startsWith("/api/servicemap")) return json({ nodes: [], edges: [], entries: 0 });
  return json({ error: "no" }, 404);
});

describe("App", () => {
  beforeEach(() => {
    FakeSocket.reset();
    resetTokenCache();
    vi.stubGlobal("WebSocket", FakeSocket);
    vi.stubGlobal("fetch", fetchMock);
    window.history.replaceState(null, "", "/?q=status_code+%3E%3D+200&range=live");
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  async function connect() {
    render(<App />);
    const sock = FakeSocket.last();
    await act(async () => sock.open());
    return sock;
  }

  it("subscribes with the filter from the URL, shows rows, counts and lost", async () => {
    const sock = await connect();
    expect(sock.url).toBe(`ws://${window.location.host}/ws`);
    expect(sock.sent[0]).toEqual({ type: "subscribe", filter: "status_code >= 200", since: "-15m", until: null, limit: null, after: null });
    await act(async () => {
      sock.receive({ type: "subscribed", sub: 1, filter: "status_code >= 200", since: null, until: null, limit: null });
      sock.receive({ type: "entries", sub: 1, entries: [entry(1), entry(2), entry(3)], cursor: "9.3" });
      sock.receive({ type: "stats", sub: 1, seen: 50, matched: 30, lag_ms: 5, paused: false });
      sock.receive({ type: "lost", sub: 1, count: 27, reason: "slow client: its queue was full" });
    });
    await waitFor(() => expect(screen.getAllByTestId("entry-row")).toHaveLength(3));
    expect(screen.getByTestId("feed-count").textContent).toBe("3 of 30 shown");
    expect(screen.getByTestId("lost-count").textContent).toContain("27 lost");
  });

  it("the service map asks for the feed's filter and time range", async () => {
    await connect();
    fireEvent.click(screen.getByTestId("tab-map"));
    await waitFor(() =>
      expect(fetchMock).toHaveBeenCalledWith("/api/servicemap?filter=status_code+%3E%3D+200&since=-15m", expect.anything()),
    );
  });

  it("Enter in the filter box re-subscribes and puts the filter in the URL", async () => {
    const sock = await connect();
    const user = userEvent.setup();
    const input = screen.getByTestId("filter-input") as HTMLInputElement;
    await user.clear(input);
    await user.type(input, "dst_namespace = 'shop'{Enter}");
    expect(sock.sent.at(-1)).toEqual({ type: "subscribe", filter: "dst_namespace = 'shop'", since: "-15m", until: null, limit: null, after: null });
    await waitFor(() => expect(new URLSearchParams(window.location.search).get("q")).toBe("dst_namespace = 'shop'"));
  });

  it("shows the hub's refusal of a filter", async () => {
    const sock = await connect();
    await act(async () => {
      sock.receive({ type: "error", message: "unknown column 'stauts_code' at 1:1", position: { line: 1, column: 1 } });
    });
    await waitFor(() => expect(screen.getByTestId("filter-error").textContent).toContain("unknown column 'stauts_code'"));
  });

  it("j/k select, Enter opens the detail, Esc closes it, / focuses the filter", async () => {
    const sock = await connect();
    await act(async () => {
      sock.receive({ type: "subscribed", sub: 1, filter: "", since: null, until: null, limit: null });
      sock.receive({ type: "entries", sub: 1, entries: [entry(1), entry(2)], cursor: "9.2" });
    });
    await waitFor(() => expect(screen.getAllByTestId("entry-row")).toHaveLength(2));
    fireEvent.keyDown(document.body, { key: "j" });
    fireEvent.keyDown(document.body, { key: "j" });
    fireEvent.keyDown(document.body, { key: "k" });
    expect(screen.getAllByTestId("entry-row")[0]!.getAttribute("aria-selected")).toBe("true");
    fireEvent.keyDown(document.body, { key: "Enter" });
    const detail = await screen.findByTestId("entry-detail");
    await waitFor(() => expect(detail.textContent).toContain("Accept"));
    expect(fetchMock).toHaveBeenCalledWith("/api/entries/e1?cursor=9.1", expect.anything());
    fireEvent.keyDown(document.body, { key: "Escape" });
    expect(screen.queryByTestId("entry-detail")).toBeNull();
    fireEvent.keyDown(document.body, { key: "/" });
    expect(document.activeElement).toBe(screen.getByTestId("filter-input"));
  });

  it("says why the feed is empty when the filter matches nothing", async () => {
    const sock = await connect();
    await act(async () => {
      sock.receive({ type: "subscribed", sub: 1, filter: "status_code >= 200", since: null, until: null, limit: null });
      sock.receive({ type: "stats", sub: 1, seen: 812, matched: 0, lag_ms: 5, paused: false });
    });
    await waitFor(() => expect(screen.getByTestId("empty-state").textContent).toContain("No entries match status_code >= 200"));
    expect(screen.getByTestId("empty-state").textContent).toContain("seen 812");
  });

  it("pause and resume go to the hub", async () => {
    const sock = await connect();
    fireEvent.click(screen.getByTestId("pause-button"));
    expect(sock.sent.at(-1)).toEqual({ type: "pause" });
    fireEvent.click(screen.getByTestId("resume-button"));
    expect(sock.sent.at(-1)).toEqual({ type: "resume" });
  });
});
