// Failure behaviour on real parts (kube-apiserver + node-oidc-provider): a provider failing every
// POST gets a bounded number of requests (backoff and Retry-After hold, the operator's own writes
// do not wake the key), a registration without RFC 7592 credentials is kept instead of repeated,
// a requested re-registration never leaves the application without working credentials,
// finalizers never get stuck, and deletionPolicy: Orphan keeps the token for a later adoption.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, credentialsAuthenticate, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const postTimes = (server: RegistrationServer) =>
  server.requests
    .filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration'))
    .map((q) => q.at);
const posts = (server: RegistrationServer) => postTimes(server).length;
const gaps = (times: number[]) => times.slice(1).map((t, i) => t - (times[i] as number));

describe('a provider failing every registration', () => {
  let failing: RegistrationServer;
  let throttling: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);

  beforeAll(async () => {
    [failing, throttling] = await Promise.all([startRegistrationServer(), startRegistrationServer()]);
    ns = await createTestNamespace(kc, 'backoff');
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name, resyncIntervalMs: 2_000 });
    await apply(providerYaml('failing', failing.issuer));
    await apply(providerYaml('throttling', throttling.issuer));
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await Promise.all([failing?.close(), throttling?.close()]);
  });

  it('gets per-client backoff (500) and Retry-After (429) honoured, one Event per kind; a user edit wakes at once', async () => {
    failing.faults.add({ method: 'POST', status: 500, body: { error: 'server_error' }, times: Infinity });
    throttling.faults.add({
      method: 'POST',
      status: 429,
      headers: { 'retry-after': '20' },
      body: { error: 'slow_down' },
      times: Infinity,
    });
    await apply(clientYaml('storm', 'failing', `  redirectUris: [https://storm.example.org/cb]\n`));
    await apply(clientYaml('polite', 'throttling', `  redirectUris: [https://polite.example.org/cb]\n`));
    await waitFor(() => posts(failing) > 0 && posts(throttling) > 0, {
      description: 'first POSTs',
      timeoutMs: 10_000,
    });
    await sleep(42_000);

    // 500 (ambiguous for a create: not retried inside the call): 0.5 s doubling, ±25 % jitter.
    const storm = postTimes(failing);
    const first = storm[0] as number;
    const inWindow = storm.filter((t) => t - first <= 40_000);
    expect(inWindow.length, `POSTs in 40 s: ${inWindow.length}`).toBeLessThanOrEqual(7);
    expect(inWindow.length).toBeGreaterThanOrEqual(5);
    // Each wait about doubles (x1.2 at least with the jitter; 200 ms allowed for processing).
    const stormGaps = gaps(storm);
    for (let i = 1; i < stormGaps.length; i++)
      expect(stormGaps[i], `gaps ${stormGaps.join(', ')}`).toBeGreaterThan(
        (stormGaps[i - 1] as number) - 200,
      );
    expect(stormGaps.at(-1)).toBeGreaterThan(6_000);
    const stormCr = await r.waitReady('storm', { status: 'False', reason: 'ProviderUnavailable' });
    expect(r.condition(stormCr, 'Reconciling')?.status).toBe('True');
    // One Event per failure kind: the retried registration is one Event with a count.
    const series = (await r.eventSeries('storm')).filter((e) => e.reason === 'RegistrationRetried');
    expect(series).toHaveLength(1);
    expect(series[0]?.count).toBeGreaterThanOrEqual(2);
    expect((await r.eventSeries('storm')).length).toBeLessThanOrEqual(2);

    // 429 with Retry-After: 20 s, inside the call (2 retries) and across reconciles.
    const polite = postTimes(throttling);
    console.info(
      `[backoff] 500: ${storm.length} POSTs in ${Math.round((Date.now() - first) / 1000)} s, gaps ${stormGaps.join(', ')} ms; RegistrationRetried Event count ${series[0]?.count}; 429 Retry-After 20: ${polite.length} POSTs, gaps ${gaps(polite).join(', ')} ms`,
    );
    expect(polite.length, `429 POSTs at ${gaps(polite).join(', ')} ms apart`).toBeLessThanOrEqual(3);
    expect(polite.length).toBeGreaterThanOrEqual(2);
    for (const g of gaps(polite)) expect(g).toBeGreaterThanOrEqual(19_900);
    await r.waitReady('polite', { status: 'False', reason: 'ProviderUnavailable' });

    // The provider recovers; the backoff is long by now, but a user's edit wakes the client at once.
    failing.faults.clear();
    const before = posts(failing);
    const t0 = Date.now();
    const annotate = await kubectl(
      binDir,
      kubeconfigPath,
      ['annotate', 'oidcclient', 'storm', 'example.org/touched=yes'],
      { namespace: ns.name },
    );
    expect(annotate.code, annotate.stderr).toBe(0);
    await r.waitReady('storm', { timeoutMs: 10_000 });
    expect(Date.now() - t0).toBeLessThan(8_000);
    expect(posts(failing)).toBe(before + 1);
    throttling.faults.clear();
  });
});

