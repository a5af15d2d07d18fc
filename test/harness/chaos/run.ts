// The chaos run's phases, shared by `npm run chaos` (bench/chaos.ts) and the small e2e test:
// setup (provider, proxy, two operator replicas), chaos (the plan's waves, edits, deletions and
// faults on schedule), settle (faults off, replicas back, wait for Ready), verify (invariants).
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { OidcClient } from '../../../src/api/types.generated.js';
import { KubeRest } from '../../../src/kube/rest.js';
import { GROUP, VERSION } from '../oidc.js';
import type { RegistrationServer } from '../registration-server/types.js';
import { type ApiserverProxy, startApiserverProxy } from './apiserver-proxy.js';
import { checkInvariants, checkTokens, collectSnapshot, type Expectation } from './invariants.js';
import { OperatorFleet } from './operator-fleet.js';
import { type PlanCounts, planChaos, type Step } from './plan.js';
import { afterPostRule, faultRule, isRegistrationPost } from './provider-faults.js';
import { seededRng } from './random.js';
import { type ChaosReport, relativeTimeline } from './report.js';
import { Timeline } from './timeline.js';
import {
  clientsYaml,
  isReadyForGeneration,
  type Kubectl,
  kubectlRetrying,
  providerYaml,
  redirectPatch,
} from './workload.js';

export interface ChaosOptions {
  clients: number;
  /** Length of the chaos phase. */
  durationMs: number;
  counts: PlanCounts;
  seed: number;
  namespace: string;
  workers: number;
  providerConcurrency: number;
  resyncMs: number;
  providerTimeoutMs: number;
  leaseSeconds: number;
  settleTimeoutMs: number;
  /** Longest a single kubectl command (with retries) may take. */
  kubectlTimeoutMs: number;
}

export interface ChaosEnv {
  adminKubeconfig: string;
  kubectl: Kubectl;
  provider: RegistrationServer;
  /** Restarts the real kube-apiserver; without it a proxy outage stands in (a shared control plane). */
  restartApiserver?: () => Promise<number>;
  /** A folder for the proxy's kubeconfig. */
  workDir: string;
  log: (line: string) => void;
  /** Receives each replica's whole log when it ends. */
  onOperatorLog?: (identity: string, text: string) => void;
}

const PROVIDER = 'iam';
const LEASE = 'oidc-client-operator-chaos';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (ms: number) => Number((ms / 1000).toFixed(1));

