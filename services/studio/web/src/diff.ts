// A line diff (longest common subsequence) for the side-by-side version view.

export interface DiffRow {
  left: string | null;
  right: string | null;
  change: "same" | "removed" | "added" | "changed";
}

/** Rows pairing the lines of `a` and `b`; a removed line next to an added one shows as changed. */
export function diffLines(a: string[], b: string[]): DiffRow[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const raw: DiffRow[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      raw.push({ left: a[i++], right: b[j++], change: "same" });
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      raw.push({ left: a[i++], right: null, change: "removed" });
    } else {
      raw.push({ left: null, right: b[j++], change: "added" });
    }
  }
  while (i < n) raw.push({ left: a[i++], right: null, change: "removed" });
  while (j < m) raw.push({ left: null, right: b[j++], change: "added" });
  // Pair a run of removals with the additions right after it, line by line.
  const rows: DiffRow[] = [];
  for (let k = 0; k < raw.length; ) {
    if (raw[k].change !== "removed") {
      rows.push(raw[k++]);
      continue;
    }
    const removed: string[] = [];
    while (k < raw.length && raw[k].change === "removed") removed.push(raw[k++].left as string);
    const added: string[] = [];
    while (k < raw.length && raw[k].change === "added") added.push(raw[k++].right as string);
    for (let x = 0; x < Math.max(removed.length, added.length); x++) {
      const left = removed[x] ?? null;
      const right = added[x] ?? null;
      rows.push({ left, right, change: left !== null && right !== null ? "changed" : left !== null ? "removed" : "added" });
    }
  }
  return rows;
}

/** Stable pretty JSON (keys sorted) so two versions line up by content, not by key order. */
export function canonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v as Record<string, unknown>)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}
