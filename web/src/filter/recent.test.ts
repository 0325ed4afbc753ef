import { describe, expect, it } from "vitest";
import { MAX_RECENT_FILTERS } from "../config";
import { loadRecent, pushRecent, RECENT_KEY } from "./recent";

describe("recent filters", () => {
  it("keeps the most recent first, without duplicates, in localStorage", () => {
    pushRecent("a = 1");
    pushRecent("b = 2");
    expect(pushRecent("a = 1")).toEqual(["a = 1", "b = 2"]);
    expect(JSON.parse(localStorage.getItem(RECENT_KEY)!)).toEqual(["a = 1", "b = 2"]);
    expect(loadRecent()).toEqual(["a = 1", "b = 2"]);
  });

  it("ignores empty filters and caps the list", () => {
    expect(pushRecent("   ")).toEqual([]);
    for (let i = 0; i < MAX_RECENT_FILTERS + 5; i++) pushRecent(`x = ${i}`);
    const list = loadRecent();
    expect(list).toHaveLength(MAX_RECENT_FILTERS);
    expect(list[0]).toBe(`x = ${MAX_RECENT_FILTERS + 4}`);
  });

  it("survives garbage in storage", () => {
    localStorage.setItem(RECENT_KEY, "{not json");
    expect(loadRecent()).toEqual([]);
  });
});
