// The chaos checker must be able to fail: each invariant is shown failing on a snapshot with
// exactly that defect, and passing on a healthy one.
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { OidcClient } from '../../../src/api/types.generated.js';
import type { ProxiedRequest } from '../../harness/chaos/apiserver-proxy.js';
import { type CheckContext, checkInvariants, writeTarget } from '../../harness/chaos/invariants.js';
import type { ChaosEvent } from '../../harness/chaos/timeline.js';
import { redirectUri } from '../../harness/chaos/workload.js';
import type { RecordedRequest, StoredClient } from '../../harness/registration-server/types.js';

const GROUP = 'oidc.dcr-operator.dev';
const REG = '/iam/api/client-registration';
const T0 = 1_700_000_000_000;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function cr(name: string, id: string): OidcClient {
  return {
    apiVersion: `${GROUP}/v1alpha1`,
    kind: 'OidcClient',
    metadata: { name, generation: 1 },
    spec: { providerRef: { name: 'iam' }, redirectUris: [redirectUri(name, 0)] },
    status: {
      observedGeneration: 1,
      clientId: id,
      conditions: [{ type: 'Ready', status: 'True', reason: 'Registered', observedGeneration: 1 }],
    },
  };
}

function secret(
  name: string,
  role: 'credentials' | 'registration',
  owner: string,
  data: Record<string, string>,
): V1Secret {
  return {
    metadata: {
      name,
      labels: {
        'app.kubernetes.io/managed-by': 'oidc-client-operator',
        [`${GROUP}/client`]: owner,
        [`${GROUP}/secret-role`]: role,
      },
    },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

function healthy(): CheckContext {
  const names = ['a', 'b', 'c'];
  const store: StoredClient[] = names.map((n) => ({
    clientId: `id-${n}`,
    metadata: {
      client_name: n,
      client_secret: `secret-of-${n}-0123456789abcdef`,
      redirect_uris: [redirectUri(n, 0)],
    },
  }));
  const requests: RecordedRequest[] = names.flatMap((n, i) => [
    {
      method: 'POST',
      path: REG,
      status: 201,
      at: T0 + i * 1000,
      answeredAt: T0 + i * 1000 + 5,
      clientId: `id-${n}`,
      clientName: n,
    },
    { method: 'GET', path: `${REG}/id-${n}`, status: 200, at: T0 + 10_000 + i },
  ]);
  return {
    expect: { present: new Map(names.map((n) => [n, 0])), deleted: new Set(['gone']) },
    snapshot: {
      crs: names.map((n) => cr(n, `id-${n}`)),
      secrets: names.flatMap((n) => [
        secret(`${n}-oidc-client`, 'credentials', n, {
          client_id: `id-${n}`,
          client_secret: `secret-of-${n}-0123456789abcdef`,
        }),
        secret(`${n}-oidc-registration`, 'registration', n, {
          client_id: `id-${n}`,
          registration_access_token: `rat-of-${n}-0123456789abcdef`,
        }),
      ]),
      events: [],
      store,
    },
    requests,
    apiRequests: names.map((n) => ({
      at: T0,
      method: 'PATCH',
      path: `/apis/${GROUP}/v1alpha1/namespaces/x/oidcclients/${n}/status`,
      watch: false,
      status: 200,
    })),
    timeline: [],
    exits: [],
    runMs: 60_000,
    resyncMs: 30_000,
    providerTimeoutMs: 4_000,
    operatorLog: '{"msg":"registered client","clientId":"id-a"}\n',
    health: { 'chaos-a': 200, 'chaos-b': 200 },
    tokenResults: new Map(names.map((n) => [`id-${n}`, 200])),
  };
}

const failing = (ctx: CheckContext) =>
  checkInvariants(ctx)
    .results.filter((r) => !r.ok)
    .map((r) => r.name);

describe('chaos invariants', () => {
  it('pass on a healthy snapshot', () => {
    const { results, figures } = checkInvariants(healthy());
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(figures.orphans).toEqual([]);
    expect(figures.providerRequestsPerClient.POST?.max).toBe(1);
  });

  it('fail when an OidcClient is not Ready for its generation', () => {
    const ctx = healthy();
    ctx.snapshot.crs[0]!.metadata.generation = 2;
    expect(failing(ctx)).toEqual(['every OidcClient Ready']);
  });

  it('fail when a deleted OidcClient is still there', () => {
    const ctx = healthy();
    ctx.expect.deleted.add('c');
    ctx.expect.present.delete('c');
    expect(failing(ctx)).toContain('resources match what was applied');
  });

  it('fail when the management Secret names a client the provider does not have', () => {
    const ctx = healthy();
    ctx.snapshot.store = ctx.snapshot.store.filter((c) => c.clientId !== 'id-b');
    expect(failing(ctx)).toEqual(
      expect.arrayContaining([
        'exactly one live client per OidcClient, matching its spec',
        'no Secret points at a deleted client',
      ]),
    );
  });

  it('fail when the provider kept an old redirect URI', () => {
    const ctx = healthy();
    ctx.expect.present.set('a', 1);
    expect(failing(ctx)).toEqual(['exactly one live client per OidcClient, matching its spec']);
  });

  it('fail when two OidcClients share a client', () => {
    const ctx = healthy();
    const mgmt = ctx.snapshot.secrets.find((s) => s.metadata?.name === 'b-oidc-registration')!;
    mgmt.data = { ...mgmt.data, client_id: b64('id-a') };
    expect(failing(ctx)).toContain('duplicates (a client referenced by two OidcClients) = 0');
  });

  it('explain an orphan by a lost answer or a SIGKILL after its POST, and fail on an unexplained one', () => {
    const ctx = healthy();
    const orphanPost = (id: string, at: number, fault?: string): RecordedRequest => ({
      method: 'POST',
      path: REG,
      status: 201,
      at,
      answeredAt: at + 5,
      clientId: id,
      clientName: 'a',
      ...(fault ? { fault } : {}),
    });
    ctx.snapshot.store.push(
      { clientId: 'lost', metadata: { client_name: 'a' } },
      { clientId: 'killed', metadata: { client_name: 'b' } },
      { clientId: 'stray', metadata: { client_name: 'c' } },
    );
    (ctx.requests as RecordedRequest[]).push(
      orphanPost('lost', T0 + 100, 'swallow-drop'),
      orphanPost('killed', T0 + 200),
      orphanPost('stray', T0 - 60_000),
    );
    const kill: ChaosEvent = { at: T0 + 210, kind: 'sigkill-after-post', detail: 'chaos-a' };
    ctx.timeline = [kill];
    // 'stray' was registered a minute before any interruption: nothing explains losing its answer.
    const { results, figures } = checkInvariants(ctx);
    expect(figures.orphansByCause).toEqual({ 'answer-lost': 1, sigkill: 1, unexplained: 1 });
    const orphans = results.find((r) => r.name === 'orphans only inside the POST-to-persist window');
    expect(orphans?.ok).toBe(false);
    expect(orphans?.examples?.[0]).toContain('stray');
  });

  it('fail when credentials do not authenticate', () => {
    const ctx = healthy();
    ctx.tokenResults.set('id-c', 401);
    expect(failing(ctx)).toEqual(["every Secret's credentials authenticate (client_credentials)"]);
  });

  it('fail on a hot loop at the provider and at the apiserver', () => {
    const ctx = healthy();
    const many = Array.from(
      { length: 500 },
      (_, i): RecordedRequest => ({ method: 'GET', path: `${REG}/id-a`, status: 503, at: T0 + i }),
    );
    ctx.requests = [...ctx.requests, ...many];
    ctx.apiRequests = [
      ...ctx.apiRequests,
      ...Array.from(
        { length: 500 },
        (): ProxiedRequest => ({
          at: T0,
          method: 'PUT',
          path: '/api/v1/namespaces/x/secrets/b-oidc-registration',
          watch: false,
          status: 200,
        }),
      ),
    ];
    expect(failing(ctx)).toEqual([
      'provider requests per client within the backoff budget',
      'apiserver writes per client within budget',
    ]);
  });

  it('fail on a crash, an unhealthy replica and a leaked credential', () => {
    const ctx = healthy();
    ctx.exits = [{ identity: 'chaos-a', at: T0, code: 1, signal: null, cause: 'crash' }];
    expect(failing(ctx)).toEqual(['operator never crashed, is healthy and stops on SIGTERM']);
    const ctx2 = healthy();
    ctx2.health['chaos-b'] = 0;
    expect(failing(ctx2)).toEqual(['operator never crashed, is healthy and stops on SIGTERM']);
    const ctx3 = healthy();
    ctx3.operatorLog += '{"msg":"oops","token":"rat-of-b-0123456789abcdef"}\n';
    expect(failing(ctx3)).toEqual(['no credential in the operator log']);
  });

  it('attributes operator writes to the OidcClient they are for', () => {
    const w = (method: string, path: string, name?: string): ProxiedRequest => ({
      at: 0,
      method,
      path,
      watch: false,
      status: 200,
      ...(name ? { name } : {}),
    });
    expect(writeTarget(w('PATCH', `/apis/${GROUP}/v1alpha1/namespaces/ns/oidcclients/web/status`))).toEqual({
      resource: 'oidcclients/status',
      client: 'web',
    });
    expect(writeTarget(w('POST', '/api/v1/namespaces/ns/secrets', 'web-oidc-registration'))).toEqual({
      resource: 'secrets',
      client: 'web',
    });
    expect(writeTarget(w('PUT', '/api/v1/namespaces/ns/secrets/web-oidc-client'))).toEqual({
      resource: 'secrets',
      client: 'web',
    });
    expect(writeTarget(w('POST', '/api/v1/namespaces/ns/events', 'web.1a2b3c4d5e6f7a8b'))).toEqual({
      resource: 'events',
      client: 'web',
    });
    expect(writeTarget(w('PUT', '/apis/coordination.k8s.io/v1/namespaces/ns/leases/op'))).toBeUndefined();
  });
});
