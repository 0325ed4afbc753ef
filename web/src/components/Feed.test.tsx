import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { FEED_ROW_HEIGHT } from "../config";
import type { EntrySummary } from "../types";
import { Feed, visibleRange } from "./Feed";

const entries: EntrySummary[] = Array.from({ length: 5000 }, (_, i) => ({
  id: `e${i}`,
  timestamp: 1_764_151_200_000_000_000 + i * 1e6,
  elapsed_time: 1500,
  protocol: i % 2 ? "dns" : "http",
  transport: "tcp",
  src_ip: "10.0.0.1",
  src_port: 5000,
  dst_ip: "10.0.0.2",
  dst_port: 80,
  method: "GET",
  path: `/p/${i}`,
  status_code: i % 2 ? 0 : 503,
  dst_service: "cart",
  dst_namespace: "shop",
}));

describe("Feed", () => {
  it("puts only the visible rows (plus overscan) in the DOM", () => {
    render(<Feed entries={entries} evicted={0} received={5000} selectedId={null} onRowClick={() => {}} empty={null} />);
    const rows = screen.getAllByTestId("entry-row");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(100);
    // The canvas is as tall as all rows, so the scrollbar is right.
    expect((screen.getByTestId("feed-scroll").firstChild as HTMLElement).style.height).toBe(`${5000 * FEED_ROW_HEIGHT}px`);
  });

  it("renders the columns of a row and reports clicks", () => {
    const onClick = vi.fn();
    render(<Feed entries={entries.slice(0, 2)} evicted={0} received={2} selectedId="e1" onRowClick={onClick} empty={null} />);
    const [http, dns] = screen.getAllByTestId("entry-row");
    expect(http!.textContent).toContain("HTTP");
    expect(http!.textContent).toContain("/p/0");
    expect(http!.querySelector(".c-status")!.className).toContain("status-server");
    expect(http!.textContent).toContain("1.5 ms");
    expect(http!.textContent).toContain("10.0.0.1:5000→cart");
    expect(dns!.querySelector(".c-status")!.className).toContain("status-ok");
    expect(dns!.getAttribute("aria-selected")).toBe("true");
    fireEvent.click(dns!);
    expect(onClick).toHaveBeenCalledWith("e1");
  });

  it("shows the empty state when there is nothing", () => {
    render(<Feed entries={[]} evicted={0} received={0} selectedId={null} onRowClick={() => {}} empty={<p>nothing here</p>} />);
    expect(screen.getByText("nothing here")).toBeTruthy();
    expect(screen.queryAllByTestId("entry-row")).toHaveLength(0);
  });
});

describe("visibleRange", () => {
  it("covers the viewport plus overscan, clamped", () => {
    expect(visibleRange(0, 260, 1000, 26, 5)).toEqual({ start: 0, end: 16 });
    expect(visibleRange(2600, 260, 1000, 26, 5)).toEqual({ start: 95, end: 116 });
    expect(visibleRange(26_000, 260, 1000, 26, 5)).toEqual({ start: 995, end: 1000 });
  });
});
