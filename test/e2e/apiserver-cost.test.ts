// What a new OidcClient costs the API server: the writes the operator sends (by verb and
// resource) for clients applied together in one `kubectl apply`, counted on the requests the real
// kube-apiserver answered, and nothing more afterwards. The budget is 4 writes per client: the
// finalizer and the registration-attempt marker in one patch, the two Secrets, one status write.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectlApply,
  type TestNamespace,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const COUNT = Number(process.env.COST_COUNT ?? 12);

/** "VERB resource[/subresource]" of a request line "METHOD /api/v1/namespaces/ns/secrets/x". */
function verbResource(line: string): string {
  const [method, path = ''] = line.split(' ');
  const m = /\/namespaces\/[^/]+\/([^/]+)(\/[^/]+(?:\/([^/]+))?)?$/.exec(path);
  if (!m) return `${method} ${path}`;
  // A GET of a collection is a LIST.
  const verb = method === 'GET' && !m[2] ? 'LIST' : method;
  return `${verb} ${m[1]}${m[3] ? `/${m[3]}` : ''}`;
}

function countBy(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of lines) out[verbResource(l)] = (out[verbResource(l)] ?? 0) + 1;
  return out;
}

describe('apiserver cost of new clients', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'cost');
    r = new OidcReader(kc, ns.name);
    await kubectlApply(binDir, kubeconfigPath, providerYaml('iam', server.issuer), ns.name);
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      workers: Number(process.env.COST_WORKERS ?? 4),
    });
    await sleep(500); // the provider is in the operator's cache before the first client
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it(`${COUNT} clients in one apply: at most 4 writes each, then none`, async () => {
    const start = op.writes.length;
    const requestsStart = op.requests.length;
    const yaml = Array.from({ length: COUNT }, (_, i) =>
      clientYaml(`c${i}`, 'iam', `  redirectUris: [https://c${i}.example.org/cb]\n`),
    ).join('---\n');
    const t0 = Date.now();
    await kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
    for (let i = 0; i < COUNT; i++) await r.waitReady(`c${i}`);
    // Per namespace, one access review serves 2 s of new clients, one list of other Secrets the
    // clients created in the second it was started or before (and at most 2 s old).
    const elapsed = Date.now() - t0;
    const reviewsAtMost = Math.ceil(elapsed / 2_000) + 1;
    const listsAtMost = Math.ceil(elapsed / 1_000) + 1;
    // Both Secrets of every client are there (the status is written last).
    for (let i = 0; i < COUNT; i++) {
      expect((await r.secretValues(`c${i}-oidc-client`))?.client_id).toBeTruthy();
      expect((await r.secretValues(`c${i}-oidc-registration`))?.registration_access_token).toBeTruthy();
    }
    await sleep(2_000); // late writes (Events are fire-and-forget) are counted too
    // The provider's own status (its conditions, once per provider) is not a client's cost.
    const all = op.writes.slice(start).filter((w) => !w.includes('/oidcproviders/'));
    // "May Secrets be created here?" is asked once per namespace and 2 s (a SelfSubjectAccessReview
    // is not stored), not per client.
    const reviews = all.filter((w) => w.endsWith('/selfsubjectaccessreviews'));
    expect(reviews.length).toBeGreaterThanOrEqual(1);
    expect(reviews.length).toBeLessThanOrEqual(reviewsAtMost);
    const writes = all.filter((w) => !reviews.includes(w));
    const byVerb = countBy(writes);
    // Reads: the informers' lists and watches started before; what is left is the reconciles'.
    const reads = op.requests
      .slice(requestsStart)
      .filter((q) => q.startsWith('GET ') && !q.includes('/oidcproviders'));
    console.info(
      `[cost] ${COUNT} new clients: ${writes.length} writes (${(writes.length / COUNT).toFixed(2)} per client): ${JSON.stringify(byVerb)}; ${reads.length} reads: ${JSON.stringify(countBy(reads))}`,
    );
    expect(byVerb).toEqual({
      'PATCH oidcclients': COUNT,
      'POST secrets': 2 * COUNT,
      'PATCH oidcclients/status': COUNT,
    });
    expect(
      server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')),
    ).toHaveLength(COUNT);
    // No GET per Secret name: one metadata-only list of the namespace's other Secrets answers
    // "taken by someone else?" for all clients created within 2 s.
    const readCounts = countBy(reads);
    expect(readCounts['GET secrets'] ?? 0).toBe(0);
    expect(readCounts['LIST secrets']).toBeGreaterThanOrEqual(1);
    expect(readCounts['LIST secrets']).toBeLessThanOrEqual(listsAtMost);

    // The finalizer is on every client; no registration-attempt marker claims a lost POST.
    for (let i = 0; i < COUNT; i++) {
      const cr = await r.client(`c${i}`);
      expect(cr?.metadata.finalizers).toContain('oidc.dcr-operator.dev/finalizer');
      expect(r.condition(cr, 'Ready')?.reason).toBe('Registered');
    }

    const reconciles = (await op.metrics.registry.getSingleMetricAsString('oidc_operator_reconcile_total'))
      .split('\n')
      .filter((l) => l.startsWith('oidc_operator_reconcile_total{'))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    console.info(
      `[cost] ${reconciles} reconciles, ${op.controller.ownWrites.ignored} own-write events ignored`,
    );
    const quiet = op.writes.length;
    await sleep(3_000);
    expect(op.writes.slice(quiet)).toEqual([]);
  });
});
