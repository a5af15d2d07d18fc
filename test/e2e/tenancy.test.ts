// Tenancy on a shared ClusterOidcProvider, on real parts: which namespaces may use it
// (spec.conditions by name and by label selector, a label change taking effect while the operator
// runs), what clients may ask for (spec.clientPolicy, field by field), and OidcClient names up to
// the Kubernetes limit. Every refusal is checked against the registration server's request log
// (nothing sent), the operator's own apiserver requests (the provider's token Secret not read) and
// the Secrets in the tenant's namespace (none written).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { clientLabelValue, LABEL_CLIENT } from '../../src/controller/names.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { OidcReader } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const IAT = 'tenancy-initial-access-token';
const id = randomBytes(3).toString('hex');
const PROVIDER = `shared-${id}`;
const LABEL = `tenancy-${id}.example.org/oidc`;

const GOOD = `  redirectUris: [https://web.apps.example.org/cb]
  grantTypes: [authorization_code, refresh_token]
  scopes: [openid, email]
`;

function clusterClientYaml(name: string, spec: string, extraMeta = ''): string {
  return `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata:
  name: ${name}
${extraMeta}spec:
  providerRef: { name: ${PROVIDER}, kind: ClusterOidcProvider }
${spec}`;
}

describe('ClusterOidcProvider tenancy: spec.conditions, spec.clientPolicy, long names', () => {
  let server: RegistrationServer;
  let platform: TestNamespace;
  let byName: TestNamespace;
  let bySelector: TestNamespace;
  let outsider: TestNamespace;
  let op: InProcessOperator;
  const reader = (ns: TestNamespace) => new OidcReader(kc, ns.name);
  const apply = (yaml: string, ns: TestNamespace) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration'));
  const tokenSecretReads = () =>
    op.requests.filter((r) => r === `GET /api/v1/namespaces/${platform.name}/secrets/provider-token`).length;
  const label = (ns: TestNamespace, value: string | null) =>
    kubectl(binDir, kubeconfigPath, [
      'label',
      '--overwrite',
      'namespace',
      ns.name,
      value ? `${LABEL}=${value}` : `${LABEL}-`,
    ]);
  const statusWrites = (ns: TestNamespace, name: string) =>
    op.writes.filter((w) => w.endsWith(`/namespaces/${ns.name}/oidcclients/${name}/status`)).length;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam', initialAccessToken: IAT });
    [platform, byName, bySelector, outsider] = await Promise.all([
      createTestNamespace(kc, 'tenancy-platform'),
      createTestNamespace(kc, 'tenancy-a'),
      createTestNamespace(kc, 'tenancy-b'),
      createTestNamespace(kc, 'tenancy-c'),
    ]);
    await label(bySelector, 'allowed');
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: v1
kind: Secret
metadata: { name: provider-token }
stringData: { token: ${IAT} }
`,
      platform.name,
    );
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: ClusterOidcProvider
metadata: { name: ${PROVIDER} }
spec:
  issuerUrl: ${server.issuer}
  initialAccessTokenSecretRef: { name: provider-token, namespace: ${platform.name} }
  conditions:
    - namespaces: [${byName.name}]
    - namespaceSelector:
        matchExpressions: [{ key: ${LABEL}, operator: In, values: [allowed] }]
  clientPolicy:
    allowedGrantTypes: [authorization_code, refresh_token]
    allowedScopes: [openid, profile, email]
    allowedTokenEndpointAuthMethods: [client_secret_basic, client_secret_post]
    allowedExtraMetadataKeys: []
    redirectUris:
      allowedHosts: ['*.apps.example.org']
`,
    );
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: byName.name,
      extraNamespaces: [bySelector.name, outsider.name],
      resyncIntervalMs: 600_000,
    });
  });

  afterAll(async () => {
    await op?.stop();
    await kubectl(binDir, kubeconfigPath, ['delete', 'clusteroidcprovider', PROVIDER, '--ignore-not-found']);
    await Promise.all([platform, byName, bySelector, outsider].map((ns) => ns?.cleanup()));
    await server?.close();
  });

  it('refuses a namespace outside spec.conditions: NotAllowed, nothing sent, no provider Secret read, no retry loop', async () => {
    const r = reader(outsider);
    await apply(clusterClientYaml('intruder', GOOD), outsider);
    const cr = await r.waitReady('intruder', { status: 'False', reason: 'NotAllowed' });
    expect(r.condition(cr, 'Ready')?.message).toBe(
      `namespace ${outsider.name} is not allowed to use ClusterOidcProvider ${PROVIDER} (see its spec.conditions); nothing was sent to the provider.`,
    );
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    expect(r.condition(cr, 'Reconciling')).toBeUndefined();
    const event = await waitFor(
      async () => (await r.events('intruder')).find((e) => e.reason === 'NotAllowed'),
      {
        description: 'a NotAllowed Event',
      },
    );
    expect(event.type).toBe('Warning');
    expect(server.requests).toEqual([]);
    expect(tokenSecretReads()).toBe(0);
    expect(await r.secret('intruder-oidc-client')).toBeUndefined();
    expect(await r.secret('intruder-oidc-registration')).toBeUndefined();
    const writes = statusWrites(outsider, 'intruder');
    await sleep(2_000);
    expect(statusWrites(outsider, 'intruder')).toBe(writes);
    expect(server.requests).toEqual([]);
    const secretWrites = op.writes.filter((w) => w.includes(`/namespaces/${outsider.name}/secrets`));
    expect(secretWrites).toEqual([]);
    console.info(
      `[tenancy] outside conditions: ${server.requests.length} provider requests, ${tokenSecretReads()} token Secret reads, ${secretWrites.length} Secret writes, ${writes} status writes (none more in 2 s)`,
    );
  });

  it('registers clients of namespaces allowed by name and by label selector', async () => {
    await apply(clusterClientYaml('web', GOOD), byName);
    await apply(clusterClientYaml('web', GOOD), bySelector);
    const fromName = await reader(byName).waitReady('web');
    const fromSelector = await reader(bySelector).waitReady('web');
    expect(fromName.status?.clientId).toBeTruthy();
    expect(fromSelector.status?.clientId).toBeTruthy();
    expect(posts().map((p) => p.status)).toEqual([201, 201]);
    expect(await server.store.get(fromSelector.status?.clientId as string)).toBeDefined();
    // One cached provider client serves both: the token Secret was read once.
    expect(tokenSecretReads()).toBe(1);
  });

  it('follows namespace labels: a label added allows, a label removed refuses without touching the registration', async () => {
    // The refused namespace gets the label: its stalled client is woken and registered.
    const t0 = Date.now();
    await label(outsider, 'allowed');
    const admitted = await reader(outsider).waitReady('intruder', { timeoutMs: 15_000 });
    const admittedAfterMs = Date.now() - t0;
    expect(admitted.status?.clientId).toBeTruthy();
    expect(admittedAfterMs).toBeLessThan(10_000);
    console.info(`[tenancy] label added: NotAllowed client Ready ${admittedAfterMs} ms after kubectl label`);

    // The label goes away from an allowed namespace with a registered client.
    const r = reader(bySelector);
    const before = await r.waitReady('web');
    const clientId = before.status?.clientId as string;
    const secretsBefore = [
      await r.secretValues('web-oidc-client'),
      await r.secretValues('web-oidc-registration'),
    ];
    await label(bySelector, null);
    const refused = await r.waitReady('web', { status: 'False', reason: 'NotAllowed', timeoutMs: 15_000 });
    expect(r.condition(refused, 'Ready')?.message).toMatch(
      new RegExp(
        `Client ${clientId}, registered before, is left as it is at the provider and its Secrets are kept`,
      ),
    );
    // A spec change would normally be sent with PUT: not while the namespace is refused.
    const requestsBefore = server.requests.length;
    await apply(
      clusterClientYaml('web', `${GOOD}  postLogoutRedirectUris: [https://web.apps.example.org/bye]\n`),
      bySelector,
    );
    await r.waitReady('web', { status: 'False', reason: 'NotAllowed' });
    await sleep(1_500);
    expect(server.requests.slice(requestsBefore)).toEqual([]);
    expect(await server.store.get(clientId)).toBeDefined();
    expect([await r.secretValues('web-oidc-client'), await r.secretValues('web-oidc-registration')]).toEqual(
      secretsBefore,
    );
    // Deleting it still removes the registration at the provider, with the client's own token.
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'web', '--timeout=20s'], {
      namespace: bySelector.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(clientId)).toBeUndefined();
    const sent = server.requests.slice(requestsBefore).map((q) => `${q.method} ${q.status}`);
    expect(sent).toEqual(['DELETE 204']);
    console.info(
      `[tenancy] label removed: provider requests while refused (spec changed): 0; on deletion: ${sent.join(', ')}`,
    );
  });

  it('refuses what spec.clientPolicy does not allow, field by field, sending nothing', async () => {
    const r = reader(byName);
    const cases: { name: string; spec: string; message: string }[] = [
      {
        name: 'grant',
        spec: `  redirectUris: [https://web.apps.example.org/cb]\n  grantTypes: [client_credentials]\n`,
        message:
          'spec.grantTypes[0]: "client_credentials" is not allowed (allowed: authorization_code, refresh_token)',
      },
      {
        name: 'scope',
        spec: `  redirectUris: [https://web.apps.example.org/cb]\n  scopes: [openid, iam:admin.write]\n`,
        message: 'spec.scopes[1]: "iam:admin.write" is not allowed (allowed: openid, profile, email)',
      },
      {
        name: 'auth',
        spec: `  redirectUris: [https://web.apps.example.org/cb]\n  tokenEndpointAuthMethod: none\n`,
        message:
          'spec.tokenEndpointAuthMethod: "none" is not allowed (allowed: client_secret_basic, client_secret_post)',
      },
      {
        name: 'redirect-host',
        spec: `  redirectUris: [https://web.apps.example.org/cb, https://attacker.example.net/cb]\n`,
        message:
          'spec.redirectUris[1]: "https://attacker.example.net/cb" is not allowed: host "attacker.example.net" is not in allowedHosts (*.apps.example.org)',
      },
      {
        name: 'redirect-http',
        spec: `  redirectUris: [http://web.apps.example.org/cb]\n`,
        message:
          'spec.redirectUris[0]: "http://web.apps.example.org/cb" uses scheme http, not allowed (allowed: https)',
      },
      {
        name: 'redirect-userinfo',
        spec: `  redirectUris: ['https://web.apps.example.org@attacker.example.net/cb']\n`,
        message:
          'spec.redirectUris[0]: "https://web.apps.example.org@attacker.example.net/cb" carries user information (user@host), which is not allowed',
      },
      {
        name: 'logout',
        spec: `  redirectUris: [https://web.apps.example.org/cb]\n  postLogoutRedirectUris: [https://attacker.example.net/]\n`,
        message:
          'spec.postLogoutRedirectUris[0]: "https://attacker.example.net/" is not allowed: host "attacker.example.net" is not in allowedHosts (*.apps.example.org)',
      },
      {
        name: 'extra',
        spec: `  redirectUris: [https://web.apps.example.org/cb]\n  extraMetadata: { access_token_validity_seconds: 999999999 }\n`,
        message: 'spec.extraMetadata: key "access_token_validity_seconds" is not allowed (allowed: none)',
      },
    ];
    const before = server.requests.length;
    const writesBefore = op.writes.length;
    await apply(cases.map((c) => clusterClientYaml(`policy-${c.name}`, c.spec)).join('---\n'), byName);
    for (const c of cases) {
      const cr = await r.waitReady(`policy-${c.name}`, { status: 'False', reason: 'PolicyViolation' });
      expect(r.condition(cr, 'Ready')?.message).toBe(
        `not allowed by the clientPolicy of ClusterOidcProvider ${PROVIDER}: ${c.message}; nothing was sent to the provider`,
      );
      expect(r.condition(cr, 'Stalled')?.status).toBe('True');
      expect(await r.secret(`policy-${c.name}-oidc-registration`)).toBeUndefined();
      const event = await waitFor(
        async () => (await r.events(`policy-${c.name}`)).find((e) => e.reason === 'PolicyViolation'),
        { description: `a PolicyViolation Event for policy-${c.name}` },
      );
      expect(event.type).toBe('Warning');
    }
    expect(server.requests.slice(before)).toEqual([]);
    const secretWrites = op.writes.slice(writesBefore).filter((w) => w.includes('/secrets'));
    expect(secretWrites).toEqual([]);
    console.info(
      `[tenancy] clientPolicy: ${cases.length} violating clients, 0 provider requests, ${secretWrites.length} Secret writes`,
    );

    // Fixing the spec is enough: the client is registered.
    await apply(clusterClientYaml('policy-grant', GOOD), byName);
    await r.waitReady('policy-grant');
    expect(posts().length).toBe(4);
  });

  it('refuses an update of a registered client beyond the policy: no PUT, the registration and Secrets stay', async () => {
    const r = reader(byName);
    const ready = await r.waitReady('web');
    const secretBefore = await r.secretValues('web-oidc-client');
    const storedBefore = await server.store.get(ready.status?.clientId as string);
    const before = server.requests.length;
    await apply(
      clusterClientYaml('web', GOOD.replace('[openid, email]', '[openid, email, iam:admin.write]')),
      byName,
    );
    const cr = await r.waitReady('web', { status: 'False', reason: 'PolicyViolation' });
    expect(r.condition(cr, 'Ready')?.message).toMatch(/spec\.scopes\[2\]: "iam:admin\.write" is not allowed/);
    expect(server.requests.slice(before)).toEqual([]);
    expect(await server.store.get(ready.status?.clientId as string)).toEqual(storedBefore);
    expect(await r.secretValues('web-oidc-client')).toEqual(secretBefore);
    // Back within the policy: in sync again (a GET and maybe a PUT), same client.
    await apply(clusterClientYaml('web', GOOD), byName);
    expect((await r.waitReady('web')).status?.clientId).toBe(ready.status?.clientId);
  });

  it("a tenant's own OidcProvider cannot borrow another namespace's Secret", async () => {
    const r = reader(byName);
    const reads = tokenSecretReads();
    const before = server.requests.length;
    await apply(
      `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcProvider
metadata: { name: borrowed }
spec:
  issuerUrl: ${server.issuer}
  initialAccessTokenSecretRef: { name: provider-token, namespace: ${platform.name} }
---
apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata: { name: borrower }
spec:
  providerRef: { name: borrowed }
  redirectUris: [https://web.apps.example.org/cb]
`,
      byName,
    );
    const cr = await r.waitReady('borrower', { status: 'False', reason: 'ProviderUnavailable' });
    expect(r.condition(cr, 'Ready')?.message).toBe(
      `Secret provider-token must be in namespace ${byName.name}`,
    );
    expect(tokenSecretReads()).toBe(reads);
    expect(server.requests.slice(before)).toEqual([]);
  });

  it("never copies the provider's initial access token into a tenant's status, Events or the logs", async () => {
    const texts = [op.logLines.join('\n')];
    for (const ns of [byName, bySelector, outsider]) {
      const r = reader(ns);
      texts.push(JSON.stringify((await r.core.listNamespacedEvent({ namespace: ns.name })).items));
      texts.push(
        JSON.stringify(
          await r.custom.listNamespacedCustomObject({
            group: 'oidc.dcr-operator.dev',
            version: 'v1alpha1',
            namespace: ns.name,
            plural: 'oidcclients',
          }),
        ),
      );
      const secrets = await r.core.listNamespacedSecret({ namespace: ns.name });
      texts.push(JSON.stringify(secrets.items.map((x) => x.data)));
    }
    expect(texts.join('').length).toBeGreaterThan(1000);
    expect(texts.filter((t) => t.includes(IAT) || t.includes(Buffer.from(IAT).toString('base64')))).toEqual(
      [],
    );
  });

  it('handles OidcClient names longer than a label value (63), and rejects names whose default Secret names would not fit', async () => {
    const r = reader(byName);
    const long = `long-${'x'.repeat(60)}-name`; // 70 characters
    await apply(clusterClientYaml(long, GOOD), byName);
    const cr = await r.waitReady(long);
    const app = await r.secret(`${long}-oidc-client`);
    expect(app?.metadata?.labels?.[LABEL_CLIENT]).toBe(clientLabelValue(long));
    expect(clientLabelValue(long).length).toBeLessThanOrEqual(63);
    expect((await r.secret(`${long}-oidc-registration`))?.metadata?.ownerReferences?.[0]?.name).toBe(long);
    // A Secret event finds its client through the ownerReference: a deleted Secret comes back.
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'secret', `${long}-oidc-client`], {
      namespace: byName.name,
    });
    expect(del.code, del.stderr).toBe(0);
    const restored = await waitFor(() => r.secretValues(`${long}-oidc-client`), {
      description: 'the application Secret of the long-named client restored',
      timeoutMs: 10_000,
    });
    expect(restored.client_id).toBe(cr.status?.clientId);

    // 253 characters, the Kubernetes limit: refused at apply time while the default Secret names are used...
    const longest = 'n'.repeat(253);
    const postsBefore = posts().length;
    const refused = await kubectl(binDir, kubeconfigPath, ['apply', '-f', '-'], {
      input: clusterClientYaml(longest, GOOD),
      namespace: byName.name,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/metadata\.name is longer than 241 characters.*set spec\.secretName/);
    expect(refused.stderr).toMatch(
      /metadata\.name is longer than 235 characters.*set spec\.managementSecretName/,
    );
    expect(await r.client(longest)).toBeUndefined();
    // ...and Ready with explicit Secret names.
    await apply(
      clusterClientYaml(
        longest,
        `${GOOD}  clientName: longest\n  secretName: longest-app\n  managementSecretName: longest-registration\n`,
      ),
      byName,
    );
    const ok = await r.waitReady(longest);
    expect(posts().length).toBe(postsBefore + 1);
    expect((await r.secretValues('longest-app'))?.client_id).toBe(ok.status?.clientId);
    expect((await r.secret('longest-registration'))?.metadata?.labels?.[LABEL_CLIENT]).toBe(
      clientLabelValue(longest),
    );
    const gone = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', longest, '--timeout=20s'], {
      namespace: byName.name,
    });
    expect(gone.code, gone.stderr).toBe(0);
    expect(await server.store.get(ok.status?.clientId as string)).toBeUndefined();
  });
});
