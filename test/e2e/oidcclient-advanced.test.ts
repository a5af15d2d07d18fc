// Beyond the basic lifecycle: adoption of a dashboard-created client, restarts and interrupted
// registrations (crash safety), namespace and foreground deletion, a TLS provider with an initial
// access token behind a ClusterOidcProvider, a provider that appears late, and values a provider
// does not keep (no fight loop). Real kube-apiserver, real node-oidc-provider.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  applyDenyPolicy,
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  removeDenyPolicy,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import {
  type RatMode,
  type RegistrationServer,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each<RatMode>(['iam', 'rotating'])(
  'OidcClient: adoption, crash safety, deletion paths (%s mode)',
  (mode) => {
    let server: RegistrationServer;
    let ns: TestNamespace;
    let op: InProcessOperator | undefined;
    let r: OidcReader;
    const apply = (yaml: string, namespace = ns.name) =>
      kubectlApply(binDir, kubeconfigPath, yaml, namespace);
    const posts = () =>
      server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
    const startOp = async (
      namespace = ns.name,
      extra: Partial<Parameters<typeof startInProcessOperator>[0]> = {},
    ) =>
      startInProcessOperator({
        kubeconfigPath,
        namespace,
        resyncIntervalMs: 2_000,
        deletionTimeoutMs: 10_000,
        ...extra,
      });

    beforeAll(async () => {
      server = await startRegistrationServer({ mode });
      ns = await createTestNamespace(kc, `advanced-${mode}`);
      r = new OidcReader(kc, ns.name);
      await apply(providerYaml('iam', server.issuer));
      op = await startOp();
    });

    afterAll(async () => {
      await op?.stop();
      await ns?.cleanup();
      await server?.close();
    });

    it('adopts a client registered elsewhere (IAM dashboard JSON) and then manages it', async () => {
      // Register the way the IAM dashboard does, and keep its JSON.
      const res = await fetch(server.registrationEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'legacy',
          redirect_uris: ['https://legacy.example.org/cb'],
          grant_types: ['authorization_code'],
          response_types: ['code'],
        }),
      });
      expect(res.status).toBe(201);
      const dashboardJson = (await res.json()) as Record<string, unknown>;
      const before = posts();
      await apply(`apiVersion: v1
kind: Secret
metadata:
  name: legacy-adopt
stringData:
  client.json: '${JSON.stringify(dashboardJson)}'
`);
      await apply(
        clientYaml(
          'legacy',
          'iam',
          `  clientName: legacy\n  redirectUris: [https://legacy.example.org/cb, https://legacy.example.org/cb2]\n  grantTypes: [authorization_code]\n  responseTypes: [code]\n  adoptFrom:\n    secretRef:\n      name: legacy-adopt\n`,
        ),
      );
      const cr = await r.waitReady('legacy');
      expect(r.condition(cr, 'Ready')?.reason).toBe('Adopted');
      expect(cr.status?.clientId).toBe(dashboardJson.client_id);
      expect((await r.secretValues('legacy-oidc-client'))?.client_secret).toBe(dashboardJson.client_secret);
      expect(posts()).toBe(before);
      // The spec wins from then on: the second redirect URI was sent with PUT.
      const stored = await server.store.get(dashboardJson.client_id as string);
      expect(stored?.metadata.redirect_uris).toEqual([
        'https://legacy.example.org/cb',
        'https://legacy.example.org/cb2',
      ]);
      expect((await r.events('legacy')).some((e) => e.reason === 'Adopted')).toBe(true);
    });

    it('reports an adoption Secret whose token the provider rejects (AdoptionFailed), registering nothing', async () => {
      const before = posts();
      await apply(`apiVersion: v1
kind: Secret
metadata:
  name: forged-adopt
stringData:
  client_id: nope
  registration_access_token: forged
  registration_client_uri: ${server.registrationEndpoint}/nope
`);
      await apply(clientYaml('forged', 'iam', `  adoptFrom:\n    secretRef:\n      name: forged-adopt\n`));
      const cr = await r.waitReady('forged', { status: 'False', reason: 'AdoptionFailed' });
      expect(r.condition(cr, 'Stalled')?.status).toBe('True');
      expect(posts()).toBe(before);
      await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'forged', '--timeout=20s'], {
        namespace: ns.name,
      });
    });

    it('does not register again after a restart, and writes nothing when all is in place', async () => {
      await apply(clientYaml('steady', 'iam', `  redirectUris: [https://steady.example.org/cb]\n`));
      const cr = await r.waitReady('steady');
      await op?.stop();
      const before = posts();
      op = await startOp(ns.name, { resyncIntervalMs: 600_000 });
      await sleep(3_000);
      expect(posts()).toBe(before);
      expect(op.writes).toEqual([]);
      expect((await r.client('steady'))?.status?.clientId).toBe(cr.status?.clientId);
    });

    it('recovers from a registration interrupted before its result was stored', async () => {
      await op?.stop();
      op = undefined;
      // The operator "crashed" after marking the attempt and before storing credentials.
      await apply(clientYaml('crashed', 'iam', `  redirectUris: [https://crashed.example.org/cb]\n`));
      const cr = await waitFor(() => r.client('crashed'), { description: 'OidcClient crashed exists' });
      await apply(`apiVersion: v1
kind: Secret
metadata:
  name: crashed-oidc-registration
  labels: { app.kubernetes.io/managed-by: oidc-client-operator, oidc.dcr-operator.dev/client: crashed, oidc.dcr-operator.dev/secret-role: registration }
  annotations: { oidc.dcr-operator.dev/state: pending, oidc.dcr-operator.dev/registration-attempt: '2026-11-26T00:00:00.000Z' }
  ownerReferences:
    - { apiVersion: oidc.dcr-operator.dev/v1alpha1, kind: OidcClient, name: crashed, uid: ${cr.metadata.uid}, controller: true }
`);
      const before = posts();
      op = await startOp();
      await r.waitReady('crashed');
      expect(posts()).toBe(before + 1);
      const retried = (await r.events('crashed')).find((e) => e.reason === 'RegistrationRetried');
      expect(retried?.type).toBe('Warning');
      expect(retried?.message).toMatch(/may be orphaned/);
    });

    it('recovers from a first registration interrupted after its POST (marker on the OidcClient)', async () => {
      await op?.stop();
      op = undefined;
      // A first registration marks the OidcClient itself (with the finalizer, in one write) and
      // creates the management Secret only with the result: the operator "crashed" in between.
      await apply(`apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: cut-short
  annotations: { oidc.dcr-operator.dev/registration-attempt: '2026-11-27T00:00:00.000Z' }
  finalizers: [oidc.dcr-operator.dev/finalizer]
spec:
  providerRef: { name: iam }
  redirectUris: [https://cut-short.example.org/cb]
`);
      const before = posts();
      op = await startOp();
      const cr = await r.waitReady('cut-short');
      expect(posts()).toBe(before + 1);
      const retried = (await r.events('cut-short')).find((e) => e.reason === 'RegistrationRetried');
      expect(retried?.type).toBe('Warning');
      expect(retried?.message).toMatch(/2026-11-27T00:00:00.000Z.*may be orphaned/);
      // The new attempt replaced the marker; the Secret holding the result makes it stale.
      const marker = cr.metadata.annotations?.['oidc.dcr-operator.dev/registration-attempt'];
      expect(marker).toBeDefined();
      expect(marker).not.toBe('2026-11-27T00:00:00.000Z');
      expect((await r.secretValues('cut-short-oidc-registration'))?.client_id).toBe(cr.status?.clientId);
      // A restart does not take the stale marker for a lost registration.
      await op.stop();
      op = await startOp();
      await sleep(2_000);
      expect(posts()).toBe(before + 1);
      expect((await r.events('cut-short')).filter((e) => e.reason === 'RegistrationRetried')).toHaveLength(1);
    });

    it('registers a new client when asked with the reregister annotation, and only then', async () => {
      const before = posts();
      await apply(`apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: renewed
  annotations: { oidc.dcr-operator.dev/reregister: first }
spec:
  providerRef: { name: iam }
  redirectUris: [https://renewed.example.org/cb]
`);
      const cr = await r.waitReady('renewed');
      const oldId = cr.status?.clientId as string;
      await sleep(1_500);
      expect(posts()).toBe(before + 1); // a request present from the start is answered by the first registration
      const annotate = await kubectl(
        binDir,
        kubeconfigPath,
        ['annotate', '--overwrite', 'oidcclient', 'renewed', 'oidc.dcr-operator.dev/reregister=second'],
        { namespace: ns.name },
      );
      expect(annotate.code, annotate.stderr).toBe(0);
      const renewed = await waitFor(
        async () => {
          const c = await r.client('renewed');
          return c?.status?.clientId !== oldId && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
        },
        { description: 'a new client after the reregister request', timeoutMs: 15_000 },
      );
      expect(posts()).toBe(before + 2);
      expect(await server.store.get(oldId)).toBeUndefined();
      expect((await r.secretValues('renewed-oidc-client'))?.client_id).toBe(renewed.status?.clientId);
      // reregister is rotate without an overlap: the previous client goes right after the switch.
      const event = (await r.events('renewed')).find((e) => e.reason === 'PreviousClientDeleted');
      expect(event?.message).toContain(`${oldId} was deleted at the provider`);
      await sleep(1_500);
      expect(posts()).toBe(before + 2);
    });

    it('moves both Secrets when their names change, keeping the same client', async () => {
      await apply(clientYaml('mover', 'iam', `  redirectUris: [https://mover.example.org/cb]\n`));
      const cr = await r.waitReady('mover');
      const before = posts();
      await apply(
        clientYaml(
          'mover',
          'iam',
          `  redirectUris: [https://mover.example.org/cb]\n  secretName: mover-creds\n  managementSecretName: mover-rat\n`,
        ),
      );
      const moved = await waitFor(
        async () => {
          const c = await r.client('mover');
          return c?.status?.secretName === 'mover-creds' && c.status.managementSecretName === 'mover-rat'
            ? c
            : undefined;
        },
        { description: 'status names the new Secrets', timeoutMs: 15_000 },
      );
      expect(moved.status?.clientId).toBe(cr.status?.clientId);
      expect(posts()).toBe(before);
      expect((await r.secretValues('mover-creds'))?.client_id).toBe(cr.status?.clientId);
      expect((await r.secretValues('mover-rat'))?.registration_access_token).toBeTruthy();
      await waitFor(
        async () => !(await r.secret('mover-oidc-client')) && !(await r.secret('mover-oidc-registration')),
        {
          description: 'old Secrets removed',
          timeoutMs: 10_000,
        },
      );
      const reasons = (await r.events('mover'))
        .filter((e) => e.reason === 'SecretMoved')
        .map((e) => e.message);
      expect(reasons).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/management Secret moved/),
          expect.stringMatching(/application Secret moved/),
        ]),
      );
      // Deleting still reaches the provider through the moved token.
      const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'mover', '--timeout=20s'], {
        namespace: ns.name,
      });
      expect(del.code, del.stderr).toBe(0);
      expect(await server.store.get(cr.status?.clientId as string)).toBeUndefined();
    });

    it('stops re-sending values the provider does not keep (no fight loop)', async () => {
      // node-oidc-provider drops metadata it does not know, such as IAM's reuse_refresh_token.
      await apply(
        clientYaml(
          'normalised',
          'iam',
          `  redirectUris: [https://n.example.org/cb]\n  extraMetadata:\n    reuse_refresh_token: true\n`,
        ),
      );
      const cr = await waitFor(
        async () => {
          const c = await r.client('normalised');
          return c?.status?.ignoredFields?.includes('reuse_refresh_token') ? c : undefined;
        },
        { description: 'reuse_refresh_token reported as ignored', timeoutMs: 15_000 },
      );
      expect(r.condition(cr, 'Ready')?.status).toBe('True');
      expect(r.condition(cr, 'Synced')).toMatchObject({ status: 'False', reason: 'ValueNotAccepted' });
      const puts = () => server.requests.filter((q) => q.method === 'PUT').length;
      const before = puts();
      await sleep(5_000); // more than two drift checks
      expect(puts()).toBe(before);
    });

    it('deletes the client at the provider on foreground cascading deletion', async () => {
      await apply(clientYaml('fg', 'iam', `  redirectUris: [https://fg.example.org/cb]\n`));
      const cr = await r.waitReady('fg');
      const del = await kubectl(
        binDir,
        kubeconfigPath,
        ['delete', 'oidcclient', 'fg', '--cascade=foreground', '--timeout=30s'],
        { namespace: ns.name },
      );
      expect(del.code, del.stderr).toBe(0);
      expect(await server.store.get(cr.status?.clientId as string)).toBeUndefined();
    });

    it('deletes clients at the provider when their namespace is deleted, without hanging', async () => {
      const doomed = await createTestNamespace(kc, 'doomed');
      const dr = new OidcReader(kc, doomed.name);
      const dop = await startOp(doomed.name);
      try {
        await apply(providerYaml('iam', server.issuer), doomed.name);
        await apply(clientYaml('one', 'iam', `  redirectUris: [https://one.example.org/cb]\n`), doomed.name);
        await apply(clientYaml('two', 'iam', `  redirectUris: [https://two.example.org/cb]\n`), doomed.name);
        const ids = [
          (await dr.waitReady('one')).status?.clientId,
          (await dr.waitReady('two')).status?.clientId,
        ] as string[];
        const t0 = Date.now();
        const del = await kubectl(binDir, kubeconfigPath, [
          'delete',
          'namespace',
          doomed.name,
          '--timeout=60s',
        ]);
        expect(del.code, del.stderr).toBe(0);
        expect(Date.now() - t0).toBeLessThan(60_000);
        for (const id of ids) expect(await server.store.get(id)).toBeUndefined();
      } finally {
        await dop.stop();
      }
    });
  },
);

