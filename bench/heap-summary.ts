// `npx tsx bench/heap-summary.ts FILE.heapsnapshot [--top 30]`: where a V8 heap snapshot's memory
// goes. Prints self size by constructor/type, and the single objects that retain the most (with the
// path that reaches them from the GC roots), using the dominator tree like DevTools' "retained size".
// Snapshots come from `node --heapsnapshot-signal=SIGUSR2 dist/cli/entry.js run ...` + `kill -USR2`.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' } },
});
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: tsx bench/heap-summary.ts FILE.heapsnapshot [--top N]\n');
  process.exit(2);
}
const top = Number(values.top);
const snap = JSON.parse(await readFile(file, 'utf8')) as Snapshot;
const { meta } = snap.snapshot;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nType = meta.node_fields.indexOf('type');
const nName = meta.node_fields.indexOf('name');
const nSelf = meta.node_fields.indexOf('self_size');
const nEdges = meta.node_fields.indexOf('edge_count');
const eType = meta.edge_fields.indexOf('type');
const eName = meta.edge_fields.indexOf('name_or_index');
const eTo = meta.edge_fields.indexOf('to_node');
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const WEAK = edgeTypes.indexOf('weak');
const SHORTCUT = edgeTypes.indexOf('shortcut');
const ELEMENT = edgeTypes.indexOf('element');
const HIDDEN = edgeTypes.indexOf('hidden');
const { nodes, edges, strings } = snap;
const count = nodes.length / NF;

const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) {
  firstEdge[i] = e;
  e += (nodes[i * NF + nEdges] as number) * EF;
  firstEdge[i + 1] = e;
}
const selfSize = (i: number) => nodes[i * NF + nSelf] as number;
const typeOf = (i: number) => nodeTypes[nodes[i * NF + nType] as number] as string;
function label(i: number): string {
  const type = typeOf(i);
  const name = strings[nodes[i * NF + nName] as number] as string;
  if (type === 'object' || type === 'native') return name.length > 60 ? `${name.slice(0, 57)}...` : name;
  if (type === 'closure') return `(closure ${name || 'anonymous'})`;
  return `(${type})`;
}
function* children(i: number): Generator<[to: number, edge: number]> {
  for (let e = firstEdge[i] as number; e < (firstEdge[i + 1] as number); e += EF) {
    const t = edges[e + eType] as number;
    if (t === WEAK || t === SHORTCUT) continue;
    yield [(edges[e + eTo] as number) / NF, e];
  }
}
function edgeName(e: number): string {
  const t = edges[e + eType] as number;
  const n = edges[e + eName] as number;
  if (t === ELEMENT || t === HIDDEN) return `[${n}]`;
  // Map keys can be long (an https.Agent's pool key holds the client certificate and key): cut.
  const name = strings[n] ?? `?${n}`;
  return name.length > 40 ? `${name.slice(0, 37)}...` : name;
}

// Depth-first postorder from the root (node 0), iteratively.
const post = new Int32Array(count).fill(-1);
const order: number[] = [];
const parentEdge = new Int32Array(count).fill(-1);
{
  const stack: [number, Generator<[number, number]>][] = [[0, children(0)]];
  const seen = new Uint8Array(count);
  seen[0] = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as [number, Generator<[number, number]>];
    const next = top[1].next();
    if (next.done) {
      post[top[0]] = order.length;
      order.push(top[0]);
      stack.pop();
      continue;
    }
    const [to, e] = next.value;
    if (seen[to]) continue;
    seen[to] = 1;
    parentEdge[to] = e;
    stack.push([to, children(to)]);
  }
}

// Predecessors (reachable nodes only).
const predStart = new Uint32Array(count + 1);
for (const i of order) for (const [to] of children(i)) predStart[to + 1] = (predStart[to + 1] as number) + 1;
for (let i = 0; i < count; i++) predStart[i + 1] = (predStart[i + 1] as number) + (predStart[i] as number);
const preds = new Uint32Array(predStart[count] as number);
{
  const fill = predStart.slice(0, count);
  for (const i of order) {
    for (const [to] of children(i)) {
      const at = fill[to] as number;
      preds[at] = i;
      fill[to] = at + 1;
    }
  }
}

