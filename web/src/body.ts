// Bodies as the hub sends them (entry.v1: a string when the body is UTF-8, else
// {"base64": "…"}) turned into something readable: JSON pretty-printed, forms as a table,
// text as text, anything else as a hex dump.

import { MAX_HEXDUMP_BYTES } from "./config";
import type { Body } from "./types";

export type RenderedBody =
  | { kind: "empty" }
  | { kind: "json"; text: string }
  | { kind: "form"; rows: [string, string][] }
  | { kind: "text"; text: string }
  | { kind: "binary"; size: number; dump: string; shown: number };

/** Header lookup ignoring case (HTTP/1 keeps the sender's case, HTTP/2 lowercases). */
export function headerValue(headers: Record<string, string> | null | undefined, name: string): string | null {
  if (!headers) return null;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === want) return v;
  }
  return null;
}

export function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64.replace(/\s+/g, ""));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function isBinaryBody(body: Body): body is { base64: string } {
  return typeof body === "object" && body !== null && typeof body.base64 === "string";
}

/** Size in bytes of the body as carried (after the hub's body limit). */
export function bodyLength(body: Body): number {
  if (body === null || body === undefined) return 0;
  if (typeof body === "string") return new TextEncoder().encode(body).length;
  if (isBinaryBody(body)) {
    const b = body.base64.replace(/\s+/g, "");
    return Math.floor((b.length * 3) / 4) - (b.endsWith("==") ? 2 : b.endsWith("=") ? 1 : 0);
  }
  return 0;
}

export function renderBody(body: Body, contentType: string | null, mode: "auto" | "text" = "auto"): RenderedBody {
  if (body === null || body === undefined || body === "") return { kind: "empty" };
  if (isBinaryBody(body)) {
    let bytes: Uint8Array;
    try {
      bytes = decodeBase64(body.base64);
    } catch {
      return { kind: "text", text: body.base64 };
    }
    if (bytes.length === 0) return { kind: "empty" };
    const shown = Math.min(bytes.length, MAX_HEXDUMP_BYTES);
    return { kind: "binary", size: bytes.length, dump: hexDump(bytes.subarray(0, shown)), shown };
  }
  if (typeof body !== "string") return { kind: "text", text: JSON.stringify(body) };
  if (mode === "text") return { kind: "text", text: body };

  const ct = (contentType ?? "").toLowerCase();
  if (ct.includes("application/x-www-form-urlencoded")) {
    return { kind: "form", rows: parseForm(body) };
  }
  const trimmed = body.trimStart();
  const looksJson = ct.includes("json") || trimmed.startsWith("{") || trimmed.startsWith("[");
  if (looksJson) {
    const pretty = prettyJson(body);
    if (pretty !== null) return { kind: "json", text: pretty };
  }
  return { kind: "text", text: body };
}

export function prettyJson(text: string): string | null {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

export function parseForm(text: string): [string, string][] {
  const rows: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(text)) rows.push([k, v]);
  return rows;
}

/** Classic 16-bytes-a-line dump: offset, hex in two groups of eight, printable ASCII. */
export function hexDump(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const chunk = bytes.subarray(off, Math.min(off + 16, bytes.length));
    let hex = "";
    let ascii = "";
    for (let i = 0; i < 16; i++) {
      if (i === 8) hex += " ";
      const b = chunk[i];
      if (b === undefined) {
        hex += "   ";
      } else {
        hex += b.toString(16).padStart(2, "0") + " ";
        ascii += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".";
      }
    }
    lines.push(`${off.toString(16).padStart(8, "0")}  ${hex} |${ascii}|`);
  }
  return lines.join("\n");
}
