import { describe, expect, it } from "vitest";
import type { SchemaColumn } from "../types";
import { applySuggestion, suggest } from "./autocomplete";

const columns: SchemaColumn[] = [
  { name: "protocol", type: "Utf8", nullable: false, values: [{ value: "http", count: 900 }, { value: "dns", count: 80 }, { value: "grpc", count: 20 }] },
  { name: "status_code", type: "Int32", nullable: true, values: [{ value: 200, count: 800 }, { value: 503, count: 12 }] },
  { name: "src_namespace", type: "Utf8", nullable: true, values: [{ value: "shop", count: 500 }, { value: "kube-system", count: 90 }] },
  { name: "dst_namespace", type: "Utf8", nullable: true, values: [{ value: "shop", count: 600 }] },
  { name: "summary", type: "Utf8", nullable: true },
];

const at = (text: string) => suggest(text, text.length, columns);
const labels = (text: string) => at(text).items.map((i) => i.label);

describe("autocomplete: columns", () => {
  it("offers every column at the start", () => {
    expect(labels("")).toEqual(["protocol", "status_code", "src_namespace", "dst_namespace", "summary"]);
  });

  it("completes a column name prefix, prefix matches before substring matches", () => {
    expect(labels("s")).toEqual(["status_code", "src_namespace", "summary", "dst_namespace"]);
    expect(labels("names")).toEqual(["src_namespace", "dst_namespace"]);
  });

  it("offers columns after AND / OR / NOT and after (", () => {
    expect(labels("protocol = 'http' AND ")).toContain("status_code");
    expect(labels("protocol = 'http' AND st")).toEqual(["status_code", "dst_namespace"]);
    expect(labels("(")).toContain("protocol");
  });

  it("replaces the whole word being typed", () => {
    const text = "protocol = 'http' AND sta";
    const s = at(text);
    const item = s.items.find((i) => i.label === "status_code")!;
    expect(applySuggestion(text, s, item)).toEqual({
      text: "protocol = 'http' AND status_code ",
      caret: "protocol = 'http' AND status_code ".length,
    });
  });

  it("says nothing for a fully typed column", () => {
    expect(labels("protocol")).toEqual([]);
  });
});

describe("autocomplete: values", () => {
  it("offers the column's frequent values after an operator, quoted for strings", () => {
    const s = at("protocol = ");
    expect(s.items.map((i) => i.insert)).toEqual(["'http' ", "'dns' ", "'grpc' "]);
    expect(s.items[0]?.detail).toBe("900×");
  });

  it("leaves numbers unquoted", () => {
    expect(at("status_code >= ").items.map((i) => i.insert)).toEqual(["200 ", "503 "]);
  });

  it("works without a space after the operator", () => {
    expect(labels("protocol=")).toEqual(["http", "dns", "grpc"]);
  });

  it("filters by what is typed inside an open string", () => {
    const text = "src_namespace = 'ku";
    const s = at(text);
    expect(s.items.map((i) => i.label)).toEqual(["kube-system"]);
    expect(applySuggestion(text, s, s.items[0]!).text).toBe("src_namespace = 'kube-system' ");
  });

  it("filters by a bare word typed after the operator", () => {
    const text = "protocol = gr";
    const s = at(text);
    expect(s.items.map((i) => i.label)).toEqual(["grpc"]);
    expect(applySuggestion(text, s, s.items[0]!).text).toBe("protocol = 'grpc' ");
  });

  it("offers values inside IN lists", () => {
    expect(labels("protocol IN ('http', ")).toEqual(["http", "dns", "grpc"]);
    expect(labels("protocol NOT IN (")).toEqual(["http", "dns", "grpc"]);
  });

  it("offers nothing for a column without values", () => {
    expect(labels("summary = ")).toEqual([]);
  });
});

describe("autocomplete: operators and keywords", () => {
  it("offers operators after a column", () => {
    expect(labels("status_code ")).toEqual(["=", "!=", ">=", "<", "LIKE", "IN (…)", "IS NULL", "IS NOT NULL"]);
    expect(labels("status_code L")).toEqual(["LIKE"]);
  });

  it("offers AND / OR after a complete comparison", () => {
    expect(labels("protocol = 'http' ")).toEqual(["AND", "OR"]);
    expect(labels("status_code >= 500 o")).toEqual(["OR"]);
  });

  it("offers nothing right after a number or a closed string", () => {
    expect(labels("status_code >= 50")).toEqual([]);
    expect(labels("protocol = 'http'")).toEqual([]);
  });
});
