// Autocompletion for the SQL filter: from the text before the caret it works out whether
// a column, an operator, a value or a keyword comes next, and offers the matching column
// names or the window's most frequent values (GET /api/schema).
//
// It is a small tokenizer plus a look at the last tokens, not a SQL parser: good enough
// to guess what the user is typing, and it never blocks typing anything else.

import { MAX_SUGGESTIONS } from "../config";
import type { ColumnValue, SchemaColumn } from "../types";
import { sqlLiteral } from "./expr";

export type SuggestionKind = "column" | "value" | "keyword" | "operator" | "recent";

export interface Suggestion {
  kind: SuggestionKind;
  label: string;
  /** Text that replaces [from, to). */
  insert: string;
  detail?: string;
}

export interface Suggestions {
  from: number;
  to: number;
  items: Suggestion[];
}

type TokKind = "ident" | "string" | "number" | "op" | "punct" | "quoted";
interface Token {
  kind: TokKind;
  text: string;
  start: number;
  end: number;
  /** A string still open at the end of the input. */
  open?: boolean;
}

export function tokenize(text: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === "'" || c === '"') {
      i++;
      let open = true;
      while (i < n) {
        if (text[i] === c) {
          if (text[i + 1] === c) {
            i += 2;
            continue;
          }
          i++;
          open = false;
          break;
        }
        i++;
      }
      toks.push({ kind: c === "'" ? "string" : "quoted", text: text.slice(start, i), start, end: i, open });
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      while (i < n && /[A-Za-z0-9_.]/.test(text[i]!)) i++;
      toks.push({ kind: "ident", text: text.slice(start, i), start, end: i });
      continue;
    }
    if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(text[i + 1] ?? "") && !prevIsValue(toks))) {
      i++;
      while (i < n && /[0-9.eE_]/.test(text[i]!)) i++;
      toks.push({ kind: "number", text: text.slice(start, i), start, end: i });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === "!=" || two === "<>" || two === "<=" || two === ">=" || two === "==" || two === "||") {
      i += 2;
      toks.push({ kind: "op", text: two, start, end: i });
      continue;
    }
    if ("=<>+-*/%".includes(c)) {
      i++;
      toks.push({ kind: "op", text: c, start, end: i });
      continue;
    }
    i++;
    toks.push({ kind: "punct", text: c, start, end: i });
  }
  return toks;
}

function prevIsValue(toks: Token[]): boolean {
  const p = toks[toks.length - 1];
  return !!p && (p.kind === "ident" || p.kind === "number" || p.kind === "string" || p.text === ")");
}

