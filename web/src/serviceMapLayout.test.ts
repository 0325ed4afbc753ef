import { describe, expect, it } from "vitest";
import { arrowSize, edgePath, edgeWidth, errorBucket, errorColor, fitViewBox, mergeGraph, type SimLink, type SimNode } from "./serviceMapLayout";
import type { ServiceMapResponse } from "./types";

const edge = (source: string, target: string, requests: number, errors = 0) => ({
  source,
  target,
  protocols: ["http"],
  requests,
  errors,
  error_rate: requests ? errors / requests : 0,
  request_bytes: 0,
  response_bytes: 0,
  latency_avg_us: null,
  latency_p50_us: null,
  latency_p99_us: null,
});

describe("service map layout", () => {
  it("keeps placed nodes where they are across refreshes", () => {
    const res: ServiceMapResponse = {
      nodes: [
        { id: "a", name: "a", requests: 10 },
        { id: "b", name: "b", requests: 5 },
      ],
      edges: [edge("a", "b", 10)],
      entries: 10,
    };
    const g1 = mergeGraph(new Map(), res);
    const a = g1.nodes.find((n) => n.id === "a")!;
    a.x = 123;
    a.y = -45;
    const g2 = mergeGraph(new Map(g1.nodes.map((n) => [n.id, n])), { ...res, nodes: [...res.nodes, { id: "c", name: "c", requests: 1 }] });
    const a2 = g2.nodes.find((n) => n.id === "a")!;
    expect(a2).toBe(a);
    expect([a2.x, a2.y]).toEqual([123, -45]);
    expect(g2.nodes.find((n) => n.id === "c")?.x).toBeTypeOf("number");
  });

  it("adds a node for an edge end the node list left out", () => {
    const g = mergeGraph(new Map(), { nodes: [{ id: "a", name: "a", requests: 1 }], edges: [edge("a", "10.0.0.9", 1)], entries: 1 });
    expect(g.nodes.map((n) => n.id).sort()).toEqual(["10.0.0.9", "a"]);
    expect(g.links[0]?.target.id).toBe("10.0.0.9");
  });

  it("scales width by requests and color by error rate", () => {
    expect(edgeWidth(1000, 1000)).toBe(9);
    expect(edgeWidth(10, 1000)).toBeLessThan(edgeWidth(100, 1000));
    expect(errorColor(0)).toBe("hsl(140 75% 50%)");
    expect(errorColor(1)).toBe("hsl(0 75% 50%)");
    expect(errorBucket(0)).toBe(0);
    expect(errorBucket(0.02)).toBeGreaterThan(0);
  });

  it("sizes arrowheads so the widest edges still show their direction", () => {
    expect(arrowSize(edgeWidth(1, 1000))).toBe(9);
    const wide = edgeWidth(1000, 1000);
    expect(arrowSize(wide)).toBeGreaterThanOrEqual(2 * wide);
  });

  it("stops an edge an arrowhead's length short of the target's rim", () => {
    const a = { id: "a", x: 0, y: 0, r: 10 } as SimNode;
    const b = { id: "b", x: 300, y: 0, r: 20 } as SimNode;
    const link = { key: "a→b", source: a, target: b } as SimLink;
    const end = (d: string) => d.trim().split(/[ ,]+/).slice(-2).map(Number) as [number, number];
    const dist = ([x, y]: [number, number]) => Math.hypot(x - 300, y);
    expect(dist(end(edgePath(link, 22)))).toBeCloseTo(20 + 3 + 22, 0);
    expect(dist(end(edgePath(link)))).toBeCloseTo(20 + 4, 0);
    const loop = { key: "a→a", source: a, target: a } as SimLink;
    expect(Math.hypot(...end(edgePath(loop, 9)))).toBeCloseTo(10 + 3 + 9, 0);
  });

  it("fits the view to the nodes, never zooming in past 1:1", () => {
    const nodes = [{ id: "a", x: 0, y: 0, r: 10 } as SimNode];
    const [, , w, h] = fitViewBox(nodes, 1200, 600).split(" ").map(Number);
    expect([w, h]).toEqual([1200, 600]);
  });
});
