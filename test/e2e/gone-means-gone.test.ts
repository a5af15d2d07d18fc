// "Gone means gone": a 404 on a management call re-registers only when the provider confirms it
// (an OAuth error body, or the client credentials no longer authenticate at the token endpoint).
// An ingress answering every call with an HTML 404 during maintenance must not make the operator
// register a second client. Real kube-apiserver, real node-oidc-provider behind fault injection.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const RESYNC_MS = 1_500;
// The scenario: a minute of maintenance pages.
const MAINTENANCE_MS = 60_000;
const MAINTENANCE_PAGE =
  '<!DOCTYPE html><html><body><h1>404 Not Found</h1><p>Down for maintenance</p></body></html>';

describe('a 404 from the provider re-registers only when confirmed', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const isPost = (q: { method: string; path: string }) =>
    q.method === 'POST' && q.path.endsWith('/client-registration');
  const managementGet = (id: string) => (q: { method: string; path: string }) =>
    q.method === 'GET' && q.path.endsWith(`/client-registration/${id}`);

  beforeAll(async () => {
    const kc = kubeConfigFromFile(kubeconfigPath);
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'gone-means-gone');
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      resyncIntervalMs: RESYNC_MS,
      providerRetries: 0,
    });
    await apply(providerYaml('iam', server.issuer));
    await apply(clientYaml('web', 'iam', '  redirectUris: [https://web.example.org/cb]\n'));
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('an ingress answering HTML 404 (the token endpoint too) for many drift checks: no new client', async () => {
    const ready = await r.waitReady('web');
    const clientId = ready.status?.clientId as string;
    const start = server.requests.length;
    // The whole host is in maintenance: management calls and the token endpoint (so the credentials
    // probe cannot tell either); registration POSTs are left alone, so a re-registration would show.
    server.faults.add({
      pathPattern: new RegExp(`/client-registration/${clientId}$|^/token$`),
      status: 404,
      body: MAINTENANCE_PAGE,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      times: Number.POSITIVE_INFINITY,
    });
    let during: typeof server.requests = [];
    try {
      const cr = await r.waitReady('web', {
        status: 'False',
        reason: 'UnexpectedResponse',
        timeoutMs: 15_000,
      });
      const message = r.condition(cr, 'Ready')?.message ?? '';
      expect(message).toContain('HTTP 404, text/html');
      expect(message).toContain(`client ${clientId} is not registered again`);
      expect(message).not.toContain('maintenance');
      await new Promise((resolve) => setTimeout(resolve, MAINTENANCE_MS));
      during = server.requests.slice(start);
    } finally {
      server.faults.clear();
    }
    const gets = during.filter(managementGet(clientId));
    console.info(
      `[gone-means-gone] ${MAINTENANCE_MS / 1000}+ s of HTML 404s: ${gets.length} management GETs, ${during.filter((q) => q.path === '/token').length} probes, ${during.filter(isPost).length} POSTs`,
    );
    // Several drift checks ran into the page, each probed the credentials, none registered anew.
    expect(gets.length).toBeGreaterThanOrEqual(4);
    expect(gets.every((q) => q.status === 404)).toBe(true);
    expect(during.filter((q) => q.path === '/token').length).toBeGreaterThanOrEqual(1);
    expect(during.filter(isPost)).toEqual([]);
    expect(await server.store.list()).toHaveLength(1);
    expect((await r.events('web')).some((e) => e.reason === 'ReRegistered')).toBe(false);

    // Maintenance over: the same client is Ready again at its next retry (backoff has grown to
    // about a minute by now), still without a POST.
    const back = await r.waitReady('web', { timeoutMs: 100_000 });
    expect(back.status?.clientId).toBe(clientId);
    expect((await r.secretValues('web-oidc-registration'))?.client_id).toBe(clientId);
    expect(server.requests.slice(start).filter(isPost)).toEqual([]);
  }, 240_000);

  it('a JSON 404 for a client the token endpoint no longer knows re-registers once', async () => {
    const ready = await r.waitReady('web');
    const oldId = ready.status?.clientId as string;
    const start = server.requests.length;
    await server.store.delete(oldId);
    // Not an OAuth error body (no error code), so the operator asks the token endpoint first.
    server.faults.add({
      method: 'GET',
      pathPattern: new RegExp(`/client-registration/${oldId}$`),
      status: 404,
      body: { status: 404, message: 'client not found' },
      times: Number.POSITIVE_INFINITY,
    });
    try {
      const next = await waitFor(
        async () => {
          const c = await r.client('web');
          return c?.status?.clientId !== oldId && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
        },
        { description: 'a new client after a confirmed 404', timeoutMs: 20_000 },
      );
      const since = server.requests.slice(start);
      expect(since.filter(isPost)).toHaveLength(1);
      expect(since.some((q) => q.path === '/token')).toBe(true);
      const events = await r.events('web');
      expect(events.some((e) => e.reason === 'ReRegistered' && e.message.includes(oldId))).toBe(true);
      const stored = await server.store.list();
      expect(stored.map((c) => c.clientId)).toEqual([next.status?.clientId]);
      expect((await r.secretValues('web-oidc-client'))?.client_id).toBe(next.status?.clientId);
    } finally {
      server.faults.clear();
    }
  });
});
