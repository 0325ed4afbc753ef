import { describe, expect, it } from "vitest";
import { endpointName, formatLatency, hostPort, parseTimeValue, statusClass, statusText } from "./format";
import type { EntrySummary } from "./types";

const base: EntrySummary = { id: "1", timestamp: 0, protocol: "http", transport: "tcp", src_ip: "10.0.0.1", src_port: 40000, dst_ip: "10.0.0.2", dst_port: 80 };

describe("formatLatency", () => {
  it("shows µs, ms or s", () => {
    expect(formatLatency(850)).toBe("850 µs");
    expect(formatLatency(12_345)).toBe("12.3 ms");
    expect(formatLatency(250_000)).toBe("250 ms");
    expect(formatLatency(1_420_000)).toBe("1.42 s");
    expect(formatLatency(null)).toBe("—");
  });
});

describe("statusClass", () => {
  it("colors HTTP by class", () => {
    expect(statusClass("http", 204)).toBe("ok");
    expect(statusClass("http", 301)).toBe("redirect");
    expect(statusClass("http", 404)).toBe("client");
    expect(statusClass("graphql", 502)).toBe("server");
  });
  it("treats 0 as OK for gRPC and DNS", () => {
    expect(statusClass("grpc", 0)).toBe("ok");
    expect(statusClass("dns", 0)).toBe("ok");
    expect(statusClass("grpc", 14)).toBe("server"); // UNAVAILABLE
    expect(statusClass("grpc", 5)).toBe("client"); // NOT_FOUND
    expect(statusClass("dns", 3)).toBe("client"); // NXDOMAIN
    expect(statusClass("dns", 2)).toBe("server"); // SERVFAIL
    expect(statusClass("redis", 1)).toBe("server");
  });
  it("has no color without a status", () => {
    expect(statusClass("http", null)).toBe("none");
  });
});

describe("statusText", () => {
  it("names gRPC and DNS codes", () => {
    expect(statusText({ ...base, protocol: "grpc", status_code: 0 })).toBe("OK");
    expect(statusText({ ...base, protocol: "grpc", status_code: 14 })).toBe("14 UNAVAILABLE");
    expect(statusText({ ...base, protocol: "dns", status_code: 3, dns_rcode: "NXDOMAIN" })).toBe("3 NXDOMAIN");
    expect(statusText({ ...base, status_code: 200 })).toBe("200");
    expect(statusText({ ...base, flags: ["no_response"] })).toBe("no resp");
  });
});

describe("endpointName", () => {
  it("prefers service, then pod, then ip:port", () => {
    expect(endpointName({ ...base, dst_service: "cart", dst_pod: "cart-0" }, "dst")).toBe("cart");
    expect(endpointName({ ...base, dst_pod: "cart-0" }, "dst")).toBe("cart-0");
    expect(endpointName(base, "dst")).toBe("10.0.0.2:80");
    expect(endpointName(base, "src")).toBe("10.0.0.1:40000");
  });
  it("brackets IPv6", () => {
    expect(hostPort("fd00::1", 443)).toBe("[fd00::1]:443");
  });
});

describe("parseTimeValue", () => {
  it("reads RFC 3339 and epoch numbers of any unit", () => {
    const ms = Date.parse("2026-11-26T10:00:00Z");
    expect(parseTimeValue("2026-11-26T10:00:00Z")?.getTime()).toBe(ms);
    expect(parseTimeValue(ms)?.getTime()).toBe(ms);
    expect(parseTimeValue(ms / 1000)?.getTime()).toBe(ms);
    expect(parseTimeValue(ms * 1e6)?.getTime()).toBe(ms);
    expect(parseTimeValue(null)).toBeNull();
  });
});
