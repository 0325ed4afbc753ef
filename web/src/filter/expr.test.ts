import { describe, expect, it } from "vitest";
import { appendCondition, condition, hasTopLevelOr, sqlLiteral } from "./expr";

describe("sqlLiteral", () => {
  it("quotes strings and doubles their quotes", () => {
    expect(sqlLiteral("shop")).toBe("'shop'");
    expect(sqlLiteral("O'Brien's")).toBe("'O''Brien''s'");
  });
  it("leaves numbers and booleans bare", () => {
    expect(sqlLiteral(503)).toBe("503");
    expect(sqlLiteral(0)).toBe("0");
    expect(sqlLiteral(1.5)).toBe("1.5");
    expect(sqlLiteral(true)).toBe("true");
  });
});

describe("appendCondition (click a value in the detail pane)", () => {
  it("starts the filter when it is empty", () => {
    expect(appendCondition("", "dst_namespace", "shop")).toBe("dst_namespace = 'shop'");
    expect(appendCondition("   ", "status_code", 404)).toBe("status_code = 404");
  });

  it("appends AND column = 'value' to an existing filter", () => {
    expect(appendCondition("protocol = 'http'", "dst_service", "cart")).toBe(
      "protocol = 'http' AND dst_service = 'cart'",
    );
  });

  it("leaves numbers unquoted", () => {
    expect(appendCondition("protocol = 'http'", "status_code", 500)).toBe("protocol = 'http' AND status_code = 500");
    expect(appendCondition("x = 1", "dst_port", 8080)).toBe("x = 1 AND dst_port = 8080");
  });

  it("escapes quotes inside values", () => {
    expect(appendCondition("", "path", "/it's")).toBe("path = '/it''s'");
  });

  it("parenthesises a filter with a top-level OR so AND narrows all of it", () => {
    expect(appendCondition("status_code >= 500 OR status_code = 429", "dst_pod", "api-0")).toBe(
      "(status_code >= 500 OR status_code = 429) AND dst_pod = 'api-0'",
    );
  });

  it("does not parenthesise an OR already inside parentheses or a string", () => {
    expect(appendCondition("(a = 1 OR b = 2) AND c = 3", "d", 4)).toBe("(a = 1 OR b = 2) AND c = 3 AND d = 4");
    expect(appendCondition("path = 'this OR that'", "d", 4)).toBe("path = 'this OR that' AND d = 4");
  });

  it("does not add the same condition twice", () => {
    expect(appendCondition("protocol = 'http' AND dst_pod = 'a'", "dst_pod", "a")).toBe(
      "protocol = 'http' AND dst_pod = 'a'",
    );
  });

  it("turns booleans and null into SQL", () => {
    expect(appendCondition("", "incomplete", true)).toBe("incomplete = true");
    expect(condition("dst_pod", null)).toBe("dst_pod IS NULL");
  });
});

describe("hasTopLevelOr", () => {
  it("finds OR only as a word at depth 0", () => {
    expect(hasTopLevelOr("a = 1 or b = 2")).toBe(true);
    expect(hasTopLevelOr("origin = 'x'")).toBe(false);
    expect(hasTopLevelOr("(a OR b)")).toBe(false);
    expect(hasTopLevelOr("\"OR\" = 1")).toBe(false);
  });
});
