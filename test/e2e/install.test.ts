import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
  RbacAuthorizationV1Api,
  type V1Deployment,
  type V1PolicyRule,
  type V1Role,
  type V1RoleBinding,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { parseOperatorFlags } from '../../src/operator/flags.js';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.js';
import { runTool } from '../harness/exec.js';
import {
  createTestNamespace,
  helm,
  isApiError,
  kubeConfigFromFile,
  kubectl,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';

// The install artefacts on the real apiserver: the Helm chart (lint, render, schema, install/upgrade/
// uninstall, RBAC proven with SubjectAccessReviews, PodDisruptionBudgets and NetworkPolicy, the CRD
// upgrade path and what an uninstall leaves) and the kustomize manifests rendered from it.
// No kubelet runs, so Pods never start: only API objects and admission are asserted.

const ROOT = resolve(import.meta.dirname, '../..');
const CHART = resolve(ROOT, 'helm/oidc-client-operator');
const GROUP = 'oidc.dcr-operator.dev';
const CRDS = ['oidcclients', 'oidcproviders', 'clusteroidcproviders'].map((p) => `${p}.${GROUP}`);
const PLAIN_NAMESPACE = 'oidc-client-operator';

/** The brief's least-privilege rules for namespaced resources, as "group/resource verb" strings. */
const NAMESPACED_GRANTS = [
  ...['get', 'list', 'watch', 'update', 'patch'].map((v) => `${GROUP}/oidcclients ${v}`),
  ...['get', 'update', 'patch'].map((v) => `${GROUP}/oidcclients/status ${v}`),
  `${GROUP}/oidcclients/finalizers update`,
  ...['get', 'list', 'watch'].map((v) => `${GROUP}/oidcproviders ${v}`),
  ...['get', 'update', 'patch'].map((v) => `${GROUP}/oidcproviders/status ${v}`),
  ...['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'].map((v) => `/secrets ${v}`),
  '/events create',
  '/events patch',
  '/namespaces get',
];
const CLUSTER_GRANTS = [
  ...['get', 'list', 'watch'].map((v) => `${GROUP}/clusteroidcproviders ${v}`),
  ...['get', 'update', 'patch'].map((v) => `${GROUP}/clusteroidcproviders/status ${v}`),
  '/namespaces list',
  '/namespaces watch',
  // --metrics-auth=kubernetes (the chart's default) reviews scrapers' tokens.
  'authentication.k8s.io/tokenreviews create',
  'authorization.k8s.io/subjectaccessreviews create',
];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [field: string]: unknown;
}

function isManifest(value: unknown): value is Manifest {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const meta = v.metadata as Record<string, unknown> | undefined;
  return typeof v.kind === 'string' && typeof v.apiVersion === 'string' && typeof meta?.name === 'string';
}

function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter((o) => o !== null)
    .map((o) => {
      if (!isManifest(o)) throw new Error(`not a Kubernetes object: ${JSON.stringify(o)}`);
      return o;
    });
}

function helmHome(kubeconfigPath: string): Record<string, string> {
  const home = join(dirname(kubeconfigPath), 'helm');
  return {
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
  };
}

function grants(rules: readonly V1PolicyRule[] | undefined): string[] {
  return (rules ?? [])
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)),
      ),
    )
    .sort();
}

const only = <T extends Manifest>(objs: Manifest[], kind: string): T[] =>
  objs.filter((o) => o.kind === kind) as T[];

function named<T extends Manifest>(objs: Manifest[], kind: string, name: string): T {
  const found = only<T>(objs, kind).filter((o) => o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0] as T;
}

function single<T extends Manifest>(objs: Manifest[], kind: string, namespace?: string): T {
  const found = only<T>(objs, kind).filter(
    (o) => namespace === undefined || o.metadata.namespace === namespace,
  );
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as T;
}

