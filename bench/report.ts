// The benchmark's result: one JSON document (bench/results/bench-N.json) and a table for the terminal.
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

/** Drift-check GETs in one resync interval after the restart, in ten equal parts of it. */
export interface DriftSpread {
  gets: number;
  bins: number[];
  /** The busiest tenth against the mean: 1 is perfectly even. */
  maxToMean: number;
  coefficientOfVariation: number;
}

export interface BenchResult {
  startedAt: string;
  config: {
    count: number;
    workers: number | 'default';
    providerMaxConcurrentRequests: number;
    resyncInterval: string;
    idleSeconds: number;
    cpus: number;
    node: string;
    /** The compiled entry that ran, its flags, and the Node flags it ran with. */
    operator: string;
    operatorArgs: string;
    nodeArgs: string;
    /** The image's ENV, applied to the operator process. */
    env: string;
    /** 1/5/15-minute load averages at the start and at the end of each phase. */
    loadAverage: Record<string, number[]>;
  };
  /** The same apply with no operator running, in a namespace the operator does not watch. */
  applyAlone: { kubectlApplySeconds: number; cpuSeconds: Record<string, number> };
  memory: {
    /** Caches synced, the OidcProvider known, nothing else. */
    noClients: MemorySample;
    /** All clients Ready, then the idle period: the steady state with `count` clients. */
    settled: MemorySample;
    /** A fresh operator with `count` clients, after one resync interval of drift checks. */
    restarted: MemorySample;
    afterDeletion: MemorySample;
    /** VmHWM of the first operator process: the most it held at once. */
    peakRssMiB: number;
    maxSampledRssMiB: number;
  };
  create: {
    kubectlApplySeconds: number;
    /** kubectlApplySeconds / the apply alone. */
    applySlowdown: number;
    /** OidcClients already Ready when kubectl apply returned: whether the operator kept pace. */
    readyWhenApplyReturned: number;
    secretsWhenApplyReturned: number;
    /** From the start of kubectl apply until both Secrets of every client were seen. */
    allSecretsSeconds: number;
    /** The figure of merit: all Secrets / the apply alone (goal ≤ 2). */
    allSecretsToApplyAlone: number;
    allReadySeconds: number;
    throughputPerSecond: number;
    /** Per OidcClient, first seen by the bench's watch → first seen Ready. */
    timeToReadySeconds: { p50: number; p95: number; max: number };
    providerPosts: number;
    providerClients: number;
    duplicateRegistrations: number;
    providerRequests: Record<string, number>;
    providerRequestsPerClient: Record<string, number>;
    apiserverWrites: WriteSummary;
    operatorWritesPerClient: number;
    apiserverWritesPerClient: Record<string, number>;
    /** CPU seconds of each process during the burst. */
    cpuSeconds: Record<string, number>;
    operatorCpuSeconds: number;
    /** Of which (roughly: GC runs partly on helper threads) in garbage collection. */
    operatorGcSeconds: number;
    /** Garbage collections by kind during the burst. */
    operatorGcRuns: Record<string, number>;
  };
  idle: {
    seconds: number;
    providerRequests: Record<string, number>;
    apiserverWrites: WriteSummary;
    reconciles: number;
  };
  restart: {
    stopSeconds: number;
    /** From the new process's start until its caches were synced. */
    cachesSyncedSeconds: number;
    /** From the new process's start until it had reconciled every client once. */
    allReconciledSeconds: number;
    /** From the restart until one resync interval after it. */
    providerRequests: Record<string, number>;
    providerWrites: number;
    apiserverWrites: WriteSummary;
    drift: DriftSpread;
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
    logLines: Record<string, number>;
    /** Mean reconcile duration and provider request latency by method, from the operator's histograms. */
    meanSeconds: Record<string, number>;
  };
  /** Failed expectations: the bench exits 1. */
  problems: string[];
  /** Worth a look, not failures. */
  findings: string[];
}