describe('OidcClient with a ClusterOidcProvider over TLS with an initial access token', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const providerName = `tls-${Math.random().toString(16).slice(2, 8)}`;

  beforeAll(async () => {
    server = await startRegistrationServer({
      mode: 'rotating',
      tls: true,
      initialAccessToken: 'iat-secret-value',
    });
    ns = await createTestNamespace(kc, 'cluster-provider');
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name, resyncIntervalMs: 600_000 });
  });

  afterAll(async () => {
    await op?.stop();
    await kubectl(binDir, kubeconfigPath, [
      'delete',
      'clusteroidcprovider',
      providerName,
      '--ignore-not-found',
    ]);
    await ns?.cleanup();
    await server?.close();
  });

  it('waits for a missing provider (ProviderNotFound), then registers once it appears', async () => {
    await kubectlApply(
      binDir,
      kubeconfigPath,
      clientYaml(
        'app',
        providerName,
        `    kind: ClusterOidcProvider\n  redirectUris: [https://app.example.org/cb]\n`,
      ),
      ns.name,
    );
    await r.waitReady('app', { status: 'False', reason: 'ProviderNotFound' });
    const ca = server.caPem?.replace(/\n/g, '\n    ');
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: v1
kind: Secret
metadata:
  name: provider-trust
stringData:
  token: wrong-token
  ca.crt: |
    ${ca}
`,
      ns.name,
    );
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: ClusterOidcProvider
metadata:
  name: ${providerName}
spec:
  issuerUrl: ${server.issuer}
  caSecretRef: { name: provider-trust, namespace: ${ns.name} }
  initialAccessTokenSecretRef: { name: provider-trust, namespace: ${ns.name} }
`,
    );
    // The wrong initial access token is reported, not retried in a hot loop.
    const refused = await r.waitReady('app', {
      status: 'False',
      reason: 'RegistrationUnauthorized',
      timeoutMs: 20_000,
    });
    expect(r.condition(refused, 'Reconciling')?.status).toBe('True');
    await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'provider-trust', '-p', '{"stringData":{"token":"iat-secret-value"}}'],
      { namespace: ns.name },
    );
    // A new provider generation (or the 30 s retry) picks up the corrected token.
    await kubectl(binDir, kubeconfigPath, [
      'patch',
      'clusteroidcprovider',
      providerName,
      '--type=merge',
      '-p',
      '{"spec":{"maxConcurrentRequests":3}}',
    ]);
    const cr = await r.waitReady('app', { timeoutMs: 30_000 });
    expect(cr.status?.clientId).toBeTruthy();
    expect((await r.secretValues('app-oidc-client'))?.issuer).toBe(server.issuer);
  });
});

