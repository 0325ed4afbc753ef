// Pure helpers of the service map: scales, colors, edge geometry, and merging a fresh
// GET /api/servicemap answer into the simulated graph so nodes keep their places.

import type { SimulationLinkDatum, SimulationNodeDatum } from "d3-force";
import type { ServiceMapEdge, ServiceMapNode, ServiceMapResponse } from "./types";

export interface SimNode extends SimulationNodeDatum {
  id: string;
  data: ServiceMapNode;
  r: number;
}

export interface SimLink extends SimulationLinkDatum<SimNode> {
  key: string;
  source: SimNode;
  target: SimNode;
  data: ServiceMapEdge;
}

/** Error rate at which an edge is fully red. */
export const ERROR_RATE_RED = 0.5;

/** Error rate → position on the green→red scale, 0..1. Square-root: a few percent of
 * errors already matters and must not look green (1 % → 0.14, 10 % → 0.45). */
export function errorScale(rate: number): number {
  const r = Number.isFinite(rate) ? Math.max(0, rate) : 0;
  return Math.min(1, Math.sqrt(r / ERROR_RATE_RED));
}

export function scaleColor(t: number): string {
  const hue = 140 * (1 - Math.min(1, Math.max(0, t)));
  return `hsl(${hue.toFixed(0)} 75% 50%)`;
}

export function errorColor(rate: number): string {
  return scaleColor(errorScale(rate));
}

/** Bucket of an error rate, for the arrowhead markers (one per bucket). */
export const ERROR_BUCKETS = 10;
export function errorBucket(rate: number): number {
  return Math.round(errorScale(rate) * ERROR_BUCKETS);
}
export function bucketColor(bucket: number): string {
  return scaleColor(bucket / ERROR_BUCKETS);
}

/** Stroke width from 1 to 9 px, logarithmic in requests (traffic spans decades). */
export function edgeWidth(requests: number, maxRequests: number): number {
  if (maxRequests <= 0 || requests <= 0) return 1;
  return 1 + 8 * (Math.log1p(requests) / Math.log1p(maxRequests));
}

/** Length (and width) of an edge's arrowhead for a stroke `width` px wide: at least 9 px
 * and 2.5 strokes, so that even the busiest (widest) edges show their direction. */
export function arrowSize(width: number): number {
  return Math.max(9, Math.round(width * 2.5));
}

export function nodeRadius(requests: number, maxRequests: number): number {
  if (maxRequests <= 0 || requests <= 0) return 8;
  return 8 + 14 * Math.sqrt(Math.log1p(requests) / Math.log1p(maxRequests));
}