describe('a provider without RFC 7592 management', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);

  beforeAll(async () => {
    server = await startRegistrationServer({ omitManagementCredentials: true });
    ns = await createTestNamespace(kc, 'unmanaged');
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name, resyncIntervalMs: 1_000 });
    await apply(providerYaml('plain', server.issuer));
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('keeps the registration (one POST), says it cannot manage it, and lets go on deletion', async () => {
    await apply(clientYaml('lone', 'plain', `  redirectUris: [https://lone.example.org/cb]\n`));
    const cr = await r.waitReady('lone');
    const id = cr.status?.clientId as string;
    expect(r.condition(cr, 'Managed')).toMatchObject({ status: 'False', reason: 'ManagementUnsupported' });
    const app = await r.secretValues('lone-oidc-client');
    expect(app?.client_id).toBe(id);
    expect(await credentialsAuthenticate(server.tokenEndpoint, id, app?.client_secret as string)).toBe(true);
    const mgmt = await r.secret('lone-oidc-registration');
    expect(mgmt?.metadata?.annotations?.['oidc.dcr-operator.dev/management']).toBe('unsupported');
    const mgmtValues = await r.secretValues('lone-oidc-registration');
    expect(mgmtValues?.client_secret).toBe(app?.client_secret);
    expect(mgmtValues).not.toHaveProperty('registration_access_token');
    expect((await r.events('lone')).some((e) => e.reason === 'ManagementUnsupported')).toBe(true);

    // Several drift intervals: nothing more reaches the provider.
    await sleep(4_000);
    expect(server.requests.filter((q) => q.path.startsWith('/iam/'))).toHaveLength(1);

    // A spec change cannot be sent: a clear condition, no request.
    await apply(
      clientYaml(
        'lone',
        'plain',
        `  redirectUris: [https://lone.example.org/cb, https://lone.example.org/2]\n`,
      ),
    );
    const changed = await waitFor(
      async () => {
        const c = await r.client('lone');
        return c?.status?.observedGeneration === 2 && r.condition(c, 'Synced')?.status === 'False'
          ? c
          : undefined;
      },
      { description: 'Synced=False after a spec change', timeoutMs: 10_000 },
    );
    expect(r.condition(changed, 'Synced')?.reason).toBe('ManagementUnsupported');
    expect(r.condition(changed, 'Ready')?.status).toBe('True');
    expect(server.requests.filter((q) => q.path.startsWith('/iam/'))).toHaveLength(1);

    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'lone', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(server.requests.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect(await server.store.get(id)).toBeDefined();
    const stays = await waitFor(
      async () =>
        (await r.events('lone')).find(
          (e) => e.reason === 'ManagementUnsupported' && e.message.includes('stays registered'),
        ),
      { description: 'a Warning saying the client stays at the provider', timeoutMs: 5_000 },
    );
    expect(stays.type).toBe('Warning');
  });
});

