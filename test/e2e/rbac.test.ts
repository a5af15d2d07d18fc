// The chart's RBAC is enough for the operator, proven with the operator itself: the chart installed
// in "namespaces" scope, the operator process authenticated as the chart's ServiceAccount (a token
// from the TokenRequest API), a full create → update → delete cycle, and a clear error, not a silent
// stall, once a verb is taken away.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Role,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  helm,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, GROUP, OidcReader, providerYaml } from '../harness/oidc.js';
import { type OperatorProcess, startOperatorProcess, stopAll } from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const CHART = resolve(import.meta.dirname, '../../helm/oidc-client-operator');
const RELEASE = 'rbac';
const FULLNAME = `${RELEASE}-oidc-client-operator`;

const SPEC = `  redirectUris: [https://app.example.org/callback]
  grantTypes: [authorization_code]
  scopes: [openid]
`;

/**
 * A kubeconfig with a TokenRequest token for the ServiceAccount, against the admin kubeconfig's
 * server and CA: the credentials a Pod of that ServiceAccount would get.
 */
async function serviceAccountKubeconfig(
  admin: KubeConfig,
  sa: { namespace: string; name: string },
  path: string,
): Promise<void> {
  const request = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    ...sa,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const token = request.status?.token;
  if (!token) throw new Error('TokenRequest returned no token');
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'sa', cluster: 'c', user: 'sa' }],
    currentContext: 'sa',
  });
  writeFileSync(path, kc.exportConfig(), { mode: 0o600 });
}