describe('install artefacts', () => {
  const kubeconfigPath = inject('kubeconfigPath');
  const binDir = inject('binDir');
  let kc: KubeConfig;
  const namespaces: TestNamespace[] = [];
  /** Releases to uninstall if a test fails midway: their ClusterRoles would outlive the namespaces. */
  const releases: { name: string; namespace: string }[] = [];

  const run = (args: string[]) => helm(binDir, kubeconfigPath, args);
  async function helmOk(args: string[]): Promise<string> {
    const r = await run(args);
    expect(r.code, `helm ${args.join(' ')}\n${r.stderr}`).toBe(0);
    return r.stdout;
  }
  async function render(namespace: string, sets: string[] = []): Promise<Manifest[]> {
    const setArgs = sets.flatMap((s) => ['--set', s]);
    return parseManifests(await helmOk(['template', 'rel', CHART, '--namespace', namespace, ...setArgs]));
  }
  async function newNamespace(prefix: string): Promise<string> {
    const ns = await createTestNamespace(kc, prefix);
    namespaces.push(ns);
    return ns.name;
  }

  /** Asks the apiserver's authorizer whether the ServiceAccount may do `verb` on group/resource. */
  async function allowed(
    sa: { namespace: string; name: string },
    verb: string,
    target: { group: string; resource: string; subresource?: string; namespace?: string },
  ): Promise<boolean> {
    const review = await kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
      body: {
        spec: {
          user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`],
          resourceAttributes: { verb, ...target },
        },
      },
    });
    return review.status?.allowed === true;
  }

  beforeAll(() => {
    kc = kubeConfigFromFile(kubeconfigPath);
  });

  afterAll(async () => {
    for (const r of releases)
      await run(['uninstall', r.name, '--namespace', r.namespace, '--ignore-not-found']);
    for (const ns of namespaces) await ns.cleanup();
  });

  describe('chart rendering', () => {
    it('passes helm lint --strict in both RBAC scopes', async () => {
      const cluster = await helmOk(['lint', '--strict', CHART]);
      expect(cluster).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
      await helmOk([
        'lint',
        '--strict',
        CHART,
        '--set',
        'rbac.scope=namespaces',
        '--set',
        'rbac.namespaces={a}',
      ]);
    });

    it('cluster scope: one ClusterRole with exactly the least-privilege rules, and a hardened Deployment', async () => {
      const objs = await render('ops');
      expect(objs.map((o) => o.kind).sort()).toEqual([
        'ClusterRole',
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'PodDisruptionBudget',
        'Role',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ]);
      const clusterRole = named<V1Role & Manifest>(objs, 'ClusterRole', 'rel-oidc-client-operator-ops');
      // Cluster-scoped names carry release and namespace, so parallel releases do not collide.
      expect(grants(clusterRole.rules)).toEqual([...NAMESPACED_GRANTS, ...CLUSTER_GRANTS].sort());
      // Whoever scrapes /metrics needs this role; the operator's own role does not grant it.
      const reader = named<V1Role & Manifest>(
        objs,
        'ClusterRole',
        'rel-oidc-client-operator-ops-metrics-reader',
      );
      expect(reader.rules).toEqual([{ nonResourceURLs: ['/metrics'], verbs: ['get'] }]);
      const leases = single<V1Role & Manifest>(objs, 'Role');
      expect(leases.metadata.namespace).toBe('ops');
      expect(grants(leases.rules)).toEqual([
        'coordination.k8s.io/leases create',
        'coordination.k8s.io/leases get',
        'coordination.k8s.io/leases update',
      ]);

      const deployment = single<V1Deployment & Manifest>(objs, 'Deployment');
      expect(deployment.spec?.replicas).toBe(2);
      const pod = deployment.spec?.template.spec;
      const container = pod?.containers[0];
      expect(pod?.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(container?.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container?.args).toEqual([
        'run',
        '--leader-elect=true',
        '--leader-election-id=rel-oidc-client-operator',
        '--health-port=8081',
        '--metrics-auth=kubernetes',
        '--log-level=info',
        '--resync-interval=10m',
        '--max-concurrent-reconciles=8',
        '--provider-check-interval=5m',
      ]);
      expect(container?.env?.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath])).toEqual([
        ['POD_NAME', 'metadata.name'],
        ['POD_NAMESPACE', 'metadata.namespace'],
      ]);
      expect(container?.ports).toEqual([{ name: 'metrics', containerPort: 8081, protocol: 'TCP' }]);
      expect(container?.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(container?.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
      expect(container?.resources?.requests).toHaveProperty('memory');
      expect(container?.resources?.limits).toHaveProperty('memory');
      expect(container?.volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
      expect(pod?.volumes?.[0]?.emptyDir).toBeDefined();
    });

    it('namespaces scope: a Role and RoleBinding per listed namespace, --namespaces, and a ClusterRole for ClusterOidcProviders and namespace labels only', async () => {
      const objs = await render('ops', ['rbac.scope=namespaces', 'rbac.namespaces={team-a,team-b}']);
      const roles = only<V1Role & Manifest>(objs, 'Role');
      expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['ops', 'team-a', 'team-b']);
      for (const ns of ['team-a', 'team-b']) {
        const role = single<V1Role & Manifest>(objs, 'Role', ns);
        expect(grants(role.rules)).toEqual([...NAMESPACED_GRANTS].sort());
        const binding = single<V1RoleBinding & Manifest>(objs, 'RoleBinding', ns);
        expect(binding.roleRef).toMatchObject({ kind: 'Role', name: role.metadata.name });
        expect(binding.subjects).toEqual([
          { kind: 'ServiceAccount', name: 'rel-oidc-client-operator', namespace: 'ops' },
        ]);
      }
      expect(
        grants(named<V1Role & Manifest>(objs, 'ClusterRole', 'rel-oidc-client-operator-ops').rules),
      ).toEqual([...CLUSTER_GRANTS].sort());
      const args = single<V1Deployment & Manifest>(objs, 'Deployment').spec?.template.spec?.containers[0]
        ?.args;
      expect(args).toContain('--namespaces=team-a,team-b');
    });

    it('a PodDisruptionBudget per Deployment (per shard), selecting exactly its Pods', async () => {
      interface Pdb extends Manifest {
        spec: { minAvailable?: unknown; maxUnavailable?: unknown; selector: { matchLabels: object } };
      }
      const one = await render('ops');
      const pdb = single<Pdb>(one, 'PodDisruptionBudget');
      const deployment = single<V1Deployment & Manifest>(one, 'Deployment');
      // Two replicas by default: one may go at a time, one stays (= minAvailable 1).
      expect(deployment.spec?.replicas).toBe(2);
      expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: deployment.spec?.selector });
      const min = single<Pdb>(
        await render('ops', ['podDisruptionBudget.minAvailable=50%']),
        'PodDisruptionBudget',
      );
      expect(min.spec).toMatchObject({ minAvailable: '50%' });
      expect(min.spec).not.toHaveProperty('maxUnavailable');

      const sharded = await render('ops', ['sharding.shards=3']);
      const pdbs = only<Pdb>(sharded, 'PodDisruptionBudget');
      const deployments = only<V1Deployment & Manifest>(sharded, 'Deployment');
      expect(pdbs.map((p) => p.metadata.name)).toEqual(deployments.map((d) => d.metadata.name));
      for (const [i, d] of deployments.entries()) expect(pdbs[i]?.spec.selector).toEqual(d.spec?.selector);

      expect(only(await render('ops', ['podDisruptionBudget.enabled=false']), 'PodDisruptionBudget')).toEqual(
        [],
      );
      expect(only(await render('ops', ['replicaCount=0']), 'PodDisruptionBudget')).toEqual([]);
      const bad = await run(['template', 'rel', CHART, '--set', 'podDisruptionBudget.maxUnavailable=one']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/podDisruptionBudget\/maxUnavailable/);
    });

    it('a NetworkPolicy only when enabled: probes/metrics in, DNS, apiserver and providers out', async () => {
      expect(only(await render('ops'), 'NetworkPolicy')).toEqual([]);
      const objs = await render('ops', [
        'networkPolicy.enabled=true',
        'networkPolicy.providers.cidrs={192.0.2.10/32}',
        'networkPolicy.apiServer.cidrs={10.96.0.1/32}',
        'networkPolicy.apiServer.ports={6443}',
      ]);
      const policy = single<Manifest & { spec: Record<string, unknown> }>(objs, 'NetworkPolicy');
      const deployment = single<V1Deployment & Manifest>(objs, 'Deployment');
      expect(policy.spec.podSelector).toEqual(deployment.spec?.selector);
      expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(policy.spec.ingress).toEqual([{ ports: [{ port: 8081, protocol: 'TCP' }] }]);
      expect(policy.spec.egress).toEqual([
        {
          to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
          ports: [
            { port: 53, protocol: 'UDP' },
            { port: 53, protocol: 'TCP' },
          ],
        },
        { to: [{ ipBlock: { cidr: '10.96.0.1/32' } }], ports: [{ port: 6443, protocol: 'TCP' }] },
        { to: [{ ipBlock: { cidr: '192.0.2.10/32' } }], ports: [{ port: 443, protocol: 'TCP' }] },
      ]);
      const bad = await run([
        'template',
        'rel',
        CHART,
        '--set',
        'networkPolicy.providers.cidrs={iam.example.org}',
      ]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/networkPolicy\/providers\/cidrs\/0/);
    });

    it('renders a ServiceMonitor only when enabled', async () => {
      expect(only(await render('ops'), 'ServiceMonitor')).toEqual([]);
      const monitor = single(await render('ops', ['metrics.serviceMonitor.enabled=true']), 'ServiceMonitor');
      expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
      expect(monitor.spec).toMatchObject({
        endpoints: [
          {
            port: 'metrics',
            path: '/metrics',
            bearerTokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token',
          },
        ],
      });
      // --metrics-auth=none: open /metrics, no review grants, no reader role, no token sent.
      const open = await render('ops', ['metrics.auth=none', 'metrics.serviceMonitor.enabled=true']);
      expect(only(open, 'ClusterRole')).toHaveLength(1);
      expect(grants(single<V1Role & Manifest>(open, 'ClusterRole').rules)).not.toContain(
        'authentication.k8s.io/tokenreviews create',
      );
      expect(single(open, 'ServiceMonitor').spec).not.toHaveProperty('endpoints.0.bearerTokenFile');
      const args = single<V1Deployment & Manifest>(open, 'Deployment').spec?.template.spec?.containers[0]
        ?.args;
      expect(args).toContain('--metrics-auth=none');
    });

    it('sharding.shards=n: one Deployment per shard, each its own selector, shard flags and Lease', async () => {
      const one = only<V1Deployment & Manifest>(await render('ops'), 'Deployment');
      expect(one.map((d) => d.metadata.name)).toEqual(['rel-oidc-client-operator']);
      expect(one[0]?.spec?.template.spec?.containers[0]?.args?.some((a) => a.startsWith('--shard'))).toBe(
        false,
      );
      const three = only<V1Deployment & Manifest>(
        await render('ops', ['sharding.shards=3', 'replicaCount=2']),
        'Deployment',
      );
      expect(three.map((d) => d.metadata.name)).toEqual(
        [0, 1, 2].map((i) => `rel-oidc-client-operator-shard-${i}`),
      );
      const leases = new Set<string>();
      for (const [i, d] of three.entries()) {
        expect(d.spec?.replicas).toBe(2);
        // Distinct selectors: the Deployments never adopt each other's Pods.
        expect(d.spec?.selector.matchLabels?.['oidc.dcr-operator.dev/shard']).toBe(String(i));
        expect(d.spec?.template.metadata?.labels?.['oidc.dcr-operator.dev/shard']).toBe(String(i));
        // What the operator makes of the rendered flags: shard i of 3, on a Lease of its own.
        const args = (d.spec?.template.spec?.containers[0]?.args ?? []).filter((a) => a !== 'run');
        const flags = parseOperatorFlags(args, {});
        expect(flags.shard).toEqual({ index: i, total: 3 });
        leases.add(flags.leaderElectionId);
      }
      expect([...leases].sort()).toEqual([0, 1, 2].map((i) => `rel-oidc-client-operator-shard-${i}`));
      const zero = await run(['template', 'rel', CHART, '--set', 'sharding.shards=0']);
      expect(zero.code).not.toBe(0);
    });

    it('values.schema.json rejects typos and wrong types before anything is rendered', async () => {
      const typo = await run(['template', 'rel', CHART, '--set', 'rbac.scope=clusterr']);
      expect(typo.code).not.toBe(0);
      expect(typo.stderr).toMatch(/rbac\/scope.*must be one of/);
      const wrongType = await run(['template', 'rel', CHART, '--set-string', 'replicaCount=3']);
      expect(wrongType.code).not.toBe(0);
      expect(wrongType.stderr).toMatch(/replicaCount.*want integer/);
      const noNamespaces = await run(['template', 'rel', CHART, '--set', 'rbac.scope=namespaces']);
      expect(noNamespaces.code).not.toBe(0);
      expect(noNamespaces.stderr).toMatch(/rbac\/namespaces/);
    });
  });

  describe('on the apiserver', () => {
    it('helm install, upgrade and uninstall in cluster scope; the ServiceAccount gets exactly its grants', async () => {
      const ns = await newNamespace('install-helm');
      // Pods created from the chart's template must pass the "restricted" Pod Security Standard.
      const label = await kubectl(binDir, kubeconfigPath, [
        'label',
        'namespace',
        ns,
        'pod-security.kubernetes.io/enforce=restricted',
      ]);
      expect(label.code, label.stderr).toBe(0);

      releases.push({ name: 'op', namespace: ns });
      const notes = await helmOk([
        'install',
        'op',
        CHART,
        '--namespace',
        ns,
        '--set',
        'networkPolicy.enabled=true',
      ]);
      expect(notes).toContain('get oidcclients');
      expect(notes).toContain('wait oidcclient/');

      const apps = kc.makeApiClient(AppsV1Api);
      const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
      const core = kc.makeApiClient(CoreV1Api);
      const ext = kc.makeApiClient(ApiextensionsV1Api);
      const name = 'op-oidc-client-operator';
      const globalName = `${name}-${ns}`;
      const sa = { namespace: ns, name };

      const deployment = await apps.readNamespacedDeployment({ namespace: ns, name });
      expect(deployment.spec?.replicas).toBe(2);
      await core.readNamespacedServiceAccount({ namespace: ns, name });
      await rbac.readClusterRole({ name: globalName });
      await rbac.readClusterRoleBinding({ name: globalName });
      await rbac.readClusterRole({ name: `${globalName}-metrics-reader` });
      await rbac.readNamespacedRole({ namespace: ns, name: `${name}-leader-election` });
      // The apiserver accepted the PodDisruptionBudget and the NetworkPolicy as rendered.
      const pdb = await kubectl(binDir, kubeconfigPath, ['get', 'pdb', name, '-n', ns, '-o', 'json']);
      expect(pdb.code, pdb.stderr).toBe(0);
      expect(JSON.parse(pdb.stdout).spec).toMatchObject({ maxUnavailable: 1 });
      const policy = await kubectl(binDir, kubeconfigPath, ['get', 'networkpolicy', name, '-n', ns]);
      expect(policy.code, policy.stderr).toBe(0);
      // Helm installs crds/ only when absent; either way they must be there afterwards.
      for (const crd of CRDS) await ext.readCustomResourceDefinition({ name: crd });

      // The RBAC authorizer picks new bindings up from its informers: wait for the first grant.
      await waitFor(() => allowed(sa, 'list', { group: GROUP, resource: 'oidcclients' }), {
        description: 'the chart ClusterRoleBinding to take effect',
        timeoutMs: 10_000,
      });
      const other = 'some-other-namespace';
      expect(
        await allowed(sa, 'patch', {
          group: GROUP,
          resource: 'oidcclients',
          subresource: 'status',
          namespace: other,
        }),
      ).toBe(true);
      expect(
        await allowed(sa, 'update', {
          group: GROUP,
          resource: 'oidcclients',
          subresource: 'finalizers',
          namespace: other,
        }),
      ).toBe(true);
      expect(await allowed(sa, 'delete', { group: '', resource: 'secrets', namespace: other })).toBe(true);
      expect(await allowed(sa, 'create', { group: '', resource: 'events', namespace: other })).toBe(true);
      expect(
        await allowed(sa, 'update', {
          group: GROUP,
          resource: 'clusteroidcproviders',
          subresource: 'status',
        }),
      ).toBe(true);
      expect(
        await allowed(sa, 'update', { group: 'coordination.k8s.io', resource: 'leases', namespace: ns }),
      ).toBe(true);
      expect(await allowed(sa, 'create', { group: 'authentication.k8s.io', resource: 'tokenreviews' })).toBe(
        true,
      );
      // Least privilege: no writes to users' specs, no Leases elsewhere, nothing unrelated.
      expect(await allowed(sa, 'create', { group: GROUP, resource: 'oidcclients', namespace: other })).toBe(
        false,
      );
      expect(await allowed(sa, 'delete', { group: GROUP, resource: 'oidcclients', namespace: other })).toBe(
        false,
      );
      expect(await allowed(sa, 'update', { group: GROUP, resource: 'oidcproviders', namespace: other })).toBe(
        false,
      );
      expect(
        await allowed(sa, 'update', { group: 'coordination.k8s.io', resource: 'leases', namespace: other }),
      ).toBe(false);
      expect(await allowed(sa, 'get', { group: '', resource: 'configmaps', namespace: ns })).toBe(false);

      // Admission of the Pod the Deployment would create, as a server-side dry run.
      const template = deployment.spec?.template;
      const podBody = {
        metadata: { name: 'dry-run', labels: template?.metadata?.labels },
        spec: template?.spec,
      };
      await core.createNamespacedPod({ namespace: ns, body: podBody, dryRun: 'All' });
      // ...and proof that this check bites: the same Pod without the non-root guarantees is refused.
      const weakened = structuredClone(podBody);
      if (weakened.spec) weakened.spec.securityContext = {};
      for (const c of weakened.spec?.containers ?? []) c.securityContext = {};
      await expect(
        core.createNamespacedPod({ namespace: ns, body: weakened, dryRun: 'All' }),
      ).rejects.toSatisfy((e) => isApiError(e, 403));

      await helmOk(['upgrade', 'op', CHART, '--namespace', ns, '--reuse-values', '--set', 'replicaCount=3']);
      const upgraded = await apps.readNamespacedDeployment({ namespace: ns, name });
      expect(upgraded.spec?.replicas).toBe(3);

      await helmOk(['uninstall', 'op', '--namespace', ns]);
      const gone = [
        () => apps.readNamespacedDeployment({ namespace: ns, name }),
        () => core.readNamespacedServiceAccount({ namespace: ns, name }),
        () => rbac.readClusterRole({ name: globalName }),
        () => rbac.readClusterRoleBinding({ name: globalName }),
        () => rbac.readClusterRole({ name: `${globalName}-metrics-reader` }),
        () => rbac.readNamespacedRole({ namespace: ns, name: `${name}-leader-election` }),
      ];
      for (const read of gone) await expect(read()).rejects.toSatisfy((e) => isApiError(e, 404));
      for (const kind of ['pdb', 'networkpolicy']) {
        const left = await kubectl(binDir, kubeconfigPath, ['get', kind, name, '-n', ns]);
        expect(left.stderr, kind).toMatch(/NotFound/);
      }
      // CRDs outlive releases (Helm never deletes crds/): users' OidcClients must survive an uninstall.
      for (const crd of CRDS) await ext.readCustomResourceDefinition({ name: crd });
    });

    it('helm install in namespaces scope grants only the listed namespaces', async () => {
      const [ns, watched] = await Promise.all([
        newNamespace('install-scoped'),
        newNamespace('install-watched'),
      ]);
      releases.push({ name: 'op', namespace: ns });
      await helmOk([
        'install',
        'op',
        CHART,
        '--namespace',
        ns,
        '--set',
        'rbac.scope=namespaces',
        '--set',
        `rbac.namespaces={${watched}}`,
      ]);
      const name = 'op-oidc-client-operator';
      const sa = { namespace: ns, name };
      const deployment = await kc.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace: ns, name });
      expect(deployment.spec?.template.spec?.containers[0]?.args).toContain(`--namespaces=${watched}`);

      await waitFor(
        () => allowed(sa, 'watch', { group: GROUP, resource: 'oidcclients', namespace: watched }),
        {
          description: 'the chart RoleBinding in the watched namespace to take effect',
          timeoutMs: 10_000,
        },
      );
      expect(await allowed(sa, 'create', { group: '', resource: 'secrets', namespace: watched })).toBe(true);
      expect(await allowed(sa, 'list', { group: GROUP, resource: 'clusteroidcproviders' })).toBe(true);
      expect(
        await allowed(sa, 'update', { group: 'coordination.k8s.io', resource: 'leases', namespace: ns }),
      ).toBe(true);
      // Not listed: the release namespace itself, and any cluster-wide list of namespaced resources.
      expect(await allowed(sa, 'get', { group: '', resource: 'secrets', namespace: ns })).toBe(false);
      expect(await allowed(sa, 'list', { group: GROUP, resource: 'oidcclients' })).toBe(false);

      await helmOk(['uninstall', 'op', '--namespace', ns]);
      await expect(
        kc
          .makeApiClient(RbacAuthorizationV1Api)
          .readNamespacedRole({ namespace: watched, name: `${name}-${ns}` }),
      ).rejects.toSatisfy((e) => isApiError(e, 404));
    });

    it('kubectl apply -k manifests installs the operator into its namespace', async () => {
      const built = await kubectl(binDir, kubeconfigPath, ['kustomize', resolve(ROOT, 'manifests')]);
      expect(built.code, built.stderr).toBe(0);
      const objs = parseManifests(built.stdout);
      const clusterScoped = objs.filter((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding');
      expect(clusterScoped).toHaveLength(3);
      try {
        const applied = await kubectl(binDir, kubeconfigPath, ['apply', '-k', resolve(ROOT, 'manifests')]);
        expect(applied.code, applied.stderr).toBe(0);
        const deployment = await kc
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ namespace: PLAIN_NAMESPACE, name: 'oidc-client-operator' });
        expect(deployment.spec?.replicas).toBe(2);
        expect(deployment.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('kustomize');
        const namespace = await kc.makeApiClient(CoreV1Api).readNamespace({ name: PLAIN_NAMESPACE });
        expect(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
        const binding = await kc
          .makeApiClient(RbacAuthorizationV1Api)
          .readClusterRoleBinding({ name: 'oidc-client-operator-oidc-client-operator' });
        expect(binding.subjects).toEqual([
          { kind: 'ServiceAccount', name: 'oidc-client-operator', namespace: PLAIN_NAMESPACE },
        ]);
      } finally {
        // Not `kubectl delete -k`: that would delete the CRDs other tests use.
        const names = clusterScoped.map((o) => `${o.kind.toLowerCase()}/${o.metadata.name}`);
        await kubectl(binDir, kubeconfigPath, ['delete', ...names, '--ignore-not-found']);
        await kubectl(binDir, kubeconfigPath, [
          'delete',
          'namespace',
          PLAIN_NAMESPACE,
          '--ignore-not-found',
          '--wait=false',
        ]);
      }
    });

    it('the committed manifests match a fresh rendering of the chart (render-manifests --check)', async () => {
      const r = await runTool(
        process.execPath,
        ['--import', 'tsx', 'scripts/render-manifests.ts', '--check', '--helm', resolve(binDir, 'helm')],
        // Helm's folders next to the kubeconfig, as the harness keeps them (never the user's ~/.config/helm).
        { cwd: ROOT, timeoutMs: 60_000, env: helmHome(kubeconfigPath) },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('up to date');
    });
  });

  describe('CRD upgrade path and uninstall (a control plane of its own: CRDs are cluster-global)', () => {
    let plane: ControlPlane;
    let work: string;
    const CLIENT_CRD = `oidcclients.${GROUP}`;

    beforeAll(async () => {
      [plane, work] = await Promise.all([
        startControlPlane({ controllerManager: false }),
        mkdtemp(join(tmpdir(), 'chart-upgrade-')),
      ]);
    });
    afterAll(async () => {
      await plane?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    const ok = async (what: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> => {
      const r = await what;
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const applyClient = (yamlText: string) =>
      plane.kubectl(['apply', '-n', 'default', '-f', '-'], { input: yamlText });
    const client = (name: string, spec: string) =>
      `apiVersion: ${GROUP}/v1alpha1\nkind: OidcClient\nmetadata:\n  name: ${name}\nspec:\n  providerRef: { name: iam }\n${spec}`;
    const withNewField = client('web', '  postLogoutRedirectUris: [https://app.example.org/]\n');

    /** The previous release: this chart, but its OidcClient CRD lacks a field and the CEL rules. */
    async function previousChart(): Promise<string> {
      const dir = join(work, 'previous');
      await cp(CHART, dir, { recursive: true });
      const chartYaml = join(dir, 'Chart.yaml');
      await writeFile(
        chartYaml,
        (await readFile(chartYaml, 'utf8')).replace(/^version: .*$/m, 'version: 0.0.1'),
      );
      const file = join(dir, 'crds', `${GROUP}_oidcclients.yaml`);
      const crd = parse(await readFile(file, 'utf8')) as {
        spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
      };
      const root = crd.spec.versions[0]?.schema.openAPIV3Schema as Record<string, unknown>;
      const strip = (node: unknown): void => {
        if (typeof node !== 'object' || node === null) return;
        delete (node as Record<string, unknown>)['x-kubernetes-validations'];
        for (const child of Object.values(node)) strip(child);
      };
      strip(root);
      const spec = (root.properties as Record<string, { properties: Record<string, unknown> }>).spec;
      delete spec?.properties.postLogoutRedirectUris;
      await writeFile(file, stringify(crd));
      return dir;
    }

    it('older chart → helm upgrade → the documented CRD apply brings new fields and rules; uninstall keeps CRDs and clients until the CRDs are deleted', async () => {
      await ok(
        plane.helm(['install', 'op', await previousChart(), '--namespace', 'op', '--create-namespace']),
      );
      const before = await applyClient(withNewField);
      expect(before.code).not.toBe(0);
      expect(before.stderr).toMatch(/unknown field "spec\.postLogoutRedirectUris"/);

      // Helm never upgrades what is in crds/: after the upgrade the old CRD is still served.
      await ok(plane.helm(['upgrade', 'op', CHART, '--namespace', 'op']));
      expect(await ok(plane.helm(['list', '--namespace', 'op']))).toContain('oidc-client-operator-0.');
      const stillOld = await applyClient(withNewField);
      expect(stillOld.stderr).toMatch(/unknown field "spec\.postLogoutRedirectUris"/);

      // The README's step: server-side apply of the chart's crds/ (Helm created them: take them over).
      await ok(plane.kubectl(['apply', '--server-side', '--force-conflicts', '-f', join(CHART, 'crds')]));
      await ok(plane.kubectl(['wait', '--for=condition=Established', '--timeout=60s', `crd/${CLIENT_CRD}`]));
      await waitFor(
        async () => {
          const r = await applyClient(withNewField);
          if (r.code !== 0) throw new Error(r.stderr);
          return true;
        },
        { description: 'the upgraded CRD to accept the new field', timeoutMs: 30_000, intervalMs: 500 },
      );
      const collide = await applyClient(
        client('clash', '  secretName: creds\n  managementSecretName: creds\n'),
      );
      expect(collide.stderr).toContain(
        'spec.managementSecretName: Invalid value: the application Secret and the management Secret must have different names',
      );

      // Uninstall removes the release's objects and keeps the API and the users' objects.
      await ok(plane.helm(['uninstall', 'op', '--namespace', 'op']));
      for (const kind of ['deployment', 'pdb', 'serviceaccount', 'service']) {
        const left = await plane.kubectl(['get', kind, 'op-oidc-client-operator', '-n', 'op']);
        expect(left.stderr, kind).toMatch(/NotFound/);
      }
      const roles = await plane.kubectl(['get', 'clusterroles', '-o', 'name']);
      expect(roles.stdout).not.toContain('op-oidc-client-operator');
      await ok(plane.kubectl(['get', 'crd', CLIENT_CRD]));
      await ok(plane.kubectl(['get', 'oidcclient', 'web', '-n', 'default']));

      // The README's last step: deleting the CRDs removes the API and whatever objects are left.
      // One at a time: the apiserver empties each before it goes (generous on a loaded machine);
      // a CRD that stays names its Terminating condition in the failure.
      for (const crd of CRDS) {
        await ok(plane.kubectl(['delete', 'crd', crd, '--wait=false']));
        let last = '';
        await waitFor(
          async () => {
            const got = await plane.kubectl([
              'get',
              'crd',
              crd,
              '-o',
              'jsonpath={.status.conditions[?(@.type=="Terminating")].message}',
            ]);
            last = got.stdout || got.stderr;
            return /NotFound/.test(got.stderr);
          },
          { description: `${crd} deleted`, timeoutMs: 150_000, intervalMs: 1_000 },
        ).catch((error: Error) => {
          throw new Error(`${error.message}; Terminating: ${last}`);
        });
      }
      const left = await plane.kubectl(['get', 'oidcclients', '-A']);
      expect(left.code).not.toBe(0);
      expect(left.stderr).toMatch(/doesn't have a resource type|could not find the requested resource/);
    }, 300_000);
  });
});
