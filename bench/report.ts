// The benchmark's result: one JSON document (.cache/bench/last.json) and a table for the terminal.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { WriteSummary } from './apiserver-writes.js';

/** Operator process memory at one moment, MiB; RSS is anonymous plus file-backed (code) pages. */
export interface MemorySample {
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

export interface BenchResult {
  startedAt: string;
  config: {
    count: number;
    workers: number;
    providerMaxConcurrentRequests: number;
    resyncInterval: string;
    idleSeconds: number;
    cpus: number;
    node: string;
    /** The compiled entry that ran, and the Node flags it ran with. */
    operator: string;
    nodeArgs: string;
    /** The image's ENV, applied to the operator process. */
    env: string;
  };
  memory: {
    /** Caches synced, the OidcProvider known, nothing else. */
    noClients: MemorySample;
    /** All clients Ready, then the idle period: the steady state with `count` clients. */
    afterBurst: MemorySample;
    /** VmHWM: the most the process held at once. */
    peakRssMiB: number;
  };
  create: {
    kubectlApplySeconds: number;
    /** OidcClients already Ready when kubectl apply returned: whether the operator kept pace. */
    readyWhenApplyReturned: number;
    /** From the start of kubectl apply until the last Ready lastTransitionTime. */
    allReadySeconds: number;
    /** The same, as seen by polling the list (1 s interval). */
    allReadyObservedSeconds: number;
    throughputPerSecond: number;
    /** creationTimestamp (1 s resolution: up to 1 s too long) to the Ready lastTransitionTime. */
    timeToReadySeconds: { p50: number; p95: number; max: number };
    providerPosts: number;
    providerClients: number;
    duplicateRegistrations: number;
    providerRequests: Record<string, number>;
    apiserverWrites: WriteSummary;
    operatorCpuSeconds: number;
    /** Of which (roughly: GC runs partly on helper threads) in garbage collection. */
    operatorGcSeconds: number;
    /** Garbage collections by kind during the burst. */
    operatorGcRuns: Record<string, number>;
  };
  idle: {
    seconds: number;
    providerRequests: number;
    apiserverWrites: WriteSummary;
    reconciles: number;
  };
  delete: {
    kubectlDeleteSeconds: number;
    providerStoreEmptySeconds: number;
    allGoneSeconds: number;
    providerRequests: Record<string, number>;
  };
  operator: {
    reconciles: Record<string, number>;
    workqueueRetries: number;
    maxRssMiB: number;
    maxHeapUsedMiB: number;
    logLines: Record<string, number>;
    /** Mean reconcile duration and provider request latency by method, from the operator's histograms. */
    meanSeconds: Record<string, number>;
  };
  /** Failed expectations: the bench exits 1. */
  problems: string[];
  /** Worth a look, not failures. */
  findings: string[];
}

function fmtCounts(counts: Record<string, number>, limit = 8): string {
  const entries = Object.entries(counts);
  const shown = entries.slice(0, limit).map(([k, v]) => `${k} ${v}`);
  if (entries.length > limit) shown.push(`+${entries.length - limit} more`);
  return shown.join(', ') || 'none';
}

export function renderTable(r: BenchResult): string {
  const c = r.config;
  const rows: [string, string][] = [];
  const section = (title: string) => rows.push([`\n${title}`, '']);
  const row = (label: string, value: string | number) => rows.push([`  ${label}`, String(value)]);
  const t = r.create.timeToReadySeconds;

  section(`create (${c.count} OidcClients in one kubectl apply)`);
  row(
    'kubectl apply -f (client-side apply)',
    `${r.create.kubectlApplySeconds} s (${r.create.readyWhenApplyReturned} Ready when it returned)`,
  );
  row(
    'all Ready, from apply start',
    `${r.create.allReadySeconds} s (seen by polling: ${r.create.allReadyObservedSeconds} s)`,
  );
  row('throughput', `${r.create.throughputPerSecond} CRs/s`);
  row('time to Ready per CR p50 / p95 / max', `${t.p50} / ${t.p95} / ${t.max} s`);
  row('provider registrations (POST)', `${r.create.providerPosts} (expected ${c.count})`);
  row(
    'clients at the provider / duplicates',
    `${r.create.providerClients} / ${r.create.duplicateRegistrations}`,
  );
  row('provider requests', fmtCounts(r.create.providerRequests));
  const w = r.create.apiserverWrites;
  row(
    'apiserver writes (all / operator)',
    `${w.total} / ${w.operatorResources} (${(w.operatorResources / c.count).toFixed(2)} per CR)`,
  );
  row('  by verb and resource', fmtCounts(w.byVerbResource));
  row(
    'operator CPU (of it in GC pauses)',
    `${r.create.operatorCpuSeconds} s (${r.create.operatorGcSeconds} s)`,
  );
  row('  garbage collections', fmtCounts(r.create.operatorGcRuns));

  section(`idle (${r.idle.seconds} s, resync interval ${c.resyncInterval})`);
  row('provider requests', r.idle.providerRequests);
  row(
    'apiserver writes (all / operator)',
    `${r.idle.apiserverWrites.total} / ${r.idle.apiserverWrites.operatorResources}`,
  );
  row('  by verb and resource', fmtCounts(r.idle.apiserverWrites.byVerbResource));
  row('reconciles', r.idle.reconciles);

  section('delete (kubectl delete oidcclients --all --wait=false)');
  row('kubectl delete', `${r.delete.kubectlDeleteSeconds} s`);
  row('provider store empty after', `${r.delete.providerStoreEmptySeconds} s`);
  row('all OidcClients gone after', `${r.delete.allGoneSeconds} s`);
  row('provider requests', fmtCounts(r.delete.providerRequests));

  section(`memory (MiB; node ${c.nodeArgs || 'without flags'}${c.env ? `, ${c.env}` : ''})`);
  const m = (s: MemorySample) =>
    `RSS ${s.rssMiB} (anon ${s.anonMiB}, file ${s.fileMiB}), heap used ${s.heapUsedMiB} of ${s.heapTotalMiB}, external ${s.externalMiB}`;
  row('no clients', m(r.memory.noClients));
  row(`${c.count} clients, after the idle period`, m(r.memory.afterBurst));
  row('peak RSS', r.memory.peakRssMiB);

  section('operator');
  row('reconciles by result', fmtCounts(r.operator.reconciles));
  row('work queue retries', r.operator.workqueueRetries);
  row('max RSS / max heap used', `${r.operator.maxRssMiB} / ${r.operator.maxHeapUsedMiB} MiB`);
  row('log lines by level', fmtCounts(r.operator.logLines));
  row('mean seconds', fmtCounts(r.operator.meanSeconds));

  const width = Math.max(...rows.filter(([, v]) => v !== '').map(([l]) => l.trimStart().length + 2));
  const header = `oidc-client-operator bench: ${c.count} OidcClients, ${c.workers} workers, provider maxConcurrentRequests ${c.providerMaxConcurrentRequests}, ${c.cpus} CPUs, Node ${c.node}`;
  const body = rows.map(([l, v]) => (v === '' ? l : `${l.padEnd(width)} ${v}`)).join('\n');
  const verdict =
    r.problems.length === 0
      ? '\nOK: no problems found'
      : `\nPROBLEMS:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`;
  const notes = r.findings.length === 0 ? '' : `\nFINDINGS:\n${r.findings.map((f) => `  - ${f}`).join('\n')}`;
  return `${header}\n${body}\n${notes}${verdict}\n`;
}

export async function writeJson(path: string, r: BenchResult): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}
