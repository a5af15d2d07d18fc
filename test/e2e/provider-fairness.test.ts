// Fair to tenants: a provider that accepts connections and never answers must not hold the shared
// workers. 50 OidcClients on such a provider next to 50 on a healthy registration server: the
// healthy ones are Ready about as fast as when they are alone (same worker count, measured here).
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

/** Interleaves two lists, so the queue sees both tenants' keys mixed as they arrive. */
function interleave<T>(a: T[], b: T[]): T[] {
  return a.flatMap((x, i) => (b[i] === undefined ? [x] : [x, b[i] as T]));
}

describe('a provider that never answers does not slow down the others', () => {
  let healthy: RegistrationServer;
  let silent: Awaited<ReturnType<typeof startSilentServer>>;
  const namespaces: TestNamespace[] = [];
  const operators: InProcessOperator[] = [];
  const custom = kc.makeApiClient(CustomObjectsApi);

  async function readyCount(namespace: string, prefix: string): Promise<number> {
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'oidcclients',
    })) as { items: OidcClient[] };
    return list.items.filter(
      (c) =>
        c.metadata.name?.startsWith(`${prefix}-`) &&
        c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
    ).length;
  }

  /** A fresh namespace and operator (same worker count); applies the docs; ms until `prefix` are all Ready. */
  async function timeToReady(label: string, docs: string[], prefix: string): Promise<number> {
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
      providerRequestTimeoutMs: 3_000,
      providerRetries: 2,
    });
    operators.push(op);
    const started = Date.now();
    await kubectlApply(binDir, kubeconfigPath, docs.join('---\n'), ns.name);
    await waitFor(async () => (await readyCount(ns.name, prefix)) === N, {
      description: `${N} ${prefix} clients Ready (${label})`,
      timeoutMs: 120_000,
      intervalMs: 100,
    });
    return Date.now() - started;
  }

  beforeAll(async () => {
    [healthy, silent] = await Promise.all([startRegistrationServer({ mode: 'iam' }), startSilentServer()]);
  });

  afterAll(async () => {
    await Promise.allSettled(operators.map((o) => o.stop()));
    await Promise.allSettled(namespaces.map((n) => n.cleanup()));
    await Promise.allSettled([healthy?.close(), silent?.close()]);
  });

  it('the healthy provider’s 50 clients are Ready within 20 % of the time they take alone', async () => {
    const alone = await timeToReady('alone', clientsYaml('ok', 'healthy', N), 'ok');
    const postsAlone = healthy.requests.filter((q) => q.method === 'POST').length;
    const mixed = await timeToReady(
      'mixed',
      interleave(clientsYaml('ok', 'healthy', N), clientsYaml('stuck', 'silent', N)),
      'ok',
    );
    const op = operators[1] as InProcessOperator;
    const busy = op.controller.queue.busy;
    console.info(
      `[fairness] ${N} healthy clients, ${WORKERS} workers: alone ${alone} ms, next to ${N} on a silent provider ${mixed} ms (${Math.round((mixed / alone) * 100)} %); silent provider got ${silent.connections()} connections; workers busy at the end: ${busy}`,
    );
    expect(healthy.requests.filter((q) => q.method === 'POST').length - postsAlone).toBe(N);
    // The silent provider was really tried (and held what it was allowed to).
    expect(silent.connections()).toBeGreaterThan(0);
    expect(mixed).toBeLessThanOrEqual(alone * 1.2);
    // And its clients say why they are not Ready.
    const stuck = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: (namespaces[1] as TestNamespace).name,
      plural: 'oidcclients',
      name: 'stuck-0',
    })) as OidcClient;
    expect(stuck.status?.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
  });
});