function fmtCounts(counts: Record<string, number | string>, limit = 8): string {
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
  const k = r.create;

  section(`burst (${c.count} OidcClients in one kubectl apply)`);
  row('kubectl apply alone (no operator)', `${r.applyAlone.kubectlApplySeconds} s`);
  row(
    'kubectl apply next to the operator',
    `${k.kubectlApplySeconds} s (${k.applySlowdown}× alone; ${k.readyWhenApplyReturned} Ready, ${k.secretsWhenApplyReturned} app Secrets when it returned)`,
  );
  row(
    'all Secrets, from apply start',
    `${k.allSecretsSeconds} s = ${k.allSecretsToApplyAlone}× the apply alone`,
  );
  row('all Ready, from apply start', `${k.allReadySeconds} s (${k.throughputPerSecond} clients/s)`);
  row('time to Ready per client p50 / p95 / max', `${t.p50} / ${t.p95} / ${t.max} s`);
  row('provider registrations (POST)', `${k.providerPosts} (expected ${c.count})`);
  row('clients at the provider / duplicates', `${k.providerClients} / ${k.duplicateRegistrations}`);
  row('provider requests per client', fmtCounts(k.providerRequestsPerClient));
  const w = k.apiserverWrites;
  row(
    'apiserver writes (all / operator)',
    `${w.total} / ${w.operatorResources} (${k.operatorWritesPerClient} per client)`,
  );
  row('  per client by verb and resource', fmtCounts(k.apiserverWritesPerClient));
  row('CPU seconds by process', fmtCounts(k.cpuSeconds));
  row('  apply alone', fmtCounts(r.applyAlone.cpuSeconds));
  row('operator CPU (of it in GC)', `${k.operatorCpuSeconds} s (${k.operatorGcSeconds} s)`);
  row('  garbage collections', fmtCounts(k.operatorGcRuns));

  section(`idle (${r.idle.seconds} s, resync interval ${c.resyncInterval})`);
  row('provider requests', fmtCounts(r.idle.providerRequests));
  row(
    'apiserver writes (all / operator)',
    `${r.idle.apiserverWrites.total} / ${r.idle.apiserverWrites.operatorResources}`,
  );
  row('  by verb and resource', fmtCounts(r.idle.apiserverWrites.byVerbResource));
  row('reconciles', r.idle.reconciles);

  const rs = r.restart;
  section(`restart (SIGTERM, a fresh operator, one resync interval of ${c.resyncInterval})`);
  row('stop / caches synced', `${rs.stopSeconds} s / ${rs.cachesSyncedSeconds} s`);
  row('every client reconciled again', `${rs.allReconciledSeconds} s after the start`);
  row(
    'provider writes / apiserver operator writes',
    `${rs.providerWrites} / ${rs.apiserverWrites.operatorResources}`,
  );
  row('provider requests', fmtCounts(rs.providerRequests));
  row(
    'drift-check GETs by tenth of the interval',
    `${rs.drift.bins.join(' ')} (${rs.drift.gets} in all; max/mean ${rs.drift.maxToMean}, CV ${rs.drift.coefficientOfVariation})`,
  );

  section('delete (kubectl delete oidcclients --all --wait=false)');
  row('kubectl delete', `${r.delete.kubectlDeleteSeconds} s`);
  row('provider store empty after', `${r.delete.providerStoreEmptySeconds} s`);
  row('all OidcClients gone after', `${r.delete.allGoneSeconds} s`);
  row('provider requests', fmtCounts(r.delete.providerRequests));

  section(`memory (MiB; node ${c.nodeArgs || 'without flags'}${c.env ? `, ${c.env}` : ''})`);
  const m = (s: MemorySample) =>
    `RSS ${s.rssMiB} (anon ${s.anonMiB}, file ${s.fileMiB}), heap used ${s.heapUsedMiB} of ${s.heapTotalMiB}, external ${s.externalMiB}`;
  row('no clients', m(r.memory.noClients));
  row(`${c.count} clients, settled after the burst`, m(r.memory.settled));
  row(`${c.count} clients, restarted`, m(r.memory.restarted));
  row('after deleting all', m(r.memory.afterDeletion));
  row('peak RSS (VmHWM) / max sampled', `${r.memory.peakRssMiB} / ${r.memory.maxSampledRssMiB}`);

  section('operator');
  row('reconciles by result (restarted process)', fmtCounts(r.operator.reconciles));
  row('work queue retries', r.operator.workqueueRetries);
  row('log lines by level', fmtCounts(r.operator.logLines));
  row('mean seconds', fmtCounts(r.operator.meanSeconds));
  row(
    'load average (1/5/15 min)',
    fmtCounts(Object.fromEntries(Object.entries(c.loadAverage).map(([p, l]) => [p, l.join('/')]))),
  );

  const width = Math.max(...rows.filter(([, v]) => v !== '').map(([l]) => l.trimStart().length + 2));
  const header = `oidc-client-operator bench: ${c.count} OidcClients, workers ${c.workers}, provider maxConcurrentRequests ${c.providerMaxConcurrentRequests}, ${c.cpus} CPUs, Node ${c.node}`;
  const body = rows.map(([l, v]) => (v === '' ? l : `${l.padEnd(width)} ${v}`)).join('\n');
  const verdict =
    r.problems.length === 0
      ? '\nOK: no problems found'
      : `\nPROBLEMS:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`;
  const notes = r.findings.length === 0 ? '' : `\nFINDINGS:\n${r.findings.map((f) => `  - ${f}`).join('\n')}`;
  return `${header}\n${body}\n${notes}${verdict}\n`;
}

export async function writeJson(path: string, r: BenchResult & Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}
