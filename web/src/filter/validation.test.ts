import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ValidateResponse } from "../types";
import { FilterValidator, positionOffset, type ValidationState } from "./validation";

describe("FilterValidator", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function setup(answer: (f: string) => Promise<ValidateResponse>) {
    const states: ValidationState[] = [];
    const calls: string[] = [];
    const v = new FilterValidator(
      (f) => {
        calls.push(f);
        return answer(f);
      },
      (s) => states.push(s),
      250,
    );
    return { v, states, calls };
  }

  it("debounces: one request for a burst of keystrokes", async () => {
    const { v, states, calls } = setup(async () => ({ ok: true }));
    v.update("p");
    v.update("pr");
    v.update("protocol = 'http'");
    expect(calls).toEqual([]);
    expect(states.at(-1)).toEqual({ status: "pending" });
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toEqual(["protocol = 'http'"]);
    expect(states.at(-1)).toEqual({ status: "ok" });
  });

  it("reports the hub's message and position for a bad filter", async () => {
    const { v, states } = setup(async () => ({
      ok: false,
      message: "unknown column 'stauts_code'",
      position: { line: 1, column: 1 },
    }));
    v.update("stauts_code = 1");
    await vi.advanceTimersByTimeAsync(250);
    expect(states.at(-1)).toEqual({
      status: "invalid",
      message: "unknown column 'stauts_code'",
      position: { line: 1, column: 1 },
    });
  });

  it("empty text is neither valid nor invalid, and sends nothing", async () => {
    const { v, states, calls } = setup(async () => ({ ok: true }));
    v.update("  ");
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([]);
    expect(states).toEqual([{ status: "empty" }]);
  });

  it("drops a slow answer to an older text", async () => {
    let release: (r: ValidateResponse) => void = () => {};
    const { v, states } = setup((f) =>
      f === "a = 1" ? new Promise<ValidateResponse>((r) => (release = r)) : Promise.resolve({ ok: true }),
    );
    v.update("a = 1");
    await vi.advanceTimersByTimeAsync(250);
    v.update("b = 2");
    await vi.advanceTimersByTimeAsync(250);
    expect(states.at(-1)).toEqual({ status: "ok" });
    release({ ok: false, message: "stale", position: null });
    await vi.advanceTimersByTimeAsync(0);
    expect(states.at(-1)).toEqual({ status: "ok" });
  });

  it("says 'unknown' when the hub cannot be asked", async () => {
    const { v, states } = setup(async () => {
      throw new Error("the hub is unreachable");
    });
    v.update("a = 1");
    await vi.advanceTimersByTimeAsync(250);
    expect(states.at(-1)).toEqual({ status: "unknown", message: "the hub is unreachable" });
  });

  it("remembers verdicts: re-typing a checked filter answers at once", async () => {
    const { v, states, calls } = setup(async () => ({ ok: true }));
    v.update("a = 1");
    await vi.advanceTimersByTimeAsync(250);
    v.update("a = 1 AND");
    v.update("a = 1");
    expect(states.at(-1)).toEqual({ status: "ok" });
    expect(calls).toEqual(["a = 1"]);
  });
});

describe("positionOffset", () => {
  it("maps 1-based line/column to an offset", () => {
    expect(positionOffset("abc", { line: 1, column: 1 })).toBe(0);
    expect(positionOffset("abc", { line: 1, column: 3 })).toBe(2);
    expect(positionOffset("ab\ncd", { line: 2, column: 2 })).toBe(4);
    expect(positionOffset("ab", { line: 1, column: 99 })).toBe(2);
  });
});
