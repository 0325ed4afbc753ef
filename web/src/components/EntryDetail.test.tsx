import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { appendCondition } from "../filter/expr";
import type { ColumnValue, Entry, EntrySummary } from "../types";
import { EntryDetail } from "./EntryDetail";
import { FilterBox } from "./FilterBox";

const summary: EntrySummary = {
  id: "01J9ZC0ENTRY",
  cursor: "1042.17",
  timestamp: 1_764_151_200_123_456_789,
  elapsed_time: 12_345,
  protocol: "http",
  transport: "tcp",
  src_ip: "10.1.0.5",
  src_port: 51234,
  dst_ip: "10.1.0.9",
  dst_port: 8080,
  method: "POST",
  path: "/api/cart?user=7",
  status_code: 503,
  http_version: "1.1",
  src_pod: "frontend-7d9f",
  src_namespace: "shop",
  dst_service: "cart",
  dst_pod: "cart-0",
  dst_namespace: "shop",
  dst_workload: "cart",
  dst_workload_kind: "StatefulSet",
};

const full: Entry = {
  ...summary,
  capture_source: "af_packet",
  request_headers: { "Content-Type": "application/json", "X-Req": "1", "Accept-Encoding": "gzip, br" },
  response_headers: { "content-type": "application/x-www-form-urlencoded" },
  request_body: '{"item":42,"qty":2}',
  response_body: "error=unavailable&retry=5",
  src_process: "node",
  src_pid: 4242,
  redis_command: null,
  graphql_operation: "AddItem",
  flags: ["pairing_uncertain"],
  incomplete: false,
};

describe("EntryDetail", () => {
  it("fetches the entry with its cursor and shows request, response, headers and bodies", async () => {
    const load = vi.fn(async () => full);
    render(<EntryDetail target={{ id: summary.id, cursor: summary.cursor, summary }} onClose={() => {}} onAddFilter={() => {}} load={load} />);
    expect(load).toHaveBeenCalledWith("01J9ZC0ENTRY", "1042.17", expect.any(AbortSignal));
    const pane = screen.getByTestId("entry-detail");
    // The summary shows at once.
    expect(pane.textContent).toContain("POST /api/cart?user=7 HTTP/1.1");
    expect(pane.textContent).toContain("HTTP/1.1 503 Service Unavailable");
    await waitFor(() => expect(pane.textContent).toContain("X-Req"));
    // JSON pretty-printed, form as a table.
    expect(pane.querySelector("pre.json")?.textContent).toBe('{\n  "item": 42,\n  "qty": 2\n}');
    expect(pane.textContent).toContain("retry");
    // Kubernetes, process and the columns no section names.
    expect(pane.textContent).toContain("StatefulSet");
    expect(pane.textContent).toContain("4242");
    expect(pane.textContent).toContain("graphql_operation");
    expect(pane.textContent).toContain("AddItem");
    expect(pane.textContent).not.toContain("redis_command"); // null columns are left out
  });

  it("says so when the hub no longer has the entry", async () => {
    const { ApiError } = await import("../api");
    const load = vi.fn(async () => {
      throw new ApiError(404, "not found");
    });
    render(<EntryDetail target={{ id: "x", summary }} onClose={() => {}} onAddFilter={() => {}} load={load} />);
    await waitFor(() => expect(screen.getByTestId("entry-detail").textContent).toContain("no longer has this entry"));
  });

  it("clicking a value reports its column and typed value", async () => {
    const onAdd = vi.fn();
    render(<EntryDetail target={{ id: summary.id, summary }} onClose={() => {}} onAddFilter={onAdd} load={async () => full} />);
    await waitFor(() => expect(screen.getByTestId("entry-detail").textContent).toContain("X-Req"));
    fireEvent.click(screen.getByRole("button", { name: "cart-0" }));
    expect(onAdd).toHaveBeenLastCalledWith("dst_pod", "cart-0");
    fireEvent.click(screen.getByRole("button", { name: "8080" }));
    expect(onAdd).toHaveBeenLastCalledWith("dst_port", 8080);
  });
});

describe("click-to-add into the filter box", () => {
  // Stable, as the app's own loader is: a new one would fetch the entry again.
  const loadFull = async () => full;
  function Page() {
    const [value, setValue] = useState("protocol = 'http'");
    const add = (c: string, v: ColumnValue) => setValue((d) => appendCondition(d, c, v));
    return (
      <>
        <FilterBox value={value} onChange={setValue} applied="protocol = 'http'" onApply={() => {}} columns={[]} validate={async () => ({ ok: true })} />
        <EntryDetail target={{ id: summary.id, summary }} onClose={() => {}} onAddFilter={add} load={loadFull} />
      </>
    );
  }

  it("appends AND column = 'value', numbers unquoted", async () => {
    render(<Page />);
    const input = screen.getByTestId("filter-input") as HTMLInputElement;
    fireEvent.click(document.querySelector('button[data-column="dst_namespace"]')!);
    expect(input.value).toBe("protocol = 'http' AND dst_namespace = 'shop'");
    fireEvent.click(screen.getByRole("button", { name: "8080" }));
    expect(input.value).toBe("protocol = 'http' AND dst_namespace = 'shop' AND dst_port = 8080");
    await waitFor(() => expect(screen.getByText("↵ apply")).toBeTruthy());
  });

  it("adds a header by its exact name; a value that may be several is not clickable", async () => {
    render(<Page />);
    const input = screen.getByTestId("filter-input") as HTMLInputElement;
    await waitFor(() => expect(screen.getByRole("button", { name: "application/json" })).toBeTruthy());
    fireEvent.click(screen.getByRole("button", { name: "application/json" }));
    expect(input.value).toBe("protocol = 'http' AND request_headers['Content-Type'] = 'application/json'");
    expect(screen.queryByRole("button", { name: "gzip, br" })).toBeNull();
    expect(screen.getByText("gzip, br")).toBeTruthy();
  });
});
