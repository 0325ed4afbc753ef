import { describe, expect, it } from "vitest";
import { formatRange, parseRange, rangeToSubscription } from "./timeRange";
import { buildSearch, readUrlState } from "./urlState";

describe("time ranges", () => {
  it("live subscribes 15 minutes back and follows", () => {
    expect(rangeToSubscription({ kind: "live" })).toEqual({ since: "-15m", until: null });
  });

  it("last N minutes ends at the moment of the request", () => {
    const now = new Date("2026-11-26T10:00:00Z");
    expect(rangeToSubscription({ kind: "last", minutes: 5 }, now)).toEqual({
      since: "-5m",
      until: "2026-11-26T10:00:00.000Z",
    });
    expect(rangeToSubscription({ kind: "last", minutes: 60 }, now).since).toBe("-60m");
  });

  it("custom passes both ends", () => {
    expect(rangeToSubscription({ kind: "custom", from: "2026-11-26T09:00:00Z", to: "2026-11-26T10:00:00Z" })).toEqual({
      since: "2026-11-26T09:00:00Z",
      until: "2026-11-26T10:00:00Z",
    });
  });

  it("round-trips through the URL form", () => {
    for (const r of ["live", "5m", "15m", "1h", "2026-11-26T09:00:00Z..2026-11-26T10:00:00Z", "2026-11-26T09:00:00Z.."]) {
      expect(formatRange(parseRange(r))).toBe(r);
    }
    expect(parseRange("60m")).toEqual({ kind: "last", minutes: 60 });
    expect(parseRange("garbage")).toEqual({ kind: "live" });
    expect(parseRange("yesterday..today")).toEqual({ kind: "live" });
  });
});

describe("URL state", () => {
  it("reads q, range and view", () => {
    expect(readUrlState("?q=status_code+%3E%3D+500&range=5m&view=map")).toEqual({
      filter: "status_code >= 500",
      range: { kind: "last", minutes: 5 },
      view: "map",
    });
    expect(readUrlState("")).toEqual({ filter: "", range: { kind: "live" }, view: "feed" });
  });

  it("writes only what differs from the defaults and keeps other parameters", () => {
    expect(buildSearch({ filter: "", range: { kind: "live" }, view: "feed" }, "")).toBe("");
    const s = buildSearch({ filter: "protocol = 'dns'", range: { kind: "last", minutes: 15 }, view: "feed" }, "?x=1");
    expect(new URLSearchParams(s).get("q")).toBe("protocol = 'dns'");
    expect(new URLSearchParams(s).get("range")).toBe("15m");
    expect(new URLSearchParams(s).get("x")).toBe("1");
  });
});