/** A stable color per namespace. */
export function namespaceColor(ns: string | null | undefined): string {
  if (!ns) return "hsl(215 15% 55%)";
  let h = 0;
  for (let i = 0; i < ns.length; i++) h = (h * 31 + ns.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360} 60% 60%)`;
}

/** Builds the simulation's nodes and links from a response, reusing the positions of the
 * nodes already placed; new nodes start next to a neighbour already placed, else near the
 * centre, so a refresh does not reshuffle the map. */
export function mergeGraph(prev: Map<string, SimNode>, res: ServiceMapResponse): { nodes: SimNode[]; links: SimLink[] } {
  const maxNode = Math.max(0, ...res.nodes.map((n) => n.requests ?? 0));
  const byId = new Map<string, SimNode>();
  const place = (data: ServiceMapNode): SimNode => {
    const old = prev.get(data.id);
    const r = nodeRadius(data.requests ?? 0, maxNode);
    const n: SimNode = old ? Object.assign(old, { data, r }) : { id: data.id, data, r };
    byId.set(data.id, n);
    return n;
  };
  for (const d of res.nodes) place(d);
  // Edges may name a node the list left out: show it rather than drop the edge.
  for (const e of res.edges) {
    for (const id of [e.source, e.target]) {
      if (!byId.has(id)) place({ id, name: id, requests: 0 });
    }
  }
  const links: SimLink[] = res.edges.map((e) => ({
    key: `${e.source}\u0000${e.target}`,
    source: byId.get(e.source)!,
    target: byId.get(e.target)!,
    data: e,
  }));
  // Unplaced nodes: next to a placed neighbour, else on a small ring around the centre.
  let k = 0;
  for (const n of byId.values()) {
    if (n.x !== undefined && n.y !== undefined) continue;
    const link = links.find(
      (l) => (l.source === n && l.target.x !== undefined) || (l.target === n && l.source.x !== undefined),
    );
    const anchor = link ? (link.source === n ? link.target : link.source) : null;
    const angle = (k++ * 2.399963) % (2 * Math.PI); // golden angle: spread, never stacked
    const dist = anchor ? 60 : 40 + 12 * Math.sqrt(k);
    n.x = (anchor?.x ?? 0) + dist * Math.cos(angle);
    n.y = (anchor?.y ?? 0) + dist * Math.sin(angle);
  }
  return { nodes: [...byId.values()], links };
}

/** SVG path of an edge: a slight arc (so A→B and B→A do not overlap), cut at both
 * nodes' rims; a loop for a node talking to itself. The path stops `arrow` px (plus a
 * small gap) short of the target's rim: an arrowhead that long, drawn from the path's end
 * (a marker with refX 0), then points at the rim, and the stroke, however wide, ends
 * under the head's base instead of poking out at its tip. */
export function edgePath(l: SimLink, arrow = 0): string {
  const s = l.source;
  const t = l.target;
  const sx = s.x ?? 0;
  const sy = s.y ?? 0;
  const tx = t.x ?? 0;
  const ty = t.y ?? 0;
  if (s === t) {
    const r = s.r;
    const k = r + (arrow > 0 ? 3 + arrow : 0);
    return `M${sx - r * 0.6},${sy - r * 0.8} C${sx - r * 2.5},${sy - r * 3.5} ${sx + r * 2.5},${sy - r * 3.5} ${sx + k * 0.6},${sy - k * 0.8}`;
  }
  const dx = tx - sx;
  const dy = ty - sy;
  const dist = Math.hypot(dx, dy) || 1;
  // Control point: off the midpoint, to the right of the direction of travel.
  const cx = (sx + tx) / 2 - (dy / dist) * dist * 0.15;
  const cy = (sy + ty) / 2 + (dx / dist) * dist * 0.15;
  const cut = (px: number, py: number, qx: number, qy: number, r: number) => {
    const ux = qx - px;
    const uy = qy - py;
    const len = Math.hypot(ux, uy) || 1;
    return [px + (ux / len) * r, py + (uy / len) * r] as const;
  };
  const [x1, y1] = cut(sx, sy, cx, cy, s.r + 1);
  const [x2, y2] = cut(tx, ty, cx, cy, t.r + (arrow > 0 ? 3 + arrow : 4));
  return `M${x1.toFixed(1)},${y1.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${x2.toFixed(1)},${y2.toFixed(1)}`;
}

/** viewBox that fits every node with room for labels, never zoomed in beyond 1:1 on a
 * `minW`×`minH` pixel canvas (a small graph stays at its natural size). */
export function fitViewBox(nodes: SimNode[], minW = 600, minH = 400, pad = 70): string {
  if (nodes.length === 0) return `${-minW / 2} ${-minH / 2} ${minW} ${minH}`;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const n of nodes) {
    const x = n.x ?? 0;
    const y = n.y ?? 0;
    minX = Math.min(minX, x - n.r);
    maxX = Math.max(maxX, x + n.r);
    minY = Math.min(minY, y - n.r);
    maxY = Math.max(maxY, y + n.r + 16);
  }
  let w = maxX - minX + 2 * pad;
  let h = maxY - minY + 2 * pad;
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  // Keep the canvas' aspect ratio, and at least its size in pixels.
  const aspect = minW / minH;
  if (w / h < aspect) w = h * aspect;
  else h = w / aspect;
  w = Math.max(w, minW);
  h = Math.max(h, minH);
  return `${(cx - w / 2).toFixed(0)} ${(cy - h / 2).toFixed(0)} ${w.toFixed(0)} ${h.toFixed(0)}`;
}