const KEYWORDS = ["AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "IS", "NULL", "BETWEEN", "TRUE", "FALSE"];
const CONNECTIVES = new Set(["AND", "OR", "NOT"]);
const VALUE_OPS = new Set(["=", "==", "!=", "<>", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN"]);

const OPERATORS: Suggestion[] = [
  { kind: "operator", label: "=", insert: "= " },
  { kind: "operator", label: "!=", insert: "!= " },
  { kind: "operator", label: ">=", insert: ">= " },
  { kind: "operator", label: "<", insert: "< " },
  { kind: "operator", label: "LIKE", insert: "LIKE " },
  { kind: "operator", label: "IN (…)", insert: "IN (" },
  { kind: "operator", label: "IS NULL", insert: "IS NULL " },
  { kind: "operator", label: "IS NOT NULL", insert: "IS NOT NULL " },
];

const upper = (t: Token | undefined) => (t && t.kind === "ident" ? t.text.toUpperCase() : "");

function isOperatorToken(t: Token | undefined): boolean {
  if (!t) return false;
  if (t.kind === "op") return VALUE_OPS.has(t.text);
  return VALUE_OPS.has(upper(t));
}

/** For tokens ending at an operator (or inside an IN list), the column on its left. */
function columnBeforeOperator(toks: Token[], opIndex: number, columns: Map<string, SchemaColumn>): SchemaColumn | null {
  let i = opIndex;
  // Inside `col IN ('a', 'b', ` walk back to the IN.
  if (toks[i]?.text === "," || toks[i]?.text === "(") {
    while (i >= 0 && upper(toks[i]) !== "IN") {
      const t = toks[i]!;
      if (!(t.kind === "string" || t.kind === "number" || t.text === "," || t.text === "(")) return null;
      i--;
    }
    if (i < 0) return null;
  }
  let j = i - 1;
  if (upper(toks[j]) === "NOT") j--; // col NOT LIKE / NOT IN
  const col = toks[j];
  return col && col.kind === "ident" ? (columns.get(col.text.toLowerCase()) ?? null) : null;
}

function valueInsert(v: ColumnValue): string {
  return v === null ? "NULL" : sqlLiteral(v);
}

function matches(label: string, prefix: string): 0 | 1 | 2 {
  if (prefix === "") return 1;
  const l = label.toLowerCase();
  const p = prefix.toLowerCase();
  if (l.startsWith(p)) return 1;
  if (l.includes(p)) return 2;
  return 0;
}

/** Prefix matches first, then substring matches, each in the given order. */
function rank(items: Suggestion[], prefix: string, key: (s: Suggestion) => string = (s) => s.label): Suggestion[] {
  const first: Suggestion[] = [];
  const second: Suggestion[] = [];
  for (const s of items) {
    const m = matches(key(s), prefix);
    if (m === 1) first.push(s);
    else if (m === 2) second.push(s);
  }
  return first.concat(second);
}

function valueSuggestions(col: SchemaColumn, prefix: string): Suggestion[] {
  const items = (col.values ?? []).map<Suggestion>((v) => ({
    kind: "value",
    label: v.value === null ? "NULL" : String(v.value),
    insert: `${valueInsert(v.value)} `,
    detail: `${v.count}×`,
  }));
  return rank(items, prefix);
}

function columnSuggestions(columns: SchemaColumn[], prefix: string): Suggestion[] {
  return rank(
    columns.map((c) => ({ kind: "column" as const, label: c.name, insert: `${c.name} `, detail: (c.type ?? "").toLowerCase() })),
    prefix,
  );
}

function keywordSuggestions(prefix: string, only?: Set<string>): Suggestion[] {
  const kws = only ? KEYWORDS.filter((k) => only.has(k)) : KEYWORDS;
  return rank(
    kws.map((k) => ({ kind: "keyword" as const, label: k, insert: `${k} ` })),
    prefix,
  ).filter((s) => prefix === "" || matches(s.label, prefix) === 1);
}

/**
 * What to offer at `caret` in `text`. `items` is empty when there is nothing useful
 * (right after a number, inside a closed string…).
 */
export function suggest(text: string, caret: number, columns: SchemaColumn[]): Suggestions {
  const before = text.slice(0, caret);
  const toks = tokenize(before);
  const byName = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
  const none: Suggestions = { from: caret, to: caret, items: [] };
  const last = toks[toks.length - 1];
  const touching = last !== undefined && last.end === caret;

  // Inside a string that is still open: values of the column being compared.
  if (last && last.kind === "string" && last.open) {
    const op = toks[toks.length - 2];
    const col = isOperatorToken(op) || op?.text === "," || op?.text === "(" ? columnBeforeOperator(toks, toks.length - 2, byName) : null;
    if (!col) return none;
    const prefix = last.text.slice(1).replace(/''/g, "'");
    const items = valueSuggestions(col, prefix).filter((s) => typeof valueOf(col, s) === "string");
    return { from: last.start, to: extendString(text, caret), items: items.slice(0, MAX_SUGGESTIONS) };
  }

  // A word being typed.
  if (touching && last.kind === "ident") {
    const prefix = last.text;
    const to = extendIdent(text, caret);
    const prev = toks[toks.length - 2];
    if (isOperatorToken(prev) || prev?.text === "," || (prev?.text === "(" && upper(toks[toks.length - 3]) === "IN")) {
      const col = columnBeforeOperator(toks, toks.length - 2, byName);
      if (col) return { from: last.start, to, items: valueSuggestions(col, prefix).slice(0, MAX_SUGGESTIONS) };
    }
    if (prev && isValueEnd(prev, byName) && !CONNECTIVES.has(upper(prev))) {
      // After a complete comparison: a connective. After a column: an operator keyword.
      const afterColumn = prev.kind === "ident" && byName.has(prev.text.toLowerCase());
      const items = afterColumn
        ? OPERATORS.filter((s) => /^[A-Za-z]/.test(s.label) && matches(s.label, prefix) === 1)
        : keywordSuggestions(prefix, new Set(["AND", "OR"]));
      return { from: last.start, to, items: items.slice(0, MAX_SUGGESTIONS) };
    }
    const items = columnSuggestions(columns, prefix).concat(keywordSuggestions(prefix, new Set(["NOT"])));
    // A fully typed column name alone is not worth a popup.
    if (items.length === 1 && items[0]?.label.toLowerCase() === prefix.toLowerCase()) return none;
    return { from: last.start, to, items: items.slice(0, MAX_SUGGESTIONS) };
  }

  // Right after an operator (with or without a space): values.
  if (last && (isOperatorToken(last) || last.text === "," || last.text === "(")) {
    const col = columnBeforeOperator(toks, toks.length - 1, byName);
    if (col) return { from: caret, to: caret, items: valueSuggestions(col, "").slice(0, MAX_SUGGESTIONS) };
    if (last.text === "(" || last.kind === "punct") {
      return { from: caret, to: caret, items: columnSuggestions(columns, "").slice(0, MAX_SUGGESTIONS) };
    }
    return none;
  }

  if (touching) return none; // right after a number, a closed string, `)`…

  // After whitespace.
  if (!last || CONNECTIVES.has(upper(last))) {
    return { from: caret, to: caret, items: columnSuggestions(columns, "").slice(0, MAX_SUGGESTIONS) };
  }
  if (last.kind === "ident" && byName.has(last.text.toLowerCase())) {
    return { from: caret, to: caret, items: OPERATORS.slice(0, MAX_SUGGESTIONS) };
  }
  if (isValueEnd(last, byName)) {
    return { from: caret, to: caret, items: keywordSuggestions("", new Set(["AND", "OR"])) };
  }
  return none;
}

function isValueEnd(t: Token, byName: Map<string, SchemaColumn>): boolean {
  if (t.kind === "string" || t.kind === "number" || t.text === ")") return true;
  if (t.kind !== "ident") return false;
  const u = t.text.toUpperCase();
  return u === "NULL" || u === "TRUE" || u === "FALSE" || byName.has(t.text.toLowerCase());
}

function valueOf(col: SchemaColumn, s: Suggestion): ColumnValue | undefined {
  return col.values?.find((v) => (v.value === null ? "NULL" : String(v.value)) === s.label)?.value;
}

/** The rest of the identifier after the caret: replacing "sta|tus" replaces it whole. */
function extendIdent(text: string, caret: number): number {
  let i = caret;
  while (i < text.length && /[A-Za-z0-9_.]/.test(text[i]!)) i++;
  return i;
}

/** The rest of a string after the caret, through its closing quote if there is one. */
function extendString(text: string, caret: number): number {
  const close = text.indexOf("'", caret);
  return close < 0 ? text.length : close + 1;
}

/** Replaces [from, to) with the suggestion; returns the new text and caret. */
export function applySuggestion(text: string, s: Suggestions, item: Suggestion): { text: string; caret: number } {
  let insert = item.insert;
  const rest = text.slice(s.to);
  if (insert.endsWith(" ") && /^\s/.test(rest)) insert = insert.slice(0, -1);
  const next = text.slice(0, s.from) + insert + rest;
  return { text: next, caret: s.from + insert.length };
}