export async function runChaos(env: ChaosEnv, opts: ChaosOptions): Promise<ChaosReport> {
  const startedAt = new Date();
  const rng = seededRng(opts.seed);
  const timeline = new Timeline(env.log);
  const problems: string[] = [];
  const kc = new KubeConfig();
  kc.loadFromFile(env.adminKubeconfig);
  const rest = new KubeRest(kc);
  const { provider } = env;
  const ns = opts.namespace;
  let proxy: ApiserverProxy | undefined;
  let fleet: OperatorFleet | undefined;
  let operatorLog = '';
  const keepLog = (identity: string, text: string) => {
    operatorLog += text;
    env.onOperatorLog?.(identity, text);
  };

  try {
    // ---- setup
    const tSetup = Date.now();
    timeline.add('phase', 'setup');
    await kubectlRetrying(
      env.kubectl,
      ['-n', ns, 'apply', '-f', '-'],
      providerYaml(PROVIDER, provider.issuer, opts.providerConcurrency),
      opts.kubectlTimeoutMs,
    );
    proxy = await startApiserverProxy({
      adminKubeconfigPath: env.adminKubeconfig,
      kubeconfigPath: join(env.workDir, `chaos-proxy-${ns}.kubeconfig`),
    });
    fleet = new OperatorFleet({
      operatorKubeconfig: proxy.kubeconfigPath,
      adminKubeconfig: env.adminKubeconfig,
      namespace: ns,
      leaseName: LEASE,
      leaseDurationSeconds: opts.leaseSeconds,
      timeline,
      rng,
      onLog: keepLog,
      args: [
        `--namespaces=${ns}`,
        `--max-concurrent-reconciles=${opts.workers}`,
        `--resync-interval=${opts.resyncMs}ms`,
        `--provider-timeout=${opts.providerTimeoutMs}ms`,
        '--deletion-timeout=10m',
      ],
    });
    await fleet.start();
    const leader = await fleet.waitForLeader(60_000);
    env.log(`[chaos] operator replicas up, leader ${leader}; proxy ${proxy.url}`);
    const setupMs = Date.now() - tSetup;
    const requestStart = provider.requests.length;

    // ---- chaos
    const plan = planChaos({ clients: opts.clients, durationMs: opts.durationMs, counts: opts.counts, rng });
    const expect: Expectation = { present: new Map(), deleted: new Set() };
    const waveOf = new Map<string, Promise<void>>();
    const running = new Set<Promise<void>>();
    let kubectlRetries = 0;
    let apiserverBusy: Promise<void> | undefined;
    const apiserverDown: number[] = [];
    let streamsEnded = 0;
    const kubectlStep = async (args: string[], input?: string) => {
      const { attempts } = await kubectlRetrying(env.kubectl, args, input, opts.kubectlTimeoutMs);
      kubectlRetries += attempts - 1;
    };

    const execute = async (step: Step): Promise<void> => {
      switch (step.kind) {
        case 'wave': {
          const done = (async () => {
            timeline.add(
              'wave',
              `kubectl apply of ${step.names.length} OidcClients (${step.names[0]}..${step.names.at(-1)})`,
            );
            for (const n of step.names) expect.present.set(n, 0);
            await kubectlStep(['-n', ns, 'apply', '-f', '-'], clientsYaml(step.names, PROVIDER));
          })();
          for (const n of step.names) waveOf.set(n, done);
          return done;
        }
        case 'update': {
          await Promise.all(step.names.map((n) => waveOf.get(n)));
          timeline.add('update', `redirect URI of ${step.names.length} OidcClients`);
          for (const n of step.names) {
            const rev = (expect.present.get(n) ?? 0) + 1;
            expect.present.set(n, rev);
            await kubectlStep([
              '-n',
              ns,
              'patch',
              'oidcclient',
              n,
              '--type=merge',
              '-p',
              redirectPatch(n, rev),
            ]);
          }
          return;
        }
        case 'delete': {
          await Promise.all(step.names.map((n) => waveOf.get(n)));
          timeline.add('delete', `${step.names.length} OidcClients`);
          for (const n of step.names) {
            expect.present.delete(n);
            expect.deleted.add(n);
          }
          await kubectlStep([
            '-n',
            ns,
            'delete',
            'oidcclient',
            ...step.names,
            '--wait=false',
            '--ignore-not-found',
          ]);
          return;
        }
        case 'provider-fault': {
          const rule = faultRule(step.fault, step.times, rng, opts.providerTimeoutMs);
          provider.faults.add(rule);
          timeline.add('provider-fault', `${rule.label ?? `swallow-${rule.swallow}`} ×${step.times}`);
          return;
        }
        case 'sigkill': {
          if (!fleet?.killNow(step.which, 'sigkill', 'at a random moment'))
            timeline.add('phase', `no ${step.which} to kill`);
          return;
        }
        case 'sigkill-after-post': {
          timeline.add('provider-fault', 'SIGKILL of the leader after the next registration answer');
          provider.faults.add(
            afterPostRule(() => {
              fleet?.killNow('leader', 'sigkill-after-post', 'right after a registration POST was answered');
            }),
          );
          return;
        }
        case 'handover':
          await fleet?.handover();
          return;
        case 'apiserver-restart': {
          if (apiserverBusy) return apiserverBusy;
          apiserverBusy = (async () => {
            const t = Date.now();
            if (env.restartApiserver) {
              timeline.add('apiserver-down', 'kube-apiserver restart');
              await env.restartApiserver();
            } else {
              const ms = rng.int(3_000, 8_000);
              timeline.add('apiserver-down', `proxy outage for ${ms} ms (stands in for a restart)`);
              await proxy?.outage(ms);
            }
            apiserverDown.push(secs(Date.now() - t));
            timeline.add('apiserver-up', `after ${secs(Date.now() - t)} s`);
          })().finally(() => {
            apiserverBusy = undefined;
          });
          return apiserverBusy;
        }
        case 'watch-expiry': {
          const n = proxy?.expireWatches() ?? 0;
          streamsEnded += n;
          timeline.add('watch-expiry', `${n} watch streams ended; resuming watches get 410 Expired`);
          return;
        }
      }
    };

    const tChaos = Date.now();
    timeline.add('phase', `chaos for ${secs(opts.durationMs)} s: ${plan.length} steps`);
    let lastProgress = 0;
    const progress = async (phase: string, total: number) => {
      const crs = await listClients(rest, ns).catch(() => undefined);
      const ready = crs?.filter(isReadyForGeneration).length;
      const store = (await provider.store.list()).length;
      const reqs = provider.requests.length - requestStart;
      const posts = provider.requests
        .slice(requestStart)
        .filter((r) => isRegistrationPost(r.method, r.path)).length;
      env.log(
        `[${phase} ${secs(Date.now() - tChaos)}/${secs(total)} s] Ready ${ready ?? '?'}/${crs?.length ?? '?'} (expected ${expect.present.size}) | provider ${reqs} requests, ${posts} POST, ${store} stored | leader ${fleet?.leaderIdentity || '-'} | replicas ${fleet?.running().length ?? 0}`,
      );
    };
    for (const step of plan) {
      while (Date.now() < tChaos + step.at) {
        if (Date.now() - lastProgress >= 10_000) {
          lastProgress = Date.now();
          await progress('chaos', opts.durationMs);
        }
        await sleep(Math.min(500, Math.max(0, tChaos + step.at - Date.now())));
      }
      const p: Promise<void> = execute(step)
        .catch((error: unknown) => {
          problems.push(
            `step ${step.kind} at ${secs(step.at)} s failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        })
        .finally(() => running.delete(p));
      running.add(p);
    }
    while (Date.now() < tChaos + opts.durationMs) {
      if (Date.now() - lastProgress >= 10_000) {
        lastProgress = Date.now();
        await progress('chaos', opts.durationMs);
      }
      await sleep(500);
    }
    await Promise.all([...running]);
    const chaosMs = Date.now() - tChaos;

    // ---- settle
    const tSettle = Date.now();
    timeline.add('phase', 'settle: faults cleared, replicas restored');
    provider.faults.clear();
    await fleet.ensureRunning();
    await fleet.waitForLeader(60_000).catch((e: unknown) => problems.push(String(e)));
    let allReadyAt: number | undefined;
    let timedOut = false;
    for (;;) {
      const crs = await listClients(rest, ns).catch(() => undefined);
      const secrets = await rest
        .get<{ items: { metadata?: { labels?: Record<string, string> } }[] }>(
          `/api/v1/namespaces/${ns}/secrets`,
          {
            labelSelector: 'app.kubernetes.io/managed-by=oidc-client-operator',
          },
        )
        .catch(() => undefined);
      if (crs && secrets) {
        const names = new Set(crs.map((c) => c.metadata.name as string));
        const ready = crs.filter(isReadyForGeneration).length;
        const lingering = [...expect.deleted].filter((n) => names.has(n)).length;
        const strays = secrets.items.filter(
          (s) => !names.has(s.metadata?.labels?.[`${GROUP}/client`] ?? ''),
        ).length;
        const done =
          ready === expect.present.size &&
          crs.length === expect.present.size &&
          lingering === 0 &&
          strays === 0;
        if (done) {
          allReadyAt = Date.now();
          env.log(
            `[settle] all ${ready} OidcClients Ready, deleted ones gone, after ${secs(Date.now() - tSettle)} s`,
          );
          break;
        }
        if (Date.now() - lastProgress >= 5_000) {
          lastProgress = Date.now();
          env.log(
            `[settle ${secs(Date.now() - tSettle)}/${secs(opts.settleTimeoutMs)} s] Ready ${ready}/${expect.present.size}, ${lingering} deleted still there, ${strays} Secrets without OidcClient | leader ${fleet.leaderIdentity || '-'}`,
          );
        }
      }
      if (Date.now() - tSettle > opts.settleTimeoutMs) {
        timedOut = true;
        problems.push(`settle: not every OidcClient Ready within ${secs(opts.settleTimeoutMs)} s`);
        break;
      }
      await sleep(1_000);
    }
    const settleMs = Date.now() - tSettle;

    // ---- verify
    const tVerify = Date.now();
    timeline.add('phase', 'verify');
    const requests = provider.requests.slice(requestStart);
    const snapshot = await collectSnapshot(rest, ns, () => provider.store.list());
    const tokenEndpoint = provider.tokenEndpoint;
    const tokenResults = await checkTokens(snapshot.secrets, tokenEndpoint);
    const health = await fleet.health();
    // A clean stop is part of the test: SIGTERM must end each replica within the grace period.
    await fleet.stop();
    const exits = [...fleet.exits];
    fleet = undefined;
    const { results, figures } = checkInvariants({
      expect,
      snapshot,
      requests,
      apiRequests: proxy.requests,
      timeline: timeline.events,
      exits,
      runMs: chaosMs + settleMs,
      resyncMs: opts.resyncMs,
      providerTimeoutMs: opts.providerTimeoutMs,
      operatorLog,
      health,
      tokenResults,
    });
    const verifyMs = Date.now() - tVerify;

    const byMethodAndStatus: Record<string, number> = {};
    const faulted: Record<string, number> = {};
    for (const r of requests) {
      const k = `${r.method} ${r.status || 'none'}`;
      byMethodAndStatus[k] = (byMethodAndStatus[k] ?? 0) + 1;
      if (r.fault) faulted[r.fault] = (faulted[r.fault] ?? 0) + 1;
    }
    const events: Record<string, number> = {};
    for (const e of timeline.events) if (e.kind !== 'phase') events[e.kind] = (events[e.kind] ?? 0) + 1;
    const exitCauses: Record<string, number> = {};
    for (const e of exits) exitCauses[e.cause] = (exitCauses[e.cause] ?? 0) + 1;
    const apiRequests = proxy.requests;
    const ok = problems.length === 0 && results.every((r) => r.ok);
    return {
      ok,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      config: {
        clients: opts.clients,
        minutes: Number((opts.durationMs / 60_000).toFixed(2)),
        seed: opts.seed,
        workers: opts.workers,
        providerMaxConcurrentRequests: opts.providerConcurrency,
        resyncSeconds: secs(opts.resyncMs),
        providerTimeoutMs: opts.providerTimeoutMs,
        leaseSeconds: opts.leaseSeconds,
        replicas: 2,
        apiserverRestart: env.restartApiserver ? 'real restart' : 'proxy outage',
        counts: opts.counts,
        cpus: availableParallelism(),
        node: process.versions.node,
      },
      seconds: {
        setup: secs(setupMs),
        chaos: secs(chaosMs),
        settle: secs(settleMs),
        verify: secs(verifyMs),
        total: secs(Date.now() - startedAt.getTime()),
      },
      settle: { allReadyAfterSeconds: allReadyAt ? secs(allReadyAt - tSettle) : null, timedOut },
      chaos: {
        events,
        faultedProviderRequests: faulted,
        operatorExits: exitCauses,
        apiserverDownSeconds: apiserverDown,
        watchExpiries: {
          streamsEnded,
          expired410: apiRequests.filter((r) => r.injected === 'expired').length,
          relists: apiRequests.filter(
            (r) =>
              r.method === 'GET' &&
              !r.watch &&
              /\/(oidcclients|secrets|oidcproviders|clusteroidcproviders)$/.test(r.path),
          ).length,
        },
        kubectlRetries,
      },
      provider: { requests: requests.length, byMethodAndStatus, storeClients: snapshot.store.length },
      apiserver: {
        operatorRequests: apiRequests.length,
        operatorWrites: apiRequests.filter((r) => r.method !== 'GET' && !r.injected).length,
      },
      invariants: results,
      figures: { ...figures, orphans: figures.orphans.slice(0, 300) },
      problems,
      timeline: relativeTimeline(timeline.events, timeline.t0),
    };
  } finally {
    await fleet?.stop().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    await rest.close();
  }
}

export async function listClients(rest: KubeRest, namespace: string): Promise<OidcClient[]> {
  const items: OidcClient[] = [];
  let cont: string | undefined;
  do {
    const page = await rest.get<{ items: OidcClient[]; metadata: { continue?: string } }>(
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/oidcclients`,
      { limit: 500, continue: cont },
    );
    items.push(...page.items);
    cont = page.metadata.continue || undefined;
  } while (cont);
  return items;
}
