// The gradient reduction tree, after the seed's "kissing spheres": a root, up to `fanout` leaders
// around it, and the other workers around the leaders. With 64 workers and fan-out 12 that is the
// seed's 1 → 12 → 51. Workers are numbered 0..W-1: 0 is the root, 1..L the leaders, the rest are
// dealt round-robin to the leaders. A step sums children into their leader, then leaders into
// the root — two levels of parallel reductions instead of one long chain.

export interface ReductionTree {
  workers: number;
  root: number;
  /** Each leader with its children (possibly none). */
  leaders: { leader: number; children: number[] }[];
}

export function reductionTree(workers: number, fanout: number): ReductionTree {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`reduction tree: workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(fanout) || fanout < 1) throw new Error(`reduction tree: fan-out must be a positive integer, got ${fanout}`);
  const nLeaders = Math.min(fanout, workers - 1);
  const leaders = Array.from({ length: nLeaders }, (_, i) => ({ leader: i + 1, children: [] as number[] }));
  for (let w = nLeaders + 1; w < workers; w++) leaders[(w - nLeaders - 1) % nLeaders]!.children.push(w);
  return { workers, root: 0, leaders };
}

/** Splits [0, n) into `parts` contiguous ranges, aligned to 16 values (SIMD- and cache-friendly). */
export function splitRange(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  const p = Math.max(1, Math.min(parts, Math.ceil(n / 16)));
  let lo = 0;
  for (let i = 0; i < p; i++) {
    const hi = i === p - 1 ? n : Math.min(n, Math.ceil((n * (i + 1)) / p / 16) * 16);
    if (hi > lo) out.push([lo, hi]);
    lo = hi;
  }
  return out;
}

/** How B sequences are dealt to W workers: worker w gets counts[w] sequences starting at starts[w]. */
export function splitBatch(B: number, workers: number): { starts: number[]; counts: number[] } {
  const active = Math.min(B, workers);
  const counts = Array.from({ length: workers }, (_, w) => (w < active ? Math.floor(B / active) + (w < B % active ? 1 : 0) : 0));
  const starts: number[] = [];
  let s = 0;
  for (const c of counts) {
    starts.push(s);
    s += c;
  }
  return { starts, counts };
}