describe('operator process with the chart RBAC (namespaces scope, ServiceAccount token)', () => {
  let admin: KubeConfig;
  let releaseNs: TestNamespace;
  let workNs: TestNamespace;
  let server: RegistrationServer;
  let op: OperatorProcess | undefined;
  let r: OidcReader;
  let tmp: string;
  let saKubeconfig: string;
  const sa = () => ({ namespace: releaseNs.name, name: FULLNAME });
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, workNs.name);

  /** The apiserver's RBAC authorizer decision for the ServiceAccount. */
  async function allowed(verb: string, resource: string, namespace: string, group = ''): Promise<boolean> {
    const review = await admin.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${sa().namespace}:${sa().name}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${sa().namespace}`],
          resourceAttributes: { verb, group, resource, namespace },
        },
      },
    });
    return review.status?.allowed === true;
  }

  beforeAll(async () => {
    admin = kubeConfigFromFile(kubeconfigPath);
    [releaseNs, workNs, server] = await Promise.all([
      createTestNamespace(admin, 'rbac-release'),
      createTestNamespace(admin, 'rbac-work'),
      startRegistrationServer({ mode: 'iam' }),
    ]);
    r = new OidcReader(admin, workNs.name);
    tmp = mkdtempSync(join(tmpdir(), 'rbac-e2e-'));
    saKubeconfig = join(tmp, 'kubeconfig');

    const install = await helm(binDir, kubeconfigPath, [
      'install',
      RELEASE,
      CHART,
      '--namespace',
      releaseNs.name,
      '--set',
      'rbac.scope=namespaces',
      '--set',
      `rbac.namespaces={${workNs.name}}`,
      '--set',
      'operator.leaderElection.enabled=true',
      // No kubelet runs here: the process below stands in for the Pods.
      '--set',
      'replicaCount=0',
    ]);
    expect(install.code, install.stderr).toBe(0);
    // The authorizer learns about new bindings from its informers; start only once they apply.
    await waitFor(
      async () =>
        (await allowed('watch', 'oidcclients', workNs.name, GROUP)) &&
        (await allowed('update', 'leases', releaseNs.name, 'coordination.k8s.io')),
      { description: 'the chart Role bindings to take effect', timeoutMs: 15_000 },
    );

    await serviceAccountKubeconfig(admin, sa(), saKubeconfig);

    await apply(providerYaml('iam', server.issuer));
    op = await startOperatorProcess({
      name: 'rbac',
      kubeconfigPath: saKubeconfig,
      env: { POD_NAME: 'rbac-operator-0' },
      args: [
        `--namespaces=${workNs.name}`,
        '--leader-elect=true',
        `--leader-election-namespace=${releaseNs.name}`,
        `--leader-election-id=${FULLNAME}`,
        '--lease-duration=4s',
        '--resync-interval=1m',
        '--deletion-timeout=20s',
        '--metrics-auth=kubernetes',
      ],
    });
  });

  afterAll(async () => {
    await stopAll([op]);
    if (releaseNs) {
      await admin
        .makeApiClient(RbacAuthorizationV1Api)
        .deleteClusterRoleBinding({ name: `${FULLNAME}-${releaseNs.name}-scraper` })
        .catch(() => undefined);
    }
    await helm(binDir, kubeconfigPath, [
      'uninstall',
      RELEASE,
      '--namespace',
      releaseNs.name,
      '--ignore-not-found',
    ]);
    await Promise.allSettled([releaseNs?.cleanup(), workNs?.cleanup(), server?.close()]);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs as the ServiceAccount: takes the Lease in the release namespace and syncs its caches', async () => {
    const running = op as OperatorProcess;
    await running.waitForLog((l) => l.msg === 'starting workers', {
      description: 'caches synced',
      timeoutMs: 20_000,
    });
    await running.waitReady(10_000);
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace: releaseNs.name, name: FULLNAME });
    expect(lease.spec?.holderIdentity).toBe('rbac-operator-0');
    // No list/watch had to be retried: every informer had its grant from the start.
    expect(running.logs().filter((l) => l.msg === 'list/watch failed; retrying')).toEqual([]);
    expect(running.logs().filter((l) => /forbidden/i.test(JSON.stringify(l)))).toEqual([]);
  });

  it('creates, updates and deletes a client with only the chart grants', async () => {
    await apply(clientYaml('app', 'iam', SPEC));
    const created = await r.waitReady('app', { timeoutMs: 20_000 });
    const id = created.status?.clientId as string;
    expect(r.condition(created, 'Ready')?.reason).toBe('Registered');
    const app = await r.secretValues('app-oidc-client');
    expect(app?.client_id).toBe(id);
    expect(app?.client_secret).toBe((await server.store.get(id))?.metadata.client_secret);
    expect((await r.secretValues('app-oidc-registration'))?.registration_access_token).toBeTruthy();

    await apply(clientYaml('app', 'iam', SPEC.replace('/callback', '/cb2')));
    const updated = await r.waitReady('app', { timeoutMs: 20_000 });
    expect(updated.metadata.generation).toBe(2);
    expect((await server.store.get(id))?.metadata.redirect_uris).toEqual(['https://app.example.org/cb2']);
    await waitFor(async () => (await r.events('app')).some((e) => e.reason === 'Updated'), {
      description: 'an Updated Event (events create is granted)',
      timeoutMs: 5_000,
    });

    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'app', '--timeout=30s'], {
      namespace: workNs.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(id)).toBeUndefined();
    // The management Secret's finalizer was released (secrets patch is granted).
    await waitFor(
      async () => {
        const s = await r.secret('app-oidc-registration');
        return !s || (s.metadata?.finalizers ?? []).length === 0;
      },
      { description: 'management Secret finalizer released', timeoutMs: 10_000 },
    );
    expect(
      server.requests.filter((q) => q.method === 'POST' && q.path.includes('client-registration')),
    ).toHaveLength(1);
  });

  it('reports a missing verb on the Ready condition and in the log, then recovers when it is granted again', async () => {
    const running = op as OperatorProcess;
    const roleName = `${FULLNAME}-${releaseNs.name}`;
    const role = await kubectl(binDir, kubeconfigPath, ['get', 'role', roleName, '-o', 'json'], {
      namespace: workNs.name,
    });
    expect(role.code, role.stderr).toBe(0);
    const original = JSON.parse(role.stdout) as V1Role;
    const idx = (original.rules ?? []).findIndex((rule) => rule.resources?.includes('secrets'));
    const secretVerbs = original.rules?.[idx]?.verbs ?? [];
    expect(secretVerbs).toContain('create');
    const patchVerbs = (verbs: string[]) =>
      kubectl(
        binDir,
        kubeconfigPath,
        [
          'patch',
          'role',
          roleName,
          '--type=json',
          '-p',
          JSON.stringify([
            { op: 'test', path: `/rules/${idx}/resources`, value: ['secrets'] },
            { op: 'replace', path: `/rules/${idx}/verbs`, value: verbs },
          ]),
        ],
        { namespace: workNs.name },
      );
    const removed = await patchVerbs(secretVerbs.filter((v) => v !== 'create'));
    expect(removed.code, removed.stderr).toBe(0);
    await waitFor(async () => !(await allowed('create', 'secrets', workNs.name)), {
      description: 'secrets create to be denied',
      timeoutMs: 10_000,
    });

    // Registrations only: the provider health check's probe is a POST too (answered 400).
    const registrations = () => server.requests.filter((q) => q.method === 'POST' && q.status === 201).length;
    const postsBefore = registrations();
    await apply(clientYaml('denied', 'iam', SPEC.replace('app.example.org', 'denied.example.org')));
    const failed = await r.waitReady('denied', {
      status: 'False',
      reason: 'SecretWriteFailed',
      timeoutMs: 20_000,
    });
    const ready = r.condition(failed, 'Ready');
    expect(ready?.message).toMatch(/forbidden/);
    expect(ready?.message).toMatch(/cannot create resource "secrets"/);
    // Retrying by itself (kstatus InProgress), not waiting for a human (Stalled).
    expect(r.condition(failed, 'Reconciling')?.status).toBe('True');
    expect(r.condition(failed, 'Stalled')).toBeUndefined();
    const logged = await running.waitForLog(
      (l) => l.msg === 'Kubernetes API call failed' && /forbidden/.test(String(l.err)),
      { description: 'a warning naming the forbidden call', timeoutMs: 5_000 },
    );
    expect(logged.level).toBe('warn');
    expect(logged.oidcclient).toBe(`${workNs.name}/denied`);
    // Asked before the POST (the management Secret is created with the answer): nothing was
    // registered at the provider.
    expect(registrations()).toBe(postsBefore);

    const restoredAt = Date.now();
    const restored = await patchVerbs(secretVerbs);
    expect(restored.code, restored.stderr).toBe(0);
    const recovered = await r.waitReady('denied', { timeoutMs: 30_000 });
    expect(r.condition(recovered, 'Reconciling')).toBeUndefined();
    expect((await r.secretValues('denied-oidc-client'))?.client_id).toBe(recovered.status?.clientId);
    console.info(`[rbac] recovered ${Date.now() - restoredAt} ms after the grant came back`);
  });

  it("serves /metrics only to tokens the chart's metrics-reader role allows, with the chart's grants", async () => {
    const running = op as OperatorProcess;
    const scrape = async (token?: string) =>
      (
        await fetch(`${running.baseUrl}/metrics`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        })
      ).status;
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({
      namespace: releaseNs.name,
      body: { metadata: { name: 'scraper' } },
    });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'scraper',
      namespace: releaseNs.name,
      body: { spec: { expirationSeconds: 600, audiences: [] } },
    });
    const token = tr.status?.token as string;
    expect(await scrape()).toBe(401);
    // The operator itself may review tokens (chart grant): an unbound ServiceAccount is refused.
    expect(await scrape(token)).toBe(403);
    const reader = `${FULLNAME}-${releaseNs.name}-metrics-reader`;
    await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: `${FULLNAME}-${releaseNs.name}-scraper` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: reader },
        subjects: [{ kind: 'ServiceAccount', name: 'scraper', namespace: releaseNs.name }],
      },
    });
    // Refusals are cached for 10 s; the binding must take effect within that and a bit.
    await waitFor(async () => (await scrape(token)) === 200, {
      description: '/metrics 200 for the bound ServiceAccount',
      timeoutMs: 20_000,
      intervalMs: 1_000,
    });
  });

  it('without list permission it is live but not ready, and says why', async () => {
    // A ServiceAccount without any binding: every informer's first list is forbidden.
    const nobody = { namespace: releaseNs.name, name: 'nobody' };
    await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
      namespace: nobody.namespace,
      body: { metadata: { name: nobody.name } },
    });
    const path = join(tmp, 'kubeconfig-nobody');
    await serviceAccountKubeconfig(admin, nobody, path);
    const denied = await startOperatorProcess({
      name: 'rbac-nobody',
      kubeconfigPath: path,
      args: [`--namespaces=${workNs.name}`, '--leader-elect=false'],
    });
    try {
      const warned = await denied.waitForLog((l) => l.msg === 'list/watch failed; retrying', {
        description: 'a list/watch failure',
        timeoutMs: 15_000,
      });
      expect(String(warned.err)).toMatch(/403 Forbidden.*cannot list resource/);
      expect(await denied.get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
      const ready = await denied.get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body).toMatch(/\[-\]watches failed: .*initial list not done/);
      expect(denied.logs().some((l) => l.msg === 'caches synced')).toBe(false);
    } finally {
      await denied.stop(5_000);
    }
  });
});
