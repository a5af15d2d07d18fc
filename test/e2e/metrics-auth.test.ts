// /metrics behind Kubernetes authentication and authorization (--metrics-auth=kubernetes): a real
// kube-apiserver reviews ServiceAccount tokens (TokenReview) and RBAC decides (SubjectAccessReview
// for get on the non-resource URL /metrics). Probes stay open.
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubeRest } from '../../src/kube/rest.js';
import { type HealthServer, startHealthServer } from '../../src/observability/health-server.js';
import { OperatorMetrics } from '../../src/observability/metrics.js';
import { KubernetesMetricsAuth } from '../../src/observability/metrics-auth.js';
import { createTestNamespace, kubeConfigFromFile, type TestNamespace, waitFor } from '../harness/kube.js';

const kc = kubeConfigFromFile(inject('kubeconfigPath'));

describe('/metrics with --metrics-auth=kubernetes', () => {
  let ns: TestNamespace;
  let rest: KubeRest;
  let health: HealthServer;
  const core = kc.makeApiClient(CoreV1Api);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  let roleName: string;

  const scrape = (token?: string) =>
    fetch(`http://127.0.0.1:${health.port}/metrics`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  async function tokenFor(name: string): Promise<string> {
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name } } });
    const tr = await core.createNamespacedServiceAccountToken({
      name,
      namespace: ns.name,
      body: { spec: { expirationSeconds: 600, audiences: [] } },
    });
    return tr.status?.token as string;
  }

  beforeAll(async () => {
    ns = await createTestNamespace(kc, 'metrics-auth');
    roleName = `${ns.name}-metrics-reader`;
    rest = new KubeRest(kc);
    const metrics = new OperatorMetrics();
    metrics.leader.set(1);
    health = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      metricsAuth: new KubernetesMetricsAuth(rest, { denyTtlMs: 200 }),
    });
  });

  afterAll(async () => {
    await health?.close();
    await rbac.deleteClusterRoleBinding({ name: roleName }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: roleName }).catch(() => undefined);
    await rest?.close();
    await ns?.cleanup();
  });

  it('refuses anonymous and unknown tokens (401), and tokens without RBAC (403); probes stay open', async () => {
    const anonymous = await scrape();
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain('oidc_operator_');
    expect((await scrape('not-a-token')).status).toBe(401);
    const nobody = await scrape(await tokenFor('nobody'));
    expect(nobody.status).toBe(403);
    expect(await nobody.text()).toContain(`system:serviceaccount:${ns.name}:nobody may not get /metrics`);
    expect((await fetch(`http://127.0.0.1:${health.port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${health.port}/readyz`)).status).toBe(200);
  });

  it('serves a ServiceAccount bound to a metrics-reader ClusterRole', async () => {
    const token = await tokenFor('prometheus');
    expect((await scrape(token)).status).toBe(403);
    await rbac.createClusterRole({
      body: {
        metadata: { name: roleName },
        rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: roleName },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
        subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: ns.name }],
      },
    });
    const allowed = await waitFor(
      async () => {
        const res = await scrape(token);
        return res.status === 200 ? res.text() : undefined;
      },
      { description: 'an allowed scrape', timeoutMs: 10_000, intervalMs: 300 },
    );
    expect(allowed).toContain('oidc_operator_leader 1');
  });
});
