import { describe, expect, it } from "vitest";
import { RECONNECT_BASE_MS, RECONNECT_MAX_MS } from "./config";
import { backoffDelay, parseServerMessage } from "./ws";

describe("backoffDelay", () => {
  it("doubles from the base and stops at the cap", () => {
    const full = () => 1;
    expect(backoffDelay(1, full)).toBe(RECONNECT_BASE_MS);
    expect(backoffDelay(2, full)).toBe(2 * RECONNECT_BASE_MS);
    expect(backoffDelay(4, full)).toBe(8 * RECONNECT_BASE_MS);
    expect(backoffDelay(6, full)).toBe(RECONNECT_MAX_MS);
    expect(backoffDelay(50, full)).toBe(RECONNECT_MAX_MS);
    expect(RECONNECT_MAX_MS).toBe(10_000);
  });

  it("jitters down by at most a quarter", () => {
    expect(backoffDelay(6, () => 0)).toBe(0.75 * RECONNECT_MAX_MS);
  });
});

describe("parseServerMessage", () => {
  it("accepts the hub's message types", () => {
    expect(parseServerMessage('{"type":"lost","sub":3,"count":1200,"reason":"slow"}')).toEqual({
      type: "lost",
      sub: 3,
      count: 1200,
      reason: "slow",
    });
  });
  it("rejects what is not one", () => {
    expect(parseServerMessage("not json")).toBeNull();
    expect(parseServerMessage('{"type":"nope"}')).toBeNull();
    expect(parseServerMessage("[1]")).toBeNull();
    expect(parseServerMessage(new ArrayBuffer(2))).toBeNull();
  });
});
