// The chaos run's result: one JSON document (.cache/chaos/last.json) and a summary for the terminal.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CheckFigures, InvariantResult } from './invariants.js';
import type { PlanCounts } from './plan.js';
import type { ChaosEvent } from './timeline.js';

export interface ChaosReport {
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  config: {
    clients: number;
    minutes: number;
    seed: number;
    workers: number;
    providerMaxConcurrentRequests: number;
    resyncSeconds: number;
    providerTimeoutMs: number;
    leaseSeconds: number;
    replicas: number;
    apiserverRestart: 'real restart' | 'proxy outage';
    counts: PlanCounts;
    cpus: number;
    node: string;
  };
  seconds: { setup: number; chaos: number; settle: number; verify: number; total: number };
  settle: { allReadyAfterSeconds: number | null; timedOut: boolean };
  chaos: {
    events: Record<string, number>;
    /** Provider requests a fault rule applied to, by rule. */
    faultedProviderRequests: Record<string, number>;
    operatorExits: Record<string, number>;
    apiserverDownSeconds: number[];
    watchExpiries: { streamsEnded: number; expired410: number; relists: number };
    kubectlRetries: number;
  };
  provider: { requests: number; byMethodAndStatus: Record<string, number>; storeClients: number };
  apiserver: { operatorRequests: number; operatorWrites: number };
  invariants: InvariantResult[];
  figures: CheckFigures;
  /** The run itself went wrong (a phase timed out, a step failed): not an invariant, still a failure. */
  problems: string[];
  /** Seconds into the run, kind and detail; provider-fault episodes included. */
  timeline: { t: number; kind: string; detail: string }[];
}

export function relativeTimeline(events: readonly ChaosEvent[], t0: number): ChaosReport['timeline'] {
  return events.map((e) => ({ t: Number(((e.at - t0) / 1000).toFixed(1)), kind: e.kind, detail: e.detail }));
}

const fmt = (o: Record<string, number>) =>
  Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

export function renderSummary(r: ChaosReport): string {
  const c = r.config;
  const f = r.figures;
  const lines = [
    `oidc-client-operator chaos: ${c.clients} OidcClients, ${c.minutes} min of chaos, seed ${c.seed}, ${c.replicas} replicas, ${c.cpus} CPUs, Node ${c.node}`,
    `  phases (s): setup ${r.seconds.setup}, chaos ${r.seconds.chaos}, settle ${r.seconds.settle}${r.settle.timedOut ? ' (TIMED OUT)' : ''}, verify ${r.seconds.verify}, total ${r.seconds.total}`,
    `  chaos events: ${fmt(r.chaos.events)}`,
    `  faulted provider requests: ${fmt(r.chaos.faultedProviderRequests)}`,
    `  operator exits: ${fmt(r.chaos.operatorExits)}; apiserver down (s): ${r.chaos.apiserverDownSeconds.join(', ') || 'never'} (${c.apiserverRestart})`,
    `  watches: ${r.chaos.watchExpiries.streamsEnded} streams ended, ${r.chaos.watchExpiries.expired410} answered 410 Expired, ${r.chaos.watchExpiries.relists} relists`,
    `  provider: ${r.provider.requests} requests (${fmt(r.provider.byMethodAndStatus)}), ${r.provider.storeClients} clients stored`,
    `  per client (max/avg): ${Object.entries(f.providerRequestsPerClient)
      .map(([m, x]) => `${m} ${x.max}/${x.avg}`)
      .join(', ')}; apiserver writes ${f.apiserverWritesPerClient.max}/${f.apiserverWritesPerClient.avg}`,
    `  orphans: ${f.orphanCount} (${fmt(f.orphansByCause)}); RegistrationRetried events ${f.registrationRetriedEvents}; token checks ${f.tokenChecks.ok} ok, ${f.tokenChecks.failed} failed`,
    '',
    'invariants:',
    ...r.invariants.map(
      (i) =>
        `  ${i.ok ? 'PASS' : 'FAIL'}  ${i.name}: ${i.detail}${i.ok || !i.examples?.length ? '' : `\n${i.examples.map((e) => `          - ${e}`).join('\n')}`}`,
    ),
  ];
  const unexplained = f.orphans.filter((o) => o.history);
  if (unexplained.length > 0) {
    lines.push('', 'unexplained orphans (history of their OidcClient, seconds into the run):');
    for (const o of unexplained.slice(0, 5)) {
      lines.push(`  ${o.clientName}: orphan ${o.clientId}`, ...(o.history ?? []).map((h) => `      ${h}`));
    }
  }
  if (r.problems.length > 0) lines.push('', 'problems:', ...r.problems.map((p) => `  - ${p}`));
  lines.push('', r.ok ? 'OK: every invariant holds' : 'FAILED: see above');
  return `${lines.join('\n')}\n`;
}

export async function writeReport(path: string, r: ChaosReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(r, null, 2)}\n`);
}