describe('re-registration on request, deletion and Orphan', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  const apply = (yaml: string, namespace = ns.name) => kubectlApply(binDir, kubeconfigPath, yaml, namespace);
  const startOp = (namespace = ns.name) =>
    startInProcessOperator({
      kubeconfigPath,
      namespace,
      resyncIntervalMs: 600_000,
      deletionTimeoutMs: 10_000,
    });

  beforeAll(async () => {
    server = await startRegistrationServer();
    ns = await createTestNamespace(kc, 'resilience');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
    op = await startOp();
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  // A failed test must not leave its faults to the next one.
  afterEach(() => server.faults.clear());

  it('keeps the old working credentials while the new registration fails, then finishes exactly once', async () => {
    await apply(clientYaml('renew', 'iam', `  redirectUris: [https://renew.example.org/cb]\n`));
    const cr = await r.waitReady('renew');
    const oldId = cr.status?.clientId as string;
    const oldApp = await r.secretValues('renew-oidc-client');
    server.faults.add({
      method: 'POST',
      pathPattern: /\/client-registration$/,
      status: 500,
      times: Infinity,
    });
    const created = () =>
      server.requests.filter(
        (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.status === 201,
      ).length;
    const createdBefore = created();
    await kubectl(
      binDir,
      kubeconfigPath,
      ['annotate', 'oidcclient', 'renew', 'oidc.dcr-operator.dev/reregister=v2'],
      {
        namespace: ns.name,
      },
    );
    await r.waitReady('renew', { status: 'False', reason: 'ProviderUnavailable', timeoutMs: 15_000 });
    // The application still has the old client's credentials, and they work.
    const during = await r.secretValues('renew-oidc-client');
    expect(during?.client_id).toBe(oldId);
    expect(await credentialsAuthenticate(server.tokenEndpoint, oldId, oldApp?.client_secret as string)).toBe(
      true,
    );
    // The old token is kept aside, not thrown away.
    const mgmt = await r.secretValues('renew-oidc-registration');
    expect(mgmt?.previous_client_id).toBe(oldId);
    expect(mgmt?.previous_registration_access_token).toBeTruthy();
    expect(await server.store.get(oldId)).toBeDefined();

    // A crash now, then the provider recovers: exactly one new client, the old one deleted.
    await op?.stop();
    server.faults.clear();
    op = await startOp();
    const renewed = await waitFor(
      async () => {
        const c = await r.client('renew');
        return c?.status?.clientId !== oldId && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
      },
      { description: 'the new client Ready', timeoutMs: 20_000 },
    );
    const newId = renewed.status?.clientId as string;
    expect(created()).toBe(createdBefore + 1);
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'old client deleted at the provider',
      timeoutMs: 10_000,
    });
    const app = await r.secretValues('renew-oidc-client');
    expect(app?.client_id).toBe(newId);
    expect(await credentialsAuthenticate(server.tokenEndpoint, newId, app?.client_secret as string)).toBe(
      true,
    );
    const after = await r.secretValues('renew-oidc-registration');
    expect(after).not.toHaveProperty('previous_client_id');
    expect(after?.client_id).toBe(newId);
    const event = (await r.events('renew')).find((e) => e.reason === 'PreviousClientDeleted');
    expect(event?.message).toContain(`${oldId} was deleted at the provider; client ${newId} is in use`);
  });

  it('finishes a re-registration interrupted before the old client was deleted', async () => {
    await apply(clientYaml('renew2', 'iam', `  redirectUris: [https://renew2.example.org/cb]\n`));
    const oldId = (await r.waitReady('renew2')).status?.clientId as string;
    // The DELETE of the old client fails: the new client is stored and published meanwhile.
    server.faults.add({
      method: 'DELETE',
      pathPattern: new RegExp(`/client-registration/${oldId}$`),
      status: 503,
      times: Infinity,
    });
    const before = posts(server);
    await kubectl(
      binDir,
      kubeconfigPath,
      ['annotate', 'oidcclient', 'renew2', 'oidc.dcr-operator.dev/reregister=v2'],
      {
        namespace: ns.name,
      },
    );
    const pending = await waitFor(
      async () => {
        const m = await r.secretValues('renew2-oidc-registration');
        return m?.previous_client_id === oldId && m.client_id && m.client_id !== oldId ? m : undefined;
      },
      { description: 'new client stored beside the previous one', timeoutMs: 15_000 },
    );
    await waitFor(async () => (await r.secretValues('renew2-oidc-client'))?.client_id === pending.client_id, {
      description: 'application Secret switched to the new client',
      timeoutMs: 10_000,
    });
    await op?.stop();
    server.faults.clear();
    op = await startOp();
    await waitFor(async () => !(await server.store.get(oldId)), {
      description: 'old client deleted after the restart',
      timeoutMs: 15_000,
    });
    await waitFor(async () => !(await r.secretValues('renew2-oidc-registration'))?.previous_client_id, {
      description: 'previous_* keys dropped',
      timeoutMs: 10_000,
    });
    expect(posts(server)).toBe(before + 1);
    expect((await r.client('renew2'))?.status?.clientId).toBe(pending.client_id);
  });

  it('lets OidcClients go within the deletion timeout when the provider fails or hangs', async () => {
    await apply(clientYaml('down', 'iam', `  redirectUris: [https://down.example.org/cb]\n`));
    await apply(clientYaml('hang', 'iam', `  redirectUris: [https://hang.example.org/cb]\n`));
    await r.waitReady('down');
    const hangId = (await r.waitReady('hang')).status?.clientId as string;
    // One provider answers 503 to every DELETE; for the other client it never answers (each
    // attempt runs into the 5 s request timeout, and retries would take 15 s).
    server.faults.add({
      method: 'DELETE',
      pathPattern: new RegExp(`/client-registration/${hangId}$`),
      delayMs: 60_000,
      times: Infinity,
    });
    server.faults.add({ method: 'DELETE', status: 503, times: Infinity });
    const timedDelete = async (name: string) => {
      const t0 = Date.now();
      const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', name, '--timeout=40s'], {
        namespace: ns.name,
      });
      expect(del.code, del.stderr).toBe(0);
      return Date.now() - t0;
    };
    const [down, hang] = await Promise.all([timedDelete('down'), timedDelete('hang')]);
    console.info(`[deletion] timeout 10 s: let go after ${down} ms (503), ${hang} ms (no answer)`);
    for (const elapsed of [down, hang]) {
      // deletionTimestamp has whole seconds: the deadline may fall up to 1 s before t0 + 10 s.
      expect(elapsed).toBeGreaterThanOrEqual(9_000);
      expect(
        elapsed,
        `deletion took ${down} ms (503) and ${hang} ms (no answer) with a 10 s timeout`,
      ).toBeLessThan(14_000);
    }
    for (const name of ['down', 'hang']) {
      expect((await r.events(name)).some((e) => e.reason === 'DeletionAbandoned')).toBe(true);
      expect(await r.secret(`${name}-oidc-registration`)).toBeUndefined();
    }
  });

  it('keeps the management Secret with Orphan, and a new OidcClient adopts it from there', async () => {
    await apply(
      clientYaml('keep', 'iam', `  redirectUris: [https://keep.example.org/cb]\n  deletionPolicy: Orphan\n`),
    );
    const cr = await r.waitReady('keep');
    const id = cr.status?.clientId as string;
    const token = (await r.secretValues('keep-oidc-registration'))?.registration_access_token;
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'keep', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(id)).toBeDefined();
    // The application Secret is owned by the OidcClient and goes with it; the token stays.
    await waitFor(async () => !(await r.secret('keep-oidc-client')), {
      description: 'application Secret garbage-collected',
      timeoutMs: 15_000,
    });
    const kept = await r.secret('keep-oidc-registration');
    expect(kept?.metadata?.ownerReferences ?? []).toEqual([]);
    expect(kept?.metadata?.finalizers ?? []).toEqual([]);
    expect(kept?.metadata?.labels?.['oidc.dcr-operator.dev/orphaned']).toBe('true');
    expect((await r.secretValues('keep-oidc-registration'))?.registration_access_token).toBe(token);

    const before = posts(server);
    await apply(
      clientYaml(
        'keep',
        'iam',
        `  redirectUris: [https://keep.example.org/cb]\n  adoptFrom:\n    secretRef:\n      name: keep-oidc-registration\n`,
      ),
    );
    const adopted = await r.waitReady('keep', { reason: 'Adopted' });
    expect(adopted.status?.clientId).toBe(id);
    expect(posts(server)).toBe(before);
    const claimed = await r.secret('keep-oidc-registration');
    expect(claimed?.metadata?.ownerReferences?.[0]?.uid).toBe(adopted.metadata.uid);
    expect(claimed?.metadata?.finalizers).toContain('oidc.dcr-operator.dev/registration');
    expect(claimed?.metadata?.labels?.['oidc.dcr-operator.dev/orphaned']).toBeUndefined();
    expect((await r.secretValues('keep-oidc-client'))?.client_id).toBe(id);
    const gone = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'keep', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(gone.code, gone.stderr).toBe(0);
    expect(await server.store.get(id)).toBeUndefined();
  });

  it('releases the finalizer of a management Secret whose OidcClient went without the operator', async () => {
    await apply(clientYaml('bypassed', 'iam', `  redirectUris: [https://bypassed.example.org/cb]\n`));
    await r.waitReady('bypassed');
    await op?.stop();
    op = undefined;
    // Someone removes the OidcClient's finalizer by hand while the operator is away.
    const patch = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'oidcclient', 'bypassed', '--type=merge', '-p', '{"metadata":{"finalizers":null}}'],
      { namespace: ns.name },
    );
    expect(patch.code, patch.stderr).toBe(0);
    await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'bypassed', '--wait=true'], {
      namespace: ns.name,
    });
    // The garbage collector deletes the orphaned management Secret, which our finalizer holds.
    await waitFor(async () => (await r.secret('bypassed-oidc-registration'))?.metadata?.deletionTimestamp, {
      description: 'management Secret marked for deletion',
      timeoutMs: 15_000,
    });
    op = await startOp();
    await waitFor(async () => !(await r.secret('bypassed-oidc-registration')), {
      description: 'the leftover management Secret released',
      timeoutMs: 10_000,
    });
  });

  it('releases a management Secret left under its old name by a crash mid-move; the namespace goes', async () => {
    const doomed = await createTestNamespace(kc, 'mid-move');
    const dr = new OidcReader(kc, doomed.name);
    let dop: InProcessOperator | undefined = await startOp(doomed.name);
    try {
      await apply(providerYaml('iam', server.issuer), doomed.name);
      await apply(clientYaml('mv', 'iam', `  redirectUris: [https://mv.example.org/cb]\n`), doomed.name);
      const cr = await dr.waitReady('mv');
      const id = cr.status?.clientId as string;
      await dop.stop();
      dop = undefined;
      // The crash: the Secret under the new name was written, the old one not yet released.
      const old = await dr.secret('mv-oidc-registration');
      await apply(
        clientYaml(
          'mv',
          'iam',
          `  redirectUris: [https://mv.example.org/cb]\n  managementSecretName: mv-rat\n`,
        ),
        doomed.name,
      );
      await dr.core.createNamespacedSecret({
        namespace: doomed.name,
        body: {
          metadata: {
            name: 'mv-rat',
            labels: old?.metadata?.labels,
            annotations: { 'oidc.dcr-operator.dev/state': 'registered' },
            ownerReferences: old?.metadata?.ownerReferences,
            finalizers: ['oidc.dcr-operator.dev/registration'],
          },
          data: old?.data,
        },
      });
      const before = posts(server);
      dop = await startOp(doomed.name);
      await waitFor(async () => !(await dr.secret('mv-oidc-registration')), {
        description: 'the old management Secret released and deleted',
        timeoutMs: 15_000,
      });
      const moved = await dr.waitReady('mv');
      expect(moved.status?.managementSecretName).toBe('mv-rat');
      expect(moved.status?.clientId).toBe(id);
      expect(posts(server)).toBe(before);
      const t0 = Date.now();
      const del = await kubectl(binDir, kubeconfigPath, [
        'delete',
        'namespace',
        doomed.name,
        '--timeout=60s',
      ]);
      expect(del.code, del.stderr).toBe(0);
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(await server.store.get(id)).toBeUndefined();
    } finally {
      await dop?.stop();
    }
  });
});
