// Control by the operator's users, on real parts (kube-apiserver, kubectl, node-oidc-provider with
// IAM routes): the check-now annotation, spec.refreshInterval, managementPolicy ObserveOnly and the
// paused annotation. Every test counts what reached the provider (its request log) and reads what
// Kubernetes holds.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CHECK_NOW = 'oidc.dcr-operator.dev/check-now';
const PAUSED = 'oidc.dcr-operator.dev/paused';

describe('OidcClient control: check-now, refreshInterval, ObserveOnly, pause', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const k = async (...args: string[]) => {
    const res = await kubectl(binDir, kubeconfigPath, args, { namespace: ns.name });
    expect(res.code, res.stderr).toBe(0);
    return res.stdout;
  };
  /** Requests the provider received since `from` (an index into its log), optionally for one client. */
  const since = (from: number, clientId?: string) =>
    server.requests.slice(from).filter((q) => clientId === undefined || q.path.endsWith(`/${clientId}`));
  const count = (from: number, method: string, clientId?: string) =>
    since(from, clientId).filter((q) => q.method === method).length;
  const registrationPosts = (from: number) =>
    since(from).filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
  const redirects = async (id: string) => (await server.store.get(id))?.metadata.redirect_uris;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'control');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
    // The default period is long: every GET below is a check-now, a refreshInterval or a spec change.
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      resyncIntervalMs: 600_000,
      minRefreshIntervalMs: 1_000,
      deletionTimeoutMs: 10_000,
    });
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('check-now repairs an out-of-band change at once with one GET and one PUT, once per value', async () => {
    await apply(clientYaml('now', 'iam', '  redirectUris: [https://now.example.org/cb]\n'));
    const id = (await r.waitReady('now')).status?.clientId as string;
    await server.store.update(id, { redirect_uris: ['https://evil.example.org/steal'] });
    const mark = server.requests.length;
    const started = Date.now();
    await k('annotate', 'oidcclient', 'now', `${CHECK_NOW}=first`);
    await waitFor(async () => JSON.stringify(await redirects(id)) === '["https://now.example.org/cb"]', {
      description: 'redirect URIs repaired at the provider',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const repairMs = Date.now() - started;
    const cr = await waitFor(
      async () => {
        const c = await r.client('now');
        return c?.status?.checkNowHandled === 'first' ? c : undefined;
      },
      { description: 'status.checkNowHandled = first', timeoutMs: 5_000 },
    );
    expect(r.condition(cr, 'Ready')?.status).toBe('True');
    await sleep(1_000);
    expect({
      GET: count(mark, 'GET', id),
      PUT: count(mark, 'PUT', id),
      POST: registrationPosts(mark),
    }).toEqual({
      GET: 1,
      PUT: 1,
      POST: 0,
    });
    expect((await r.events('now')).some((e) => e.reason === 'DriftCorrected')).toBe(true);
    console.log(`check-now: drift repaired ${repairMs} ms after kubectl annotate`);

    // The same value again (and another annotation change that wakes the client): nothing.
    const again = server.requests.length;
    await k('annotate', '--overwrite', 'oidcclient', 'now', `${CHECK_NOW}=first`, 'note=unrelated');
    await sleep(1_500);
    expect(since(again, id)).toEqual([]);

    // A new value with nothing drifted: one GET, no PUT.
    const third = server.requests.length;
    await k('annotate', '--overwrite', 'oidcclient', 'now', `${CHECK_NOW}=second`);
    await waitFor(async () => (await r.client('now'))?.status?.checkNowHandled === 'second', {
      description: 'status.checkNowHandled = second',
      timeoutMs: 5_000,
    });
    await sleep(500);
    expect({ GET: count(third, 'GET', id), PUT: count(third, 'PUT', id) }).toEqual({ GET: 1, PUT: 0 });
  });

  it('refreshInterval: a 2s client is checked every ~2s, a client with the default is not', async () => {
    await apply(
      clientYaml('fast', 'iam', '  redirectUris: [https://fast.example.org/cb]\n  refreshInterval: 2s\n'),
    );
    await apply(clientYaml('slow', 'iam', '  redirectUris: [https://slow.example.org/cb]\n'));
    // The 2 s client keeps checking until it is deleted: delete it whatever happens here, or its
    // GETs would land in the next test's count of provider requests.
    try {
      const fast = (await r.waitReady('fast')).status?.clientId as string;
      const slow = (await r.waitReady('slow')).status?.clientId as string;
      await sleep(500);
      const mark = server.requests.length;
      const writes = op.writes.length;
      await sleep(7_000);
      const fastGets = count(mark, 'GET', fast);
      // 7 s at 2 s ±10%: three checks, give or take one at the edges of the window.
      expect(fastGets).toBeGreaterThanOrEqual(2);
      expect(fastGets).toBeLessThanOrEqual(4);
      expect(since(mark, slow)).toEqual([]);
      expect(count(mark, 'PUT')).toBe(0);
      // Checks that find nothing to change write nothing to Kubernetes (idle means idle).
      expect(op.writes.slice(writes).filter((w) => w.includes('fast'))).toEqual([]);
      const gaps = since(mark, fast)
        .filter((q) => q.method === 'GET')
        .map((q, i, all) => (i === 0 ? undefined : q.at - (all[i - 1]?.at ?? 0)))
        .filter((g): g is number => g !== undefined);
      for (const gap of gaps) {
        // 1.8–2.2 s scheduled, plus the time a loaded machine takes to get to it.
        expect(gap).toBeGreaterThan(1_500);
        expect(gap).toBeLessThan(3_000);
      }
      console.log(
        `refreshInterval 2s: ${fastGets} GETs in 7 s, gaps ${gaps.join(', ')} ms; default client: 0`,
      );
    } finally {
      await k('delete', 'oidcclient', 'fast', 'slow', '--timeout=20s');
    }
    // Out of bounds: the apiserver refuses it with the message `validate` prints.
    const refused = await kubectl(binDir, kubeconfigPath, ['apply', '-f', '-'], {
      namespace: ns.name,
      input: clientYaml('lazy', 'iam', '  refreshInterval: 200h\n'),
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('must be "0" (no periodic drift checks) or between 1s and 168h');
  });

  it('check-now keeps to the provider limits: one request at a time, backoff while it fails', async () => {
    await apply(providerYaml('narrow', server.issuer, '  maxConcurrentRequests: 1\n'));
    const names = ['n1', 'n2', 'n3'];
    for (const n of names)
      await apply(clientYaml(n, 'narrow', `  redirectUris: [https://${n}.example.org/cb]\n`));
    const ids = await Promise.all(names.map(async (n) => (await r.waitReady(n)).status?.clientId as string));
    // Slow GETs: checks asked for all at once must still reach the provider one at a time.
    server.faults.add({ method: 'GET', pathPattern: /client-registration\/.+/, delayMs: 600, times: 3 });
    const mark = server.requests.length;
    await k('annotate', 'oidcclient', ...names, `${CHECK_NOW}=all`);
    await waitFor(
      async () => {
        const crs = await Promise.all(names.map((n) => r.client(n)));
        return crs.every((c) => c?.status?.checkNowHandled === 'all');
      },
      { description: 'all three check-nows carried out', timeoutMs: 15_000 },
    );
    const gets = since(mark).filter((q) => q.method === 'GET' && ids.some((id) => q.path.endsWith(`/${id}`)));
    expect(gets).toHaveLength(3);
    const overlapping = gets.filter((a, i) =>
      gets.some(
        (b, j) => j > i && b.at < (a.answeredAt ?? Number.POSITIVE_INFINITY) && a.at < (b.answeredAt ?? 0),
      ),
    );
    expect(overlapping).toEqual([]);

    // The provider fails: the check is retried with the usual backoff, not in a tight loop, and is
    // carried out (recorded) only once the provider answers.
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\/.+/,
      status: 503,
      times: Number.POSITIVE_INFINITY,
    });
    const down = server.requests.length;
    await k('annotate', '--overwrite', 'oidcclient', 'n1', `${CHECK_NOW}=while-down`);
    await r.waitReady('n1', { status: 'False', reason: 'ProviderUnavailable' });
    await sleep(3_000);
    const failing = count(down, 'GET', ids[0]);
    expect((await r.client('n1'))?.status?.checkNowHandled).toBe('all');
    server.faults.clear();
    await waitFor(async () => (await r.client('n1'))?.status?.checkNowHandled === 'while-down', {
      description: 'check-now carried out once the provider answers',
      timeoutMs: 15_000,
    });
    expect(r.condition(await r.client('n1'), 'Ready')?.status).toBe('True');
    // Each attempt is one GET plus the provider client's own 2 retries, and the backoff between
    // attempts doubles (0.5, 1, 2 s): at most 4–5 attempts in the window; a tight loop would be hundreds.
    expect(failing).toBeGreaterThanOrEqual(3);
    expect(failing).toBeLessThanOrEqual(15);
    console.log(`check-now while the provider fails: ${failing} GETs in ~3.5 s`);
    expect(count(down, 'GET', ids[1]) + count(down, 'GET', ids[2])).toBe(0);
    await k('delete', 'oidcclient', ...names, '--timeout=20s');
  });

  it('ObserveOnly takes over credentials, reports drift without repairing it, and deletion leaves the client', async () => {
    const res = await fetch(server.registrationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'watched-app',
        redirect_uris: ['https://watched.example.org/cb'],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      }),
    });
    expect(res.status).toBe(201);
    const registered = (await res.json()) as Record<string, string>;
    const id = registered.client_id as string;
    const mark = server.requests.length;
    await apply(`apiVersion: v1
kind: Secret
metadata:
  name: watched-source
stringData:
  client.json: '${JSON.stringify(registered)}'
`);
    await apply(
      clientYaml(
        'watched',
        'iam',
        `  managementPolicy: ObserveOnly
  clientName: watched-app
  redirectUris: [https://watched.example.org/cb]
  adoptFrom:
    secretRef:
      name: watched-source
`,
      ),
    );
    const cr = await r.waitReady('watched', { reason: 'Adopted' });
    expect(cr.status?.clientId).toBe(id);
    expect(r.condition(cr, 'Managed')).toMatchObject({ status: 'False', reason: 'ObserveOnly' });
    expect(r.condition(cr, 'Synced')).toBeUndefined();
    expect((await r.secretValues('watched-oidc-client'))?.client_secret).toBe(registered.client_secret);

    await server.store.update(id, { redirect_uris: ['https://evil.example.org/steal'] });
    await k('annotate', 'oidcclient', 'watched', `${CHECK_NOW}=look`);
    const drifted = await waitFor(
      async () => {
        const c = await r.client('watched');
        return r.condition(c, 'Synced')?.reason === 'Drifted' ? c : undefined;
      },
      { description: 'Synced=False Drifted', timeoutMs: 10_000 },
    );
    expect(r.condition(drifted, 'Synced')?.status).toBe('False');
    expect(r.condition(drifted, 'Synced')?.message).toContain('redirect_uris');
    expect(r.condition(drifted, 'Ready')?.status).toBe('True');
    await sleep(1_000);
    expect(await redirects(id)).toEqual(['https://evil.example.org/steal']);
    // An unrelated wake-up without a check keeps the verdict.
    await k('annotate', 'oidcclient', 'watched', 'note=unrelated');
    await sleep(1_000);
    expect(r.condition(await r.client('watched'), 'Synced')?.reason).toBe('Drifted');

    await k('delete', 'oidcclient', 'watched', '--timeout=20s');
    expect(await server.store.get(id)).toBeDefined();
    const writesAtProvider = since(mark).filter((q) => ['PUT', 'DELETE', 'POST'].includes(q.method));
    expect(writesAtProvider).toEqual([]);
    expect(count(mark, 'GET', id)).toBeGreaterThanOrEqual(2); // the adoption's and the check-now's
    expect((await r.events('watched')).some((e) => e.reason === 'Orphaned')).toBe(true);
  });

  it('ObserveOnly without a registration to observe registers nothing and says why', async () => {
    const mark = server.requests.length;
    await apply(clientYaml('nothing', 'iam', '  managementPolicy: ObserveOnly\n'));
    const cr = await r.waitReady('nothing', { status: 'False', reason: 'NothingToObserve' });
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    expect(r.condition(cr, 'Ready')?.message).toContain('spec.adoptFrom');
    expect(registrationPosts(mark)).toBe(0);
    expect(await r.secret('nothing-oidc-client')).toBeUndefined();
    expect((await r.events('nothing')).some((e) => e.reason === 'NothingToObserve')).toBe(true);
    await k('delete', 'oidcclient', 'nothing', '--timeout=20s');
    expect(registrationPosts(mark)).toBe(0);
  });

  it('paused: no provider request on spec change, Secret deletion or CR deletion; un-pausing resumes', async () => {
    await apply(clientYaml('held', 'iam', '  redirectUris: [https://held.example.org/cb]\n'));
    const id = (await r.waitReady('held')).status?.clientId as string;
    const beforePause = op.writes.length;
    await k('annotate', 'oidcclient', 'held', `${PAUSED}=true`);
    const paused = await waitFor(
      async () => {
        const c = await r.client('held');
        return r.condition(c, 'Synced')?.reason === 'ReconcilePaused' ? c : undefined;
      },
      { description: 'Synced=False ReconcilePaused', timeoutMs: 5_000 },
    );
    expect(r.condition(paused, 'Synced')?.status).toBe('False');
    expect(r.condition(paused, 'Ready')).toMatchObject({ status: 'True', reason: 'Registered' });
    // A write is recorded when its response arrives, which on a loaded machine can be after the
    // apiserver already serves the result: wait for the paused status write itself before the mark.
    await waitFor(
      () =>
        op.writes
          .slice(beforePause)
          .some((w) => w.startsWith('PATCH') && w.endsWith('/oidcclients/held/status')),
      { description: 'the paused status write recorded', timeoutMs: 5_000 },
    );

    const mark = server.requests.length;
    const writes = op.writes.length;
    await apply(clientYaml('held', 'iam', '  redirectUris: [https://held.example.org/v2]\n'));
    await k('delete', 'secret', 'held-oidc-client');
    await sleep(2_500);
    expect(since(mark)).toEqual([]);
    expect(await r.secret('held-oidc-client')).toBeUndefined();
    expect(await redirects(id)).toEqual(['https://held.example.org/cb']);
    // No status write loop: nothing was written while paused (the condition was already there).
    expect(op.writes.slice(writes)).toEqual([]);

    await k('annotate', 'oidcclient', 'held', `${PAUSED}-`);
    const resumed = await r.waitReady('held');
    await waitFor(async () => JSON.stringify(await redirects(id)) === '["https://held.example.org/v2"]', {
      description: 'spec change sent after un-pausing',
      timeoutMs: 10_000,
    });
    await waitFor(async () => (await r.secret('held-oidc-client')) !== undefined, {
      description: 'application Secret restored',
      timeoutMs: 10_000,
    });
    expect(r.condition(await r.client('held'), 'Synced')).toBeUndefined();
    expect(resumed.status?.clientId).toBe(id);

    // Paused again, the deletion waits (as in Crossplane): no DELETE until un-paused.
    await k('annotate', 'oidcclient', 'held', `${PAUSED}=true`);
    await waitFor(async () => r.condition(await r.client('held'), 'Synced')?.reason === 'ReconcilePaused', {
      description: 'paused again',
      timeoutMs: 5_000,
    });
    const beforeDelete = server.requests.length;
    await k('delete', 'oidcclient', 'held', '--wait=false');
    await sleep(2_500);
    expect(since(beforeDelete)).toEqual([]);
    expect((await r.client('held'))?.metadata.deletionTimestamp).toBeTruthy();
    expect(await server.store.get(id)).toBeDefined();

    await k('annotate', 'oidcclient', 'held', `${PAUSED}-`);
    await waitFor(async () => (await r.client('held')) === undefined, {
      description: 'OidcClient deleted after un-pausing',
      timeoutMs: 15_000,
    });
    expect(await server.store.get(id)).toBeUndefined();
    expect(count(beforeDelete, 'DELETE', id)).toBe(1);
  });
});
