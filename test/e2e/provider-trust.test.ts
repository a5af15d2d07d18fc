// A provider's CA bundle and initial access token live in Secrets the operator does not own or
// watch. When an administrator rotates them (a new server certificate from a new CA, a new initial
// access token) and updates the Secret with kubectl, new OidcClients must register without an
// operator restart. Real parts: an HTTPS registration server with a private CA, restarted on the
// same port with new material, and the operator running throughout.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
} from '../harness/kube.js';
import { OidcReader } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PROVIDER = `rotating-${randomBytes(3).toString('hex')}`;
const RECHECK_MS = 1_000;

describe('provider CA bundle and initial access token rotated in their Secret, operator running', () => {
  let server: RegistrationServer;
  let port: number;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const trustReads = () =>
    op.requests.filter((q) => q === `GET /api/v1/namespaces/${ns.name}/secrets/provider-trust`).length;
  const clientYaml = (name: string) => `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: OidcClient
metadata: { name: ${name} }
spec:
  providerRef: { name: ${PROVIDER}, kind: ClusterOidcProvider }
  redirectUris: [https://${name}.example.org/cb]
`;
  const patchSecret = async (data: Record<string, string>) => {
    const res = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'provider-trust', '-p', JSON.stringify({ stringData: data })],
      { namespace: ns.name },
    );
    expect(res.code, res.stderr).toBe(0);
  };
  /** Replaces the server by a new one on the same port (same issuer URL, empty client store). */
  const restart = async (opts: Parameters<typeof startRegistrationServer>[0]) => {
    await server.close();
    server = await startRegistrationServer({ mode: 'iam', port, ...opts });
  };

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam', tls: true, initialAccessToken: 'iat-one' });
    port = Number(new URL(server.issuer).port);
    ns = await createTestNamespace(kc, 'provider-trust');
    r = new OidcReader(kc, ns.name);
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: v1
kind: Secret
metadata: { name: provider-trust }
stringData:
  token: iat-one
  ca.crt: ${JSON.stringify(server.caPem)}
`,
      ns.name,
    );
    await kubectlApply(
      binDir,
      kubeconfigPath,
      `apiVersion: oidc.dcr-operator.dev/v1alpha1
kind: ClusterOidcProvider
metadata: { name: ${PROVIDER} }
spec:
  issuerUrl: ${server.issuer}
  caSecretRef: { name: provider-trust, namespace: ${ns.name} }
  initialAccessTokenSecretRef: { name: provider-trust, namespace: ${ns.name} }
  conditions: [{ namespaces: [${ns.name}] }]
`,
    );
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      resyncIntervalMs: 600_000,
      providerSecretRecheckMs: RECHECK_MS,
    });
    await kubectlApply(binDir, kubeconfigPath, clientYaml('before'), ns.name);
    await r.waitReady('before');
  });

  afterAll(async () => {
    await op?.stop();
    await kubectl(binDir, kubeconfigPath, ['delete', 'clusteroidcprovider', PROVIDER, '--ignore-not-found']);
    await ns?.cleanup();
    await server?.close();
  });

  it('a new initial access token is read from the Secret before the next registration (no refused POST)', async () => {
    await restart({ tls: server.tlsMaterial, initialAccessToken: 'iat-two' });
    await patchSecret({ token: 'iat-two' });
    await sleep(RECHECK_MS + 200);
    const reads = trustReads();
    await kubectlApply(binDir, kubeconfigPath, clientYaml('after-iat'), ns.name);
    const cr = await r.waitReady('after-iat', { timeoutMs: 15_000 });
    expect(await server.store.get(cr.status?.clientId as string)).toBeDefined();
    const registrations = server.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration'),
    );
    expect(registrations.map((q) => q.status)).toEqual([201]);
    // Re-read once (one GET serves both keys), not on every reconcile.
    expect(trustReads() - reads).toBe(1);
    console.info(
      `[provider-trust] new IAT: provider saw ${server.requests.map((q) => `${q.method} ${q.path.replace(/\/[^/]*$/, '/…')} ${q.status}`).join(', ')}; trust Secret reads ${trustReads() - reads}`,
    );
  });

  it('a certificate from a new CA fails verification until the Secret carries the new CA, then registers', async () => {
    await restart({ tls: true, initialAccessToken: 'iat-two' });
    await kubectlApply(binDir, kubeconfigPath, clientYaml('after-ca'), ns.name);
    const failing = await r.waitReady('after-ca', {
      status: 'False',
      reason: 'ProviderUnavailable',
      timeoutMs: 15_000,
    });
    expect(r.condition(failing, 'Ready')?.message).toMatch(/certificate/i);
    expect(r.condition(failing, 'Reconciling')?.status).toBe('True');
    // Nothing got past the TLS handshake, and nothing was stored for the client.
    expect(server.requests).toEqual([]);
    expect((await r.secretValues('after-ca-oidc-registration'))?.registration_access_token).toBeUndefined();
    const readsBeforeFix = trustReads();
    const patchedAt = Date.now();
    await patchSecret({ 'ca.crt': server.caPem as string });
    const cr = await r.waitReady('after-ca', { timeoutMs: 20_000 });
    console.info(
      `[provider-trust] new CA: 0 requests reached the server before the Secret was fixed (${readsBeforeFix} trust Secret reads so far); Ready ${Date.now() - patchedAt} ms after kubectl patch; then ${server.requests.map((q) => `${q.method} ${q.status}`).join(', ')}`,
    );
    expect(await server.store.get(cr.status?.clientId as string)).toBeDefined();
    const registrations = server.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration'),
    );
    expect(registrations.map((q) => q.status)).toEqual([201]);
    // A handshake that failed sent nothing: no "may be orphaned" warning.
    expect((await r.events('after-ca')).map((e) => e.reason)).not.toContain('RegistrationRetried');
  });
});