// Cooper, Harvey & Kennedy: iterate immediate dominators in reverse postorder until stable.
const idom = new Int32Array(count).fill(-1);
idom[0] = 0;
const intersect = (a: number, b: number) => {
  while (a !== b) {
    while ((post[a] as number) < (post[b] as number)) a = idom[a] as number;
    while ((post[b] as number) < (post[a] as number)) b = idom[b] as number;
  }
  return a;
};
for (let changed = true; changed; ) {
  changed = false;
  for (let k = order.length - 2; k >= 0; k--) {
    const i = order[k] as number;
    let dom = -1;
    for (let p = predStart[i] as number; p < (predStart[i + 1] as number); p++) {
      const q = preds[p] as number;
      if (idom[q] === -1) continue;
      dom = dom === -1 ? q : intersect(q, dom);
    }
    if (dom !== -1 && idom[i] !== dom) {
      idom[i] = dom;
      changed = true;
    }
  }
}
const retained = new Float64Array(count);
for (const i of order) retained[i] = (retained[i] as number) + selfSize(i);
for (const i of order) {
  if (i === 0) continue;
  const d = idom[i] as number;
  retained[d] = (retained[d] as number) + (retained[i] as number);
}

function pathTo(i: number): string {
  const parts: string[] = [];
  for (let n = i, guard = 0; n !== 0 && guard < 12; guard++) {
    const e = parentEdge[n] as number;
    if (e < 0) break;
    const from = firstEdgeOwner(e);
    parts.unshift(`${label(from)}.${edgeName(e)}`);
    n = from;
  }
  return parts.join(' → ');
}
function firstEdgeOwner(e: number): number {
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((firstEdge[mid] as number) <= e) lo = mid;
    else hi = mid - 1;
  }
  // Nodes without edges share their firstEdge with the next one: take the last with edges.
  while (lo > 0 && (firstEdge[lo] as number) === (firstEdge[lo + 1] as number)) lo--;
  return lo;
}

const mb = (n: number) => (n / 2 ** 20).toFixed(2).padStart(8);
let total = 0;
const groups = new Map<string, { self: number; n: number }>();
for (const i of order) {
  total += selfSize(i);
  const g = groups.get(label(i)) ?? { self: 0, n: 0 };
  g.self += selfSize(i);
  g.n++;
  groups.set(label(i), g);
}
const out: string[] = [`${file}: ${order.length} reachable nodes, ${mb(total).trim()} MiB`, ''];
out.push('self size by constructor/type (MiB, count):');
for (const [k, g] of [...groups].sort((a, b) => b[1].self - a[1].self).slice(0, top)) {
  out.push(`${mb(g.self)}  ${String(g.n).padStart(8)}  ${k}`);
}
out.push('', 'largest retainers (retained MiB, self MiB; path from the GC roots):');
const skip = new Set(['(synthetic)', '(GC roots)']);
const byRetained = order
  .filter((i) => !skip.has(label(i)) && typeOf(i) !== 'synthetic')
  .sort((a, b) => (retained[b] as number) - (retained[a] as number));
// Skip nodes that are just the single child of a listed node (same retained size, nested).
const shown: number[] = [];
for (const i of byRetained) {
  if (shown.length >= top) break;
  const parent = idom[i] as number;
  if (shown.includes(parent) && (retained[parent] as number) - (retained[i] as number) < 64 * 1024) continue;
  shown.push(i);
  out.push(`${mb(retained[i] as number)} ${mb(selfSize(i))}  ${label(i)}  ← ${pathTo(i)}`);
}
process.stdout.write(`${out.join('\n')}\n`);
