import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { RECENT_KEY } from "../filter/recent";
import type { ValidateFn } from "../filter/validation";
import type { FeedError } from "../feedStore";
import type { SchemaColumn } from "../types";
import { FilterBox } from "./FilterBox";

const columns: SchemaColumn[] = [
  { name: "protocol", type: "Utf8", nullable: false, values: [{ value: "http", count: 10 }, { value: "dns", count: 3 }] },
  { name: "status_code", type: "Int32", nullable: true, values: [{ value: 200, count: 9 }] },
  { name: "src_pod", type: "Utf8", nullable: true, values: [] },
];

/** The hub's /api/validate, for these tests: a filter naming an unknown column fails. */
const validate: ValidateFn = async (f) => {
  const m = /\b(stauts_code)\b/.exec(f);
  if (m) {
    return {
      ok: false,
      message: `unknown column '${m[1]}' — did you mean 'status_code'?`,
      position: { line: 1, column: m.index + 1 },
    };
  }
  return { ok: true };
};

function Harness(props: { initial?: string; onApply?: (f: string) => void; serverError?: FeedError | null; validate?: ValidateFn }) {
  const [value, setValue] = useState(props.initial ?? "");
  const [applied, setApplied] = useState(props.initial ?? "");
  return (
    <FilterBox
      value={value}
      onChange={setValue}
      applied={applied}
      onApply={(f) => {
        setApplied(f);
        props.onApply?.(f);
      }}
      columns={columns}
      validate={props.validate ?? validate}
      serverError={props.serverError ?? null}
    />
  );
}

const input = () => screen.getByTestId("filter-input") as HTMLInputElement;

describe("FilterBox: validation", () => {
  it("turns green for a valid filter", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "status_code >= 500");
    await waitFor(() => expect(input().dataset.state).toBe("ok"));
    expect(input().getAttribute("aria-invalid")).toBe("false");
    expect(screen.queryByTestId("filter-error")).toBeNull();
  });

  it("turns red with the hub's message and position for an invalid one", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "protocol = 'http' AND stauts_code = 1");
    await waitFor(() => expect(input().dataset.state).toBe("invalid"));
    const err = screen.getByTestId("filter-error");
    expect(err.textContent).toContain("unknown column 'stauts_code'");
    expect(err.textContent).toContain("line 1, column 23");
    // The snippet marks the character at the position.
    expect(err.querySelector("mark")?.textContent).toBe("s");
  });

  it("goes back to neutral when cleared", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "stauts_code = 1");
    await waitFor(() => expect(input().dataset.state).toBe("invalid"));
    await user.clear(input());
    await waitFor(() => expect(input().dataset.state).toBe("empty"));
    expect(screen.queryByTestId("filter-error")).toBeNull();
  });

  it("validates once typing pauses, not on every keystroke", async () => {
    const spy = vi.fn(validate);
    const user = userEvent.setup();
    render(<Harness validate={spy} />);
    await user.type(input(), "protocol = 'dns'");
    await waitFor(() => expect(input().dataset.state).toBe("ok"));
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]?.[0]).toBe("protocol = 'dns'");
  });

  it("shows the hub's error for the applied filter", () => {
    render(<Harness initial="x = 1" serverError={{ message: "type mismatch: x is Utf8", position: { line: 1, column: 5 } }} />);
    expect(screen.getByTestId("filter-error").textContent).toContain("type mismatch: x is Utf8");
    expect(input().getAttribute("aria-invalid")).toBe("true");
  });
});

describe("FilterBox: Enter applies", () => {
  it("Enter applies the typed filter (trimmed) and remembers it", async () => {
    const onApply = vi.fn();
    const user = userEvent.setup();
    render(<Harness onApply={onApply} />);
    await user.type(input(), "  protocol = 'http'  {Enter}");
    expect(onApply).toHaveBeenCalledWith("protocol = 'http'");
    expect(input().value).toBe("protocol = 'http'");
    expect(JSON.parse(localStorage.getItem(RECENT_KEY)!)).toEqual(["protocol = 'http'"]);
  });

  it("Enter applies even while suggestions are showing", async () => {
    const onApply = vi.fn();
    const user = userEvent.setup();
    render(<Harness onApply={onApply} />);
    await user.type(input(), "src");
    expect(screen.getByTestId("filter-suggestions")).toBeTruthy();
    await user.keyboard("{Enter}");
    expect(onApply).toHaveBeenCalledWith("src");
    expect(screen.queryByTestId("filter-suggestions")).toBeNull();
  });

  it("an empty filter applies as 'everything'", async () => {
    const onApply = vi.fn();
    const user = userEvent.setup();
    render(<Harness initial="protocol = 'http'" onApply={onApply} />);
    await user.clear(input());
    await user.keyboard("{Enter}");
    expect(onApply).toHaveBeenCalledWith("");
  });
});

describe("FilterBox: autocomplete", () => {
  it("suggests columns for a prefix; Tab accepts the first", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "sta");
    const list = screen.getByTestId("filter-suggestions");
    expect([...list.querySelectorAll(".suggestion-label")].map((e) => e.textContent)).toEqual(["status_code"]);
    await user.keyboard("{Tab}");
    expect(input().value).toBe("status_code ");
  });

  it("suggests frequent values after an operator; arrows + Enter pick one", async () => {
    const onApply = vi.fn();
    const user = userEvent.setup();
    render(<Harness onApply={onApply} />);
    await user.type(input(), "protocol = ");
    const labels = [...screen.getByTestId("filter-suggestions").querySelectorAll(".suggestion-label")].map((e) => e.textContent);
    expect(labels).toEqual(["http", "dns"]);
    await user.keyboard("{ArrowDown}{ArrowDown}{Enter}");
    expect(input().value).toBe("protocol = 'dns' ");
    expect(onApply).not.toHaveBeenCalled();
    await user.keyboard("{Enter}");
    expect(onApply).toHaveBeenCalledWith("protocol = 'dns'");
  });

  it("a click on a suggestion inserts it", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "src_");
    const option = screen.getByRole("option", { name: /src_pod/ });
    fireEvent.mouseDown(option);
    expect(input().value).toBe("src_pod ");
  });

  it("Escape closes the suggestions", async () => {
    const user = userEvent.setup();
    render(<Harness />);
    await user.type(input(), "pro");
    expect(screen.queryByTestId("filter-suggestions")).not.toBeNull();
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("filter-suggestions")).toBeNull();
  });

  it("offers recent filters in an empty box", async () => {
    localStorage.setItem(RECENT_KEY, JSON.stringify(["status_code >= 500", "protocol = 'dns'"]));
    const user = userEvent.setup();
    render(<Harness />);
    await act(async () => input().focus());
    const labels = [...screen.getByTestId("filter-suggestions").querySelectorAll(".suggestion-label")].map((e) => e.textContent);
    expect(labels).toEqual(["status_code >= 500", "protocol = 'dns'"]);
    await user.keyboard("{ArrowDown}{Enter}");
    expect(input().value).toBe("status_code >= 500");
  });
});
