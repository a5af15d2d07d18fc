// spec.secretTemplate on real parts: an oauth2-proxy-style Secret whose values authenticate at the
// registration server's token endpoint; type, labels and annotations, and their removal; a
// template change re-rendered without a provider call; a bad template refused by the apiserver,
// by `validate` with the same message, and by the operator before any provider request.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseTemplate, SecretTemplateError } from '../../src/api/secret-template.js';
import { KubeApiError, KubeRest } from '../../src/kube/rest.js';
import { runTool } from '../harness/exec.js';
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
const root = resolve(import.meta.dirname, '../..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client_credentials token request the way a workload would make it from the Secret's values. */
async function tokenRequest(
  issuer: string,
  id: string,
  secret: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  // Like oauth2-proxy: only the issuer is configured, the token endpoint comes from discovery.
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string;
  };
  const res = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const PROXY_SPEC = (template: string) => `  redirectUris: [https://app.example.org/oauth2/callback]
  grantTypes: [authorization_code, client_credentials]
  responseTypes: [code]
  scopes: [openid, email]
  secretName: proxy-env
  secretTemplate:
${template}`;

const PROXY_TEMPLATE = `    mergePolicy: Replace
    labels:
      app.kubernetes.io/name: oauth2-proxy
      tier: edge
    annotations:
      example.org/owner: web-team
    data:
      OAUTH2_PROXY_CLIENT_ID: "{{ .clientId }}"
      OAUTH2_PROXY_CLIENT_SECRET: "{{ .clientSecret }}"
      OAUTH2_PROXY_OIDC_ISSUER_URL: "{{ .issuer }}"
      OAUTH2_PROXY_REDIRECT_URL: "{{ .redirectUris | first }}"
      OAUTH2_PROXY_SCOPE: '{{ .scopes | join " " }}'
`;

describe('OidcClient secretTemplate', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  let scratch: string;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  /** Requests the operator made (the test's own token requests go to other paths). */
  const providerRequests = () =>
    server.requests.filter((q) => !q.path.endsWith('/token') && !q.path.includes('openid-configuration'))
      .length;
  const allRequests = () => server.requests.length;

  beforeAll(async () => {
    server = await startRegistrationServer();
    ns = await createTestNamespace(kc, 'templates');
    r = new OidcReader(kc, ns.name);
    scratch = await mkdtemp(join(tmpdir(), 'templates-'));
    await apply(providerYaml('iam', server.issuer));
    // A long resync: any provider call below is caused by what the test changed.
    op = await startInProcessOperator({ kubeconfigPath, namespace: ns.name, resyncIntervalMs: 600_000 });
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('writes an oauth2-proxy Secret whose values authenticate at the token endpoint', async () => {
    await apply(clientYaml('proxy', 'iam', PROXY_SPEC(PROXY_TEMPLATE)));
    const cr = await r.waitReady('proxy');
    const secret = await r.secret('proxy-env');
    const values = (await r.secretValues('proxy-env')) ?? {};
    // Replace: exactly the template's keys, none of the defaults.
    expect(Object.keys(values).sort()).toEqual([
      'OAUTH2_PROXY_CLIENT_ID',
      'OAUTH2_PROXY_CLIENT_SECRET',
      'OAUTH2_PROXY_OIDC_ISSUER_URL',
      'OAUTH2_PROXY_REDIRECT_URL',
      'OAUTH2_PROXY_SCOPE',
    ]);
    expect(values.OAUTH2_PROXY_CLIENT_ID).toBe(cr.status?.clientId);
    expect(values.OAUTH2_PROXY_OIDC_ISSUER_URL).toBe(server.issuer);
    expect(values.OAUTH2_PROXY_REDIRECT_URL).toBe('https://app.example.org/oauth2/callback');
    expect(values.OAUTH2_PROXY_SCOPE).toBe('openid email');
    const stored = await server.store.get(cr.status?.clientId as string);
    expect(values.OAUTH2_PROXY_CLIENT_SECRET).toBe(stored?.metadata.client_secret);
    expect(secret?.type).toBe('Opaque');
    expect(secret?.metadata?.labels).toMatchObject({
      'app.kubernetes.io/name': 'oauth2-proxy',
      tier: 'edge',
    });
    expect(secret?.metadata?.annotations).toMatchObject({ 'example.org/owner': 'web-team' });

    const ok = await tokenRequest(
      values.OAUTH2_PROXY_OIDC_ISSUER_URL as string,
      values.OAUTH2_PROXY_CLIENT_ID as string,
      values.OAUTH2_PROXY_CLIENT_SECRET as string,
    );
    expect(ok.status).toBe(200);
    expect(ok.body.token_type).toBe('Bearer');
    expect(typeof ok.body.access_token).toBe('string');
    const wrong = await tokenRequest(
      server.issuer,
      values.OAUTH2_PROXY_CLIENT_ID as string,
      'not-the-secret',
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
  });

  it('re-renders a changed template without a provider call, removes what it no longer sets, then stays idle', async () => {
    const before = (await r.client('proxy')) ?? expect.unreachable();
    const secretBefore = (await r.secret('proxy-env')) ?? expect.unreachable();
    // Someone else labels and annotates the Secret: that stays.
    await kubectl(binDir, kubeconfigPath, ['label', 'secret', 'proxy-env', 'backup=daily'], {
      namespace: ns.name,
    });
    await kubectl(binDir, kubeconfigPath, ['annotate', 'secret', 'proxy-env', 'other.example/note=kept'], {
      namespace: ns.name,
    });
    const requests = allRequests();
    // New type, label tier removed, annotation changed, a key renamed, Merge brings the defaults back.
    await apply(
      clientYaml(
        'proxy',
        'iam',
        PROXY_SPEC(`    type: kubernetes.io/basic-auth
    mergePolicy: Merge
    labels:
      app.kubernetes.io/name: oauth2-proxy
    annotations:
      example.org/owner: platform-team
    data:
      username: "{{ .clientId }}"
      password: "{{ .clientSecret }}"
      OIDC_SCOPES: '{{ .scopes | join "," }}'
`),
      ),
    );
    const secret = await waitFor(
      async () => {
        const s = await r.secret('proxy-env');
        return s?.type === 'kubernetes.io/basic-auth' ? s : undefined;
      },
      { description: 'the Secret re-rendered as kubernetes.io/basic-auth', timeoutMs: 20_000 },
    );
    const cr = await r.waitReady('proxy');
    expect(cr.status?.clientId).toBe(before.status?.clientId);
    const values = (await r.secretValues('proxy-env')) ?? {};
    expect(Object.keys(values).sort()).toEqual([
      'OIDC_SCOPES',
      'client_id',
      'client_secret',
      'issuer',
      'password',
      'token_endpoint',
      'username',
    ]);
    expect(values.username).toBe(before.status?.clientId);
    expect(values.OIDC_SCOPES).toBe('openid,email');
    expect(values.password).toBe(values.client_secret);
    const labels = secret.metadata?.labels ?? {};
    expect(labels).not.toHaveProperty('tier');
    expect(labels['app.kubernetes.io/name']).toBe('oauth2-proxy');
    expect(secret.metadata?.annotations?.['example.org/owner']).toBe('platform-team');
    // The type cannot change in place: the Secret was replaced, with what others set carried over.
    expect(secret.metadata?.uid).not.toBe(secretBefore.metadata?.uid);
    expect(labels.backup).toBe('daily');
    expect(secret.metadata?.annotations?.['other.example/note']).toBe('kept');
    // No provider call: no discovery, no GET/PUT, no new client.
    expect(allRequests()).toBe(requests);

    // Same type now: an in-place re-render, still keeping labels and annotations others add.
    await apply(
      clientYaml(
        'proxy',
        'iam',
        PROXY_SPEC(`    type: kubernetes.io/basic-auth
    data:
      username: "{{ .clientId }}"
      password: "{{ .clientSecret }}"
`),
      ),
    );
    const updated = await waitFor(
      async () => {
        const s = await r.secret('proxy-env');
        return s && !s.metadata?.labels?.['app.kubernetes.io/name'] ? s : undefined;
      },
      { description: 'template labels removed', timeoutMs: 20_000 },
    );
    await r.waitReady('proxy');
    expect(updated.metadata?.uid).toBe(secret.metadata?.uid);
    expect(updated.metadata?.labels?.backup).toBe('daily');
    expect(updated.metadata?.annotations?.['other.example/note']).toBe('kept');
    expect(updated.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('oidc-client-operator');
    expect(updated.metadata?.annotations ?? {}).not.toHaveProperty('example.org/owner');
    expect(updated.metadata?.annotations ?? {}).not.toHaveProperty('oidc.dcr-operator.dev/template-labels');
    expect(Object.keys((await r.secretValues('proxy-env')) ?? {})).not.toContain('OIDC_SCOPES');
    expect(allRequests()).toBe(requests);

    // A re-render for a new spec is not reported as a restored Secret.
    expect((await r.events('proxy')).filter((e) => e.reason === 'SecretRestored')).toEqual([]);

    // Idle means idle: nothing written while nothing changes.
    await sleep(500);
    const writes = op?.writes.length;
    await sleep(2_500);
    expect(op?.writes.slice(writes)).toEqual([]);
    expect(allRequests()).toBe(requests);
  });

  it('a template the CRD can check is refused by kubectl apply and by validate, with the same message', async () => {
    const yaml = clientYaml('typo', 'iam', `  secretTemplate:\n    data:\n      ID: "{{ .clientID }}"\n`);
    const applied = await kubectl(binDir, kubeconfigPath, ['apply', '-f', '-'], {
      input: yaml,
      namespace: ns.name,
    });
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toContain('spec.secretTemplate.data: Invalid value');
    expect(applied.stderr).toContain(
      'invalid template: placeholders are {{ .name }} with name one of clientId,',
    );
    const file = join(scratch, 'typo.yaml');
    await writeFile(file, yaml);
    const validated = await runTool('npx', ['tsx', 'src/cli/main.ts', 'validate', file], {
      cwd: root,
      timeoutMs: 60_000,
    });
    expect(validated.code).toBe(1);
    expect(validated.stdout).toContain(
      `${file}:0: OidcClient/typo: /spec/secretTemplate/data/ID: invalid template: unknown name .clientID (placeholders are {{ .name }} with name one of clientId,`,
    );
    expect(await r.client('typo')).toBeUndefined();
  });

  it("the apiserver's CEL rule (RE2) and the operator's parser agree on tricky values", async () => {
    const rest = new KubeRest(kc);
    const samples = [
      '{{ .clientId }}',
      '{{.scopes|join ","}}',
      '{{ .scopes | first | b64enc | default "x" }}',
      '{{\t.issuer\n}}',
      'ü {{ .clientName }} 😀 {',
      'a{b{{ .issuer }}c}}',
      '{{ .scopes }}',
      '{{{ .clientId }}',
      '{{ .clientId | join "," }}',
      '{{ .clientId | join "}}" }}',
      '{{ .clientId | default "ü" }}',
      '{{ .clientId }',
      '{{ .Clientid }}',
      '{{ .clientId | b64enc | b64enc }}',
    ];
    try {
      for (const value of samples) {
        let parsed = true;
        try {
          parseTemplate(value);
        } catch (error) {
          if (!(error instanceof SecretTemplateError)) throw error;
          parsed = false;
        }
        const body = {
          apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
          kind: 'OidcClient',
          metadata: { name: 'dry' },
          spec: { providerRef: { name: 'iam' }, secretTemplate: { data: { K: value } } },
        };
        let accepted = true;
        try {
          await rest.create(`/apis/oidc.dcr-operator.dev/v1alpha1/namespaces/${ns.name}/oidcclients`, body, {
            dryRun: 'All',
          });
        } catch (error) {
          if (!(error instanceof KubeApiError) || error.status !== 422) throw error;
          expect(error.message).toContain('invalid template');
          accepted = false;
        }
        expect(accepted, JSON.stringify(value)).toBe(parsed);
      }
    } finally {
      await rest.close();
    }
  });

  it('a template only the operator can judge is refused before any provider request (InvalidSecretTemplate)', async () => {
    const requests = allRequests();
    // A public client has no secret: the CRD cannot see that, the operator can.
    await apply(
      clientYaml(
        'public',
        'iam',
        `  redirectUris: [https://spa.example.org/cb]\n  tokenEndpointAuthMethod: none\n  secretTemplate:\n    data:\n      SECRET: "{{ .clientSecret }}"\n`,
      ),
    );
    const cr = await r.waitReady('public', { status: 'False', reason: 'InvalidSecretTemplate' });
    const message =
      '/spec/secretTemplate/data/SECRET: invalid template: .clientSecret has no value with tokenEndpointAuthMethod none';
    expect(r.condition(cr, 'Ready')?.message).toBe(message);
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    const events = await r.events('public');
    expect(events).toContainEqual({ type: 'Warning', reason: 'InvalidSecretTemplate', message });
    expect(await r.secret('public-oidc-client')).toBeUndefined();
    expect(await r.secret('public-oidc-registration')).toBeUndefined();
    expect(cr.metadata.finalizers ?? []).toEqual([]);
    expect(allRequests()).toBe(requests);

    // validate prints the same message.
    const file = join(scratch, 'public.yaml');
    await writeFile(
      file,
      clientYaml(
        'public',
        'iam',
        `  tokenEndpointAuthMethod: none\n  secretTemplate:\n    data:\n      SECRET: "{{ .clientSecret }}"\n`,
      ),
    );
    const validated = await runTool('npx', ['tsx', 'src/cli/main.ts', 'validate', file], {
      cwd: root,
      timeoutMs: 60_000,
    });
    expect(validated.stdout).toContain(`${file}:0: OidcClient/public: ${message}`);

    // Fixed: registered, with the default as the value.
    await apply(
      clientYaml(
        'public',
        'iam',
        `  redirectUris: [https://spa.example.org/cb]\n  tokenEndpointAuthMethod: none\n  secretTemplate:\n    data:\n      SECRET: '{{ .clientSecret | default "" }}'\n`,
      ),
    );
    const ready = await r.waitReady('public');
    expect(ready.status?.clientId).toBeTruthy();
    expect((await r.secretValues('public-oidc-client'))?.SECRET).toBe('');
    expect(providerRequests()).toBeGreaterThan(0);
  });
  // Last: the fault below rewrites every discovery answer of this server.
  it('a placeholder the provider has no value for stops the registration before its POST', async () => {
    server.faults.add({
      pathPattern: /openid-configuration$/,
      rewrite: ({ userinfo_endpoint: _dropped, ...rest }) => rest,
      times: Number.POSITIVE_INFINITY,
    });
    await apply(providerYaml('no-userinfo', server.issuer));
    const posts = () =>
      server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
    const before = posts();
    const spec = (value: string) =>
      `  redirectUris: [https://grafana.example.org/login/generic_oauth]\n  secretTemplate:\n    mergePolicy: Replace\n    data:\n      GF_AUTH_GENERIC_OAUTH_CLIENT_ID: "{{ .clientId }}"\n      GF_AUTH_GENERIC_OAUTH_API_URL: '${value}'\n`;
    await apply(clientYaml('grafana', 'no-userinfo', spec('{{ .userinfoEndpoint }}')));
    const cr = await r.waitReady('grafana', { status: 'False', reason: 'InvalidSecretTemplate' });
    const message =
      'spec.secretTemplate.data.GF_AUTH_GENERIC_OAUTH_API_URL: .userinfoEndpoint has no value (the provider\'s discovery document has no userinfo_endpoint); add | default "<text>" to allow that';
    expect(r.condition(cr, 'Ready')?.message).toBe(message);
    expect(r.condition(cr, 'Stalled')?.status).toBe('True');
    expect(await r.events('grafana')).toContainEqual({
      type: 'Warning',
      reason: 'InvalidSecretTemplate',
      message,
    });
    expect(posts()).toBe(before);
    expect(await r.secret('grafana-oidc-client')).toBeUndefined();
    expect(await r.secret('grafana-oidc-registration')).toBeUndefined();

    await apply(clientYaml('grafana', 'no-userinfo', spec('{{ .userinfoEndpoint | default "none" }}')));
    const ready = await r.waitReady('grafana');
    expect(posts()).toBe(before + 1);
    expect(await r.secretValues('grafana-oidc-client')).toEqual({
      GF_AUTH_GENERIC_OAUTH_CLIENT_ID: ready.status?.clientId,
      GF_AUTH_GENERIC_OAUTH_API_URL: 'none',
    });
  });
});
