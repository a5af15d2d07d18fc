// The OidcClient lifecycle on real parts: kubectl apply against the real kube-apiserver, the
// operator's controller running against it, and node-oidc-provider serving IAM's registration
// API, in both the IAM-like (stable token) and the rotating-token mode.
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
import {
  type RatMode,
  type RegistrationServer,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');

const WEB_SPEC = `  clientName: shop
  redirectUris: [https://shop.example.org/callback]
  grantTypes: [authorization_code, refresh_token]
  responseTypes: [code]
  scopes: [openid, email]
  contacts: [ops@example.org]
`;

/** Asks the token endpoint whether the credentials authenticate (anything but invalid_client). */
async function credentialsAuthenticate(tokenEndpoint: string, id: string, secret: string): Promise<boolean> {
  const res = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  const body = (await res.json()) as { error?: string };
  return body.error !== 'invalid_client';
}

describe.each<RatMode>(['iam', 'rotating'])('OidcClient lifecycle (%s mode)', (mode) => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;

  beforeAll(async () => {
    const kc = kubeConfigFromFile(kubeconfigPath);
    server = await startRegistrationServer({ mode });
    ns = await createTestNamespace(kc, `lifecycle-${mode}`);
    r = new OidcReader(kc, ns.name);
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      resyncIntervalMs: 2_000,
      deletionTimeoutMs: 4_000,
    });
    await apply(providerYaml('iam', server.issuer));
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('registers once and writes the application and management Secrets', async () => {
    await apply(clientYaml('shop', 'iam', WEB_SPEC));
    const cr = await r.waitReady('shop');
    expect(r.condition(cr, 'Ready')?.reason).toBe('Registered');
    const app = await r.secretValues('shop-oidc-client');
    const mgmt = await r.secretValues('shop-oidc-registration');
    expect(app?.client_id).toBe(cr.status?.clientId);
    expect(app?.client_secret).toBeTruthy();
    expect(app?.issuer).toBe(server.issuer);
    expect(app?.token_endpoint).toBe(server.tokenEndpoint);
    expect(app).not.toHaveProperty('registration_access_token');
    expect(mgmt?.registration_access_token).toBeTruthy();
    expect(mgmt?.registration_client_uri).toBe(`${server.registrationEndpoint}/${cr.status?.clientId}`);
    expect(posts()).toBe(1);
    const stored = await server.store.get(cr.status?.clientId as string);
    expect(stored?.metadata.redirect_uris).toEqual(['https://shop.example.org/callback']);
    expect(stored?.metadata.client_name).toBe('shop');
    expect(
      await credentialsAuthenticate(
        server.tokenEndpoint,
        app?.client_id as string,
        app?.client_secret as string,
      ),
    ).toBe(true);
    // Both Secrets belong to the OidcClient (garbage collection, ownership checks).
    const secret = await r.secret('shop-oidc-client');
    expect(secret?.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'OidcClient',
      name: 'shop',
      uid: cr.metadata.uid,
      controller: true,
    });
    // A new client needs no Event: the Ready condition says Registered (an Event would be one more
    // write per client).
    expect(await r.events('shop')).toEqual([]);
  });

  it('sends a spec change with PUT and keeps the (possibly rotated) token', async () => {
    const before = await r.secretValues('shop-oidc-registration');
    await apply(
      clientYaml(
        'shop',
        'iam',
        WEB_SPEC.replace('https://shop.example.org/callback', 'https://shop.example.org/cb2').replace(
          '[openid, email]',
          '[openid, email, profile]',
        ),
      ),
    );
    const cr = await r.waitReady('shop');
    expect(cr.metadata.generation).toBe(2);
    const stored = await server.store.get(cr.status?.clientId as string);
    expect(stored?.metadata.redirect_uris).toEqual(['https://shop.example.org/cb2']);
    expect(String(stored?.metadata.scope).split(' ').sort()).toEqual(['email', 'openid', 'profile']);
    expect(posts()).toBe(1);
    const after = await r.secretValues('shop-oidc-registration');
    if (mode === 'rotating')
      expect(after?.registration_access_token).not.toBe(before?.registration_access_token);
    else expect(after?.registration_access_token).toBe(before?.registration_access_token);
    expect(server.requests.some((q) => q.method === 'PUT' && q.status === 200)).toBe(true);
  });

  it('repairs out-of-band changes at the provider on the next drift check', async () => {
    const cr = await r.waitReady('shop');
    const id = cr.status?.clientId as string;
    await server.store.update(id, { redirect_uris: ['https://evil.example.org/steal'] });
    await waitFor(
      async () => {
        const s = await server.store.get(id);
        return JSON.stringify(s?.metadata.redirect_uris) === JSON.stringify(['https://shop.example.org/cb2']);
      },
      { description: 'redirect URIs restored at the provider', timeoutMs: 15_000 },
    );
    await waitFor(async () => (await r.events('shop')).some((e) => e.reason === 'DriftCorrected'), {
      description: 'DriftCorrected event',
      timeoutMs: 5_000,
    });
    expect(posts()).toBe(1);
  });

  it('restores deleted or edited Secrets without registering again', async () => {
    const cr = await r.waitReady('shop');
    const original = await r.secretValues('shop-oidc-client');
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'secret', 'shop-oidc-client'], {
      namespace: ns.name,
    });
    expect(del.code).toBe(0);
    await waitFor(async () => (await r.secretValues('shop-oidc-client'))?.client_id === cr.status?.clientId, {
      description: 'application Secret recreated',
      timeoutMs: 10_000,
    });
    const patched = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'shop-oidc-client', '-p', '{"stringData":{"client_secret":"tampered"}}'],
      { namespace: ns.name },
    );
    expect(patched.code).toBe(0);
    await waitFor(
      async () => (await r.secretValues('shop-oidc-client'))?.client_secret === original?.client_secret,
      {
        description: 'client_secret restored',
        timeoutMs: 10_000,
      },
    );
    const mgmtBefore = await r.secretValues('shop-oidc-registration');
    const delMgmt = await kubectl(
      binDir,
      kubeconfigPath,
      ['delete', 'secret', 'shop-oidc-registration', '--wait=false'],
      { namespace: ns.name },
    );
    expect(delMgmt.code).toBe(0);
    await waitFor(
      async () => {
        const s = await r.secret('shop-oidc-registration');
        return (
          s &&
          !s.metadata?.deletionTimestamp &&
          s.metadata?.uid !== undefined &&
          (await r.secretValues('shop-oidc-registration'))?.client_id === mgmtBefore?.client_id
        );
      },
      { description: 'management Secret recreated', timeoutMs: 10_000 },
    );
    expect(posts()).toBe(1);
    await r.waitReady('shop');
  });

  it('is idle when nothing changes: no writes to the apiserver', async () => {
    await r.waitReady('shop');
    await new Promise((res) => setTimeout(res, 1_000));
    const start = op.writes.length;
    const providerStart = server.requests.length;
    await new Promise((res) => setTimeout(res, 6_000));
    const writes = op.writes.slice(start);
    // Drift checks (GET) ran during the quiet period...
    expect(server.requests.slice(providerStart).filter((q) => q.method === 'GET').length).toBeGreaterThan(0);
    expect(server.requests.slice(providerStart).filter((q) => q.method !== 'GET')).toEqual([]);
    if (mode === 'iam') {
      expect(writes).toEqual([]);
    } else {
      // ...and a rotating provider hands out a new token on each, which must be stored: only that.
      expect(writes.length).toBeGreaterThan(0);
      expect(
        writes.every((w) => w === `PUT /api/v1/namespaces/${ns.name}/secrets/shop-oidc-registration`),
      ).toBe(true);
    }
  });

  it('refuses to overwrite a Secret it does not own (SecretConflict)', async () => {
    await apply(`apiVersion: v1
kind: Secret
metadata:
  name: taken
stringData:
  keep: me
`);
    const before = posts();
    await apply(
      clientYaml('conflict', 'iam', `  secretName: taken\n  redirectUris: [https://c.example.org/cb]\n`),
    );
    const cr = await r.waitReady('conflict', { status: 'False', reason: 'SecretConflict' });
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    expect((await r.secretValues('taken'))?.keep).toBe('me');
    expect(posts()).toBe(before);
    await kubectl(
      binDir,
      kubeconfigPath,
      ['delete', 'oidcclient', 'conflict', '--wait=true', '--timeout=20s'],
      { namespace: ns.name },
    );
    expect((await r.secretValues('taken'))?.keep).toBe('me');
  });

  it('reports an invalid spec without contacting the provider', async () => {
    const before = server.requests.length;
    // What the apiserver cannot refuse: its CEL rules catch the rest of the spec at apply time (a
    // redirect URI with a fragment, say), so InvalidSpec is left for objects stored before a rule
    // existed. A label value the apiserver would refuse only on the Secret is the template's.
    await apply(
      clientYaml(
        'frag',
        'iam',
        `  redirectUris: ['https://frag.example.org/cb']\n  secretTemplate:\n    labels: { tier: "front end" }\n`,
      ),
    );
    const cr = await r.waitReady('frag', { status: 'False', reason: 'InvalidSecretTemplate' });
    expect(r.condition(cr, 'Ready')?.message).toMatch(/secretTemplate\/labels\/tier: invalid label value/);
    // Nothing registered for it (drift checks of the other clients may run meanwhile).
    expect(server.requests.slice(before).filter((q) => q.method === 'POST')).toEqual([]);
    await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'frag', '--timeout=20s'], {
      namespace: ns.name,
    });
  });

  it('turns a provider 400 into InvalidMetadata without retrying, then recovers on a fixed spec', async () => {
    const before = posts();
    // A value only the provider can judge (the offline validator cannot know its algorithms).
    await apply(
      clientYaml(
        'bad',
        'iam',
        `  redirectUris: ['https://bad.example.org/cb']\n  extraMetadata:\n    id_token_signed_response_alg: XS999\n`,
      ),
    );
    const cr = await r.waitReady('bad', { status: 'False', reason: 'InvalidMetadata' });
    expect(r.condition(cr, 'Ready')?.message).toMatch(
      /invalid_client_metadata: id_token_signed_response_alg/,
    );
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    await new Promise((res) => setTimeout(res, 4_000));
    expect(posts()).toBe(before + 1);
    expect((await r.events('bad')).some((e) => e.reason === 'InvalidMetadata' && e.type === 'Warning')).toBe(
      true,
    );
    await apply(clientYaml('bad', 'iam', `  redirectUris: ['https://bad.example.org/cb']\n`));
    await r.waitReady('bad');
    expect(posts()).toBe(before + 2);
  });

  it('re-registers when the client is gone at the provider', async () => {
    const cr = await r.waitReady('bad');
    const oldId = cr.status?.clientId as string;
    await server.store.delete(oldId);
    const next = await waitFor(
      async () => {
        const c = await r.client('bad');
        return c?.status?.clientId &&
          c.status.clientId !== oldId &&
          r.condition(c, 'Ready')?.status === 'True'
          ? c
          : undefined;
      },
      { description: 'a new client_id after the old client vanished', timeoutMs: 15_000 },
    );
    expect((await r.secretValues('bad-oidc-client'))?.client_id).toBe(next.status?.clientId);
    expect((await r.events('bad')).some((e) => e.reason === 'ReRegistered')).toBe(true);
  });

  it('re-registers when the provider answers 404 for the client (servers that say so)', async () => {
    const cr = await r.waitReady('bad');
    const oldId = cr.status?.clientId as string;
    const before = posts();
    const requestsBefore = server.requests.length;
    await server.store.delete(oldId);
    server.faults.add({
      method: 'GET',
      pathPattern: new RegExp(`/client-registration/${oldId}$`),
      status: 404,
      body: { error: 'invalid_client_id' },
      times: Number.POSITIVE_INFINITY,
    });
    try {
      const next = await waitFor(
        async () => {
          const c = await r.client('bad');
          return c?.status?.clientId !== oldId && r.condition(c, 'Ready')?.status === 'True' ? c : undefined;
        },
        { description: 'a new client_id after a 404', timeoutMs: 15_000 },
      );
      expect(posts()).toBe(before + 1);
      // No credentials probe at the token endpoint: unlike 401, a 404 is unambiguous.
      expect(server.requests.slice(requestsBefore).filter((q) => q.path === '/token')).toEqual([]);
      const events = await r.events('bad');
      expect(
        events.some(
          (e) => e.reason === 'ReRegistered' && e.message.includes('404') && e.message.includes(oldId),
        ),
      ).toBe(true);
      expect((await r.secretValues('bad-oidc-client'))?.client_id).toBe(next.status?.clientId);
    } finally {
      server.faults.clear();
    }
  });

  it('does not re-register when only the registration token is rejected (401)', async () => {
    const cr = await r.waitReady('bad');
    const id = cr.status?.clientId as string;
    const before = posts();
    await server.store.revokeRegistrationAccessToken(id);
    const stalled = await r.waitReady('bad', {
      status: 'False',
      reason: 'RegistrationTokenRejected',
      timeoutMs: 15_000,
    });
    expect(stalled.status?.clientId).toBe(id);
    expect(r.condition(stalled, 'Stalled')?.status).toBe('True');
    await new Promise((res) => setTimeout(res, 3_000));
    expect(posts()).toBe(before);
    expect(
      (await r.events('bad')).some((e) => e.reason === 'RegistrationTokenRejected' && e.type === 'Warning'),
    ).toBe(true);
    // The way out, one: an administrator issues a new token and it goes into the management Secret.
    const fresh = await server.store.issueRegistrationAccessToken(id);
    const patch = JSON.stringify({ stringData: { registration_access_token: fresh } });
    const patched = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'bad-oidc-registration', '-p', patch],
      {
        namespace: ns.name,
      },
    );
    expect(patched.code, patched.stderr).toBe(0);
    const resumed = await r.waitReady('bad', { timeoutMs: 15_000 });
    expect(resumed.status?.clientId).toBe(id);
    expect(r.condition(resumed, 'Stalled')).toBeUndefined();
    expect(posts()).toBe(before);
    // The way out, two: after another rejection, Orphan lets the finalizer go without a token.
    await server.store.revokeRegistrationAccessToken(id);
    await r.waitReady('bad', { status: 'False', reason: 'RegistrationTokenRejected', timeoutMs: 15_000 });
    await apply(
      clientYaml('bad', 'iam', `  redirectUris: ['https://bad.example.org/cb']\n  deletionPolicy: Orphan\n`),
    );
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'bad', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(del.code).toBe(0);
    expect(await server.store.get(id)).toBeDefined();
  });

  it('deletes the client at the provider when the OidcClient is deleted', async () => {
    const cr = await r.waitReady('shop');
    const id = cr.status?.clientId as string;
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'shop', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(id)).toBeUndefined();
    // The management Secret's finalizer was released with it.
    await waitFor(
      async () => {
        const s = await r.secret('shop-oidc-registration');
        return !s || !(s.metadata?.finalizers ?? []).length;
      },
      { description: 'management Secret released', timeoutMs: 10_000 },
    );
  });

  it('keeps the client with deletionPolicy Orphan', async () => {
    await apply(
      clientYaml('keep', 'iam', `  redirectUris: [https://keep.example.org/cb]\n  deletionPolicy: Orphan\n`),
    );
    const cr = await r.waitReady('keep');
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'keep', '--timeout=20s'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(cr.status?.clientId as string)).toBeDefined();
  });

  it('does not block deletion forever when the provider is unreachable', async () => {
    await apply(clientYaml('stuck', 'iam', `  redirectUris: [https://stuck.example.org/cb]\n`));
    await r.waitReady('stuck');
    server.faults.add({ method: 'DELETE', status: 503, times: Number.POSITIVE_INFINITY });
    try {
      const t0 = Date.now();
      const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'stuck', '--timeout=30s'], {
        namespace: ns.name,
      });
      expect(del.code, del.stderr).toBe(0);
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(3_000);
      expect(elapsed).toBeLessThan(25_000);
    } finally {
      server.faults.clear();
    }
    expect((await r.events('stuck')).some((e) => e.reason === 'DeletionAbandoned')).toBe(true);
  });
});
