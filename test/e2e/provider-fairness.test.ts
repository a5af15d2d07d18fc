// Fair to tenants: a provider that accepts connections and never answers must not hold the shared
// workers. 50 OidcClients on such a provider, then 50 on a healthy registration server: the healthy
// ones are Ready about as fast as when they are alone (same worker count, measured here).
import { createServer, type Server, type Socket } from 'node:net';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, GROUP, providerYaml, VERSION } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const N = 50;
const WORKERS = 8;

/** Accepts TCP connections and never answers a byte (a hung backend behind a load balancer). */
async function startSilentServer(): Promise<{
  url: string;
  connections: () => number;
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  let total = 0;
  const server: Server = createServer((s) => {
    total++;
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
    s.resume(); // read and drop the request
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    connections: () => total,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function clientsYaml(prefix: string, provider: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    clientYaml(`${prefix}-${i}`, provider, `  redirectUris: [https://${prefix}-${i}.example.org/cb]\n`),
  );
}

describe('a provider that never answers does not slow down the others', () => {
  // One healthy server per side, so each side's POSTs can be counted.
  let healthyAlone: RegistrationServer;
  let healthyMixed: RegistrationServer;
  let silent: Awaited<ReturnType<typeof startSilentServer>>;
  const namespaces: TestNamespace[] = [];
  const operators: InProcessOperator[] = [];
  const custom = kc.makeApiClient(CustomObjectsApi);

  async function list(namespace: string): Promise<OidcClient[]> {
    const res = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'oidcclients',
    })) as { items: OidcClient[] };
    return res.items;
  }

  const readyOf = (items: OidcClient[], prefix: string) =>
    items.filter(
      (c) =>
        c.metadata.name?.startsWith(`${prefix}-`) &&
        c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
    ).length;

  /** A namespace with both providers and an operator of its own (same worker count on both sides). */
  async function side(label: string, healthy: RegistrationServer) {
    const ns = await createTestNamespace(kc, `fairness-${label}`);
    namespaces.push(ns);
    await kubectlApply(
      binDir,
      kubeconfigPath,
      [providerYaml('healthy', healthy.issuer), providerYaml('silent', silent.url)].join('---\n'),
      ns.name,
    );
    const op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      workers: WORKERS,
      providerRequestTimeoutMs: 2_000,
      providerRetries: 2,
    });
    operators.push(op);
    return { ns: ns.name, op };
  }

  /** Applies the healthy clients and resolves with the ms until all of them are Ready. */
  async function timeHealthy(namespace: string): Promise<number> {
    const started = Date.now();
    await kubectlApply(binDir, kubeconfigPath, clientsYaml('ok', 'healthy', N).join('---\n'), namespace);
    await waitFor(async () => readyOf(await list(namespace), 'ok') === N, {
      description: `${N} healthy clients Ready in ${namespace}`,
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    return Date.now() - started;
  }

  beforeAll(async () => {
    [healthyAlone, healthyMixed, silent] = await Promise.all([
      startRegistrationServer({ mode: 'iam' }),
      startRegistrationServer({ mode: 'iam' }),
      startSilentServer(),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled(operators.map((o) => o.stop()));
    await Promise.allSettled(namespaces.map((n) => n.cleanup()));
    await Promise.allSettled([healthyAlone?.close(), healthyMixed?.close(), silent?.close()]);
  });

  it('the healthy provider’s 50 clients are Ready within 20 % of the time they take alone', async () => {
    const alone = await side('alone', healthyAlone);
    const mixed = await side('mixed', healthyMixed);
    // The silent provider's clients go first and take what workers they may.
    await kubectlApply(binDir, kubeconfigPath, clientsYaml('stuck', 'silent', N).join('---\n'), mixed.ns);
    await waitFor(() => mixed.op.controller.queue.busy > 0, {
      description: 'the silent provider’s clients to be taken up by workers',
      timeoutMs: 20_000,
      intervalMs: 50,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const held = mixed.op.controller.queue.busy;
    // Both sides measured at the same time, so the machine's load weighs on both alike.
    const [aloneMs, mixedMs] = await Promise.all([timeHealthy(alone.ns), timeHealthy(mixed.ns)]);
    console.info(
      `[fairness] ${N} healthy clients, ${WORKERS} workers each: alone ${aloneMs} ms, next to ${N} clients of a silent provider (holding ${held} workers) ${mixedMs} ms (${Math.round((mixedMs / aloneMs) * 100)} %)`,
    );
    const posts = (server: RegistrationServer) =>
      server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
    expect(posts(healthyAlone)).toBe(N);
    expect(posts(healthyMixed)).toBe(N);
    expect(silent.connections()).toBeGreaterThan(0);
    // At most its share: half of the workers (two providers), never all of them.
    expect(held).toBeLessThanOrEqual(WORKERS / 2);
    expect(mixedMs).toBeLessThanOrEqual(aloneMs * 1.2);

    // Its clients say why they wait.
    const stuckReasons = async () =>
      (await list(mixed.ns))
        .filter((c) => c.metadata.name?.startsWith('stuck-'))
        .map((c) => c.status?.conditions?.find((x) => x.type === 'Ready')?.reason);
    await waitFor(async () => (await stuckReasons()).includes('ProviderUnavailable'), {
      description: 'a client of the silent provider to report ProviderUnavailable',
      timeoutMs: 30_000,
    });
    // Once it counts as down (3 failures in a row and no success for 10 s) it holds one worker.
    const busyAfter = await waitFor(
      () => {
        const busy = mixed.op.controller.queue.busy;
        return busy <= 1 ? { busy } : undefined;
      },
      { description: 'the silent provider down to one worker', timeoutMs: 30_000 },
    ).then((x) => x.busy);
    const reasons = await stuckReasons();
    console.info(
      `[fairness] after the first timeouts: ${busyAfter} worker(s) busy; ${reasons.filter((x) => x === 'ProviderUnavailable').length} stuck clients report ProviderUnavailable`,
    );
    expect(busyAfter).toBeLessThanOrEqual(1);
    expect(reasons.filter((x) => x === 'Registered')).toEqual([]);
  });
});