describe('OidcClient: storing the registration fails', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  const policy = `deny-registration-secrets-${Math.random().toString(16).slice(2, 8)}`;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'persist-fails');
    r = new OidcReader(kc, ns.name);
    // RBAC allows everything (the operator asks before registering), but an admission policy
    // refuses management Secrets in this namespace: the provider's answer can never be stored.
    await applyDenyPolicy(binDir, kubeconfigPath, {
      name: policy,
      namespace: ns.name,
      operations: ['CREATE', 'UPDATE'],
      resources: ['secrets'],
      expression:
        "!has(object.metadata.labels) || object.metadata.labels[?'oidc.dcr-operator.dev/secret-role'].orValue('') != 'registration'",
      message: 'registration Secrets are not accepted here',
    });
    // The policy takes effect within moments; probe with a server-side dry run until it denies.
    await waitFor(
      async () => {
        const probe = await kubectl(binDir, kubeconfigPath, ['apply', '--dry-run=server', '-f', '-'], {
          namespace: ns.name,
          input: `apiVersion: v1
kind: Secret
metadata:
  name: probe
  labels: { oidc.dcr-operator.dev/secret-role: registration }
`,
        });
        return probe.code !== 0 && probe.stderr.includes('not accepted here');
      },
      { description: 'the admission policy to deny registration Secrets', timeoutMs: 20_000 },
    );
    await kubectlApply(binDir, kubeconfigPath, providerYaml('iam', server.issuer), ns.name);
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name });
  });

  afterAll(async () => {
    await op?.stop();
    await removeDenyPolicy(binDir, kubeconfigPath, policy);
    await ns?.cleanup();
    await server?.close();
  });

  it('deletes the just-registered client at the provider, so nothing is orphaned', async () => {
    await kubectlApply(
      binDir,
      kubeconfigPath,
      clientYaml('unlucky', 'iam', `  redirectUris: [https://u.example.org/cb]\n`),
      ns.name,
    );
    const cr = await waitFor(
      async () => {
        const c = await r.client('unlucky');
        const ready = r.condition(c, 'Ready');
        return ready?.status === 'False' && ready.reason === 'SecretWriteFailed' ? c : undefined;
      },
      { description: 'Ready=False with reason SecretWriteFailed', timeoutMs: 30_000 },
    );
    // The message names the refusal and the undo.
    expect(r.condition(cr, 'Ready')?.message).toMatch(/deleted at the provider again.*not accepted here/);
    expect(r.condition(cr, 'Reconciling')?.status).toBe('True');
    const registered = server.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.status === 201,
    );
    await waitFor(
      () =>
        server.requests.filter((q) => q.method === 'DELETE' && q.status === 204).length >= registered.length,
      { description: 'every registration undone', timeoutMs: 10_000 },
    );
    const deleted = server.requests.filter((q) => q.method === 'DELETE' && q.status === 204);
    expect(registered.length).toBeGreaterThanOrEqual(1);
    expect(deleted.length).toBe(registered.length);
    expect(await server.store.list()).toEqual([]);
    expect((await r.events('unlucky')).some((e) => e.reason === 'OrphanedClient')).toBe(false);
  });
});
