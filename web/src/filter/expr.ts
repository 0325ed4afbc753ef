// Building filter text: SQL literals, and "click a value to filter by it".

import type { ColumnValue } from "../types";

/** A SQL literal for `value`: strings single-quoted (quotes doubled), numbers and
 * booleans bare. */
export function sqlLiteral(value: Exclude<ColumnValue, null>): string {
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : `'${String(value)}'`;
  if (typeof value === "boolean") return value ? "true" : "false";
  return `'${value.replace(/'/g, "''")}'`;
}

/** One key of a map column (headers, labels): `request_headers['Content-Type']`. */
export function mapKey(column: string, key: string): string {
  return `${column}[${sqlLiteral(key)}]`;
}

/** `column = literal`, or `column IS NULL`. */
export function condition(column: string, value: ColumnValue): string {
  return value === null ? `${column} IS NULL` : `${column} = ${sqlLiteral(value)}`;
}

/** True when `filter` has an OR outside parentheses, quotes and identifiers: appending
 * `AND x` to it would bind to the last operand only. */
export function hasTopLevelOr(filter: string): boolean {
  let depth = 0;
  let i = 0;
  const n = filter.length;
  while (i < n) {
    const c = filter[i]!;
    if (c === "'" || c === '"') {
      // Skip a quoted string or identifier; a doubled quote is an escaped one.
      i++;
      while (i < n) {
        if (filter[i] === c) {
          if (filter[i + 1] === c) i += 2;
          else break;
        } else i++;
      }
      i++;
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")") depth = Math.max(0, depth - 1);
    else if (depth === 0 && /[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < n && /[A-Za-z0-9_]/.test(filter[j]!)) j++;
      if (filter.slice(i, j).toUpperCase() === "OR") return true;
      i = j;
      continue;
    }
    i++;
  }
  return false;
}

/** The filter narrowed by `column = value`: `<filter> AND column = 'value'`, the old
 * filter parenthesised when it has a top-level OR. A condition already present is not
 * added twice. */
export function appendCondition(filter: string, column: string, value: ColumnValue): string {
  const cond = condition(column, value);
  const base = filter.trim();
  if (base === "") return cond;
  if (base === cond || base.endsWith(` AND ${cond}`)) return base;
  const left = hasTopLevelOr(base) ? `(${base})` : base;
  return `${left} AND ${cond}`;
}
