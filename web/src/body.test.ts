import { describe, expect, it } from "vitest";
import { bodyLength, decodeBase64, headerValue, hexDump, renderBody } from "./body";

describe("renderBody", () => {
  it("pretty-prints JSON by content type or by shape", () => {
    expect(renderBody('{"a":1,"b":[true]}', "application/json; charset=utf-8")).toEqual({
      kind: "json",
      text: '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}',
    });
    expect(renderBody("[1,2]", null)).toEqual({ kind: "json", text: "[\n  1,\n  2\n]" });
  });

  it("falls back to text for JSON that does not parse", () => {
    expect(renderBody("{oops", "application/json")).toEqual({ kind: "text", text: "{oops" });
  });

  it("shows form bodies as a table", () => {
    expect(renderBody("a=1&b=hello+world&c=%2F", "application/x-www-form-urlencoded")).toEqual({
      kind: "form",
      rows: [
        ["a", "1"],
        ["b", "hello world"],
        ["c", "/"],
      ],
    });
  });

  it("hex-dumps a base64 (non UTF-8) body", () => {
    const r = renderBody({ base64: "AAFIaf8=" }, "application/grpc");
    expect(r.kind).toBe("binary");
    if (r.kind !== "binary") return;
    expect(r.size).toBe(5);
    expect(r.dump).toBe("00000000  00 01 48 69 ff" + " ".repeat(1 + 3 * 11 + 1) + " |..Hi.|");
  });

  it("raw mode shows JSON as sent", () => {
    expect(renderBody('{"a":1}', "application/json", "text")).toEqual({ kind: "text", text: '{"a":1}' });
  });

  it("empty bodies are empty", () => {
    expect(renderBody(null, null)).toEqual({ kind: "empty" });
    expect(renderBody("", null)).toEqual({ kind: "empty" });
  });
});

describe("body helpers", () => {
  it("decodes base64 to bytes and measures bodies", () => {
    expect([...decodeBase64("aGk=")]).toEqual([104, 105]);
    expect(bodyLength({ base64: "aGk=" })).toBe(2);
    expect(bodyLength("héllo")).toBe(6);
  });

  it("finds headers whatever their case", () => {
    expect(headerValue({ "Content-Type": "text/plain" }, "content-type")).toBe("text/plain");
    expect(headerValue(null, "x")).toBeNull();
  });

  it("dumps 16 bytes a line with offsets", () => {
    const lines = hexDump(new Uint8Array(20).map((_, i) => 0x41 + i)).split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^00000000  41 42 .* \|ABCDEFGHIJKLMNOP\|$/);
    expect(lines[1]).toMatch(/^00000010  51 52 53 54 +\|QRST\|$/);
  });
});
