// Provider health on real parts: an HTTPS registration server with a private CA, OidcProvider and
// ClusterOidcProvider applied with kubectl, and the operator checking them while NO OidcClient
// exists. Shows: Ready with discovery, TLS and the registration endpoint up; a stopped server, a
// missing registration endpoint, an untrusted certificate and a missing Secret each with their own
// reason; recovery; the Ready/Reason columns of `kubectl get`; no status write while nothing
// changes; and that the probe registered nothing (only 400 answers to unparsable POSTs).
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterOidcProvider, OidcProvider } from '../../src/api/types.generated.js';
import {
  createTestNamespace,
  isApiError,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { GROUP, OidcReader, VERSION } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import {
  REGISTRATION_PATH,
  type RegistrationServer,
  startRegistrationServer,
} from '../harness/registration-server/index.js';
import { makeTlsMaterial } from '../harness/registration-server/tls.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const INTERVAL_MS = 1_000;
const CLUSTER = `health-${randomBytes(3).toString('hex')}`;

type Cond = { type: string; status: string; reason?: string; message?: string; observedGeneration?: number };

describe('provider health: status of OidcProvider and ClusterOidcProvider without any client', () => {
  let server: RegistrationServer;
  let port: number;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let r: OidcReader;
  const apply = (yaml: string, namespace?: string) => kubectlApply(binDir, kubeconfigPath, yaml, namespace);

  const get = async (
    name: string,
    cluster = false,
  ): Promise<OidcProvider | ClusterOidcProvider | undefined> => {
    try {
      return (
        cluster
          ? await r.custom.getClusterCustomObject({
              group: GROUP,
              version: VERSION,
              plural: 'clusteroidcproviders',
              name,
            })
          : await r.custom.getNamespacedCustomObject({
              group: GROUP,
              version: VERSION,
              namespace: ns.name,
              plural: 'oidcproviders',
              name,
            })
      ) as OidcProvider;
    } catch (error) {
      if (isApiError(error, 404)) return undefined;
      throw error;
    }
  };
  const cond = (p: OidcProvider | ClusterOidcProvider | undefined, type: string): Cond | undefined =>
    p?.status?.conditions?.find((c) => c.type === type);
  /** Waits for Ready=status (reason) on the provider's current generation. */
  const waitProvider = (name: string, status: string, reason: string, cluster = false, timeoutMs = 20_000) =>
    waitFor(
      async () => {
        const p = await get(name, cluster);
        const ready = cond(p, 'Ready');
        if (!p || p.status?.observedGeneration !== p.metadata.generation) return undefined;
        return ready?.status === status && ready.reason === reason ? p : undefined;
      },
      {
        description: `${cluster ? 'ClusterOidcProvider' : 'OidcProvider'} ${name} Ready=${status} ${reason}`,
        timeoutMs,
        intervalMs: 200,
      },
    );
  const statusWrites = (name: string) =>
    op.writes.filter(
      (w) =>
        w.endsWith(`/oidcproviders/${name}/status`) || w.endsWith(`/clusteroidcproviders/${name}/status`),
    ).length;
  const probes = () => server.requests.filter((q) => q.method === 'POST' && q.path === REGISTRATION_PATH);

  const providerYaml = (name: string, caSecret: string, extra = '') => `apiVersion: ${GROUP}/${VERSION}
kind: OidcProvider
metadata: { name: ${name} }
spec:
  issuerUrl: ${server.issuer}
  caSecretRef: { name: ${caSecret} }
${extra}`;
  const caSecretYaml = (name: string, pem: string) => `apiVersion: v1
kind: Secret
metadata: { name: ${name} }
stringData:
  ca.crt: ${JSON.stringify(pem)}
`;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam', tls: true });
    port = Number(new URL(server.issuer).port);
    ns = await createTestNamespace(kc, 'provider-health');
    r = new OidcReader(kc, ns.name);
    const other = await makeTlsMaterial();
    await apply(caSecretYaml('provider-ca', server.caPem as string), ns.name);
    await apply(caSecretYaml('other-ca', other.caPem), ns.name);
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      providerCheckIntervalMs: INTERVAL_MS,
      // Only this file's ClusterOidcProvider: the control plane is shared with other test files.
      checkClusterProviders: (name) => name === CLUSTER,
      providerRequestTimeoutMs: 2_000,
    });
  });

  afterAll(async () => {
    await op?.stop();
    await kubectl(binDir, kubeconfigPath, ['delete', 'clusteroidcprovider', CLUSTER, '--ignore-not-found']);
    await ns?.cleanup();
    await server?.close();
  });

  it('is Ready (Available) when discovery, TLS through the private CA and the registration endpoint answer; the probe registers nothing', async () => {
    await apply(providerYaml('good', 'provider-ca'), ns.name);
    const p = await waitProvider('good', 'True', 'Available');
    expect(cond(p, 'Ready')?.message).toBe(
      `registration endpoint ${server.registrationEndpoint} (discovery) answers`,
    );
    expect(cond(p, 'Reconciling')).toBeUndefined();
    expect(cond(p, 'Stalled')).toBeUndefined();
    expect(p.status?.registrationEndpoint).toBe(server.registrationEndpoint);
    expect(p.status?.tokenEndpoint).toBe(server.tokenEndpoint);
    // What reached the provider: discovery GETs and unparsable POSTs answered 400, nothing stored.
    expect(probes().length).toBeGreaterThan(0);
    expect(new Set(probes().map((q) => q.status))).toEqual(new Set([400]));
    expect(await server.store.list()).toEqual([]);
    expect(new Set(server.requests.map((q) => `${q.method} ${q.path}`))).toEqual(
      new Set([`GET /.well-known/openid-configuration`, `POST ${REGISTRATION_PATH}`]),
    );
  });

  it('writes nothing while nothing changes (idle means idle), though it keeps checking', async () => {
    await waitProvider('good', 'True', 'Available');
    const writes = statusWrites('good');
    const checks = probes().length;
    const started = Date.now();
    // Three more full checks (each a Secret read, discovery and a probe), however slow the machine.
    await waitFor(() => probes().length - checks >= 3, { description: '3 more checks', timeoutMs: 30_000 });
    expect(statusWrites('good')).toBe(writes);
    expect(cond(await get('good'), 'Ready')?.status).toBe('True');
    console.info(
      `[provider-health] idle ${Date.now() - started} ms: ${probes().length - checks} checks, ${statusWrites('good') - writes} status writes (${writes} before: Checking, then Available)`,
    );
  });

  it('shows Ready and Reason in `kubectl get oidcproviders`', async () => {
    const res = await kubectl(binDir, kubeconfigPath, ['get', 'oidcproviders', 'good'], {
      namespace: ns.name,
    });
    expect(res.code, res.stderr).toBe(0);
    const [head, row] = res.stdout.trim().split('\n');
    expect(head?.split(/\s+/)).toEqual(['NAME', 'READY', 'REASON', 'ISSUER', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 4)).toEqual(['good', 'True', 'Available', server.issuer]);
  });

  it('a stopped registration server: Ready=False DiscoveryFailed (Reconciling), then Ready again once it is back', async () => {
    const tls = server.tlsMaterial;
    await server.close();
    const down = await waitProvider('good', 'False', 'DiscoveryFailed');
    expect(cond(down, 'Ready')?.message).toMatch(/openid-configuration.*ECONNREFUSED/);
    expect(cond(down, 'Reconciling')).toMatchObject({ status: 'True', reason: 'DiscoveryFailed' });
    expect(cond(down, 'Stalled')).toBeUndefined();
    // The endpoints of the last good check stay.
    expect(down.status?.registrationEndpoint).toBe(server.registrationEndpoint);
    await waitFor(async () => (await r.events('good')).find((e) => e.reason === 'DiscoveryFailed'), {
      description: 'a DiscoveryFailed Event',
    }).then((e) => expect(e.type).toBe('Warning'));
    server = await startRegistrationServer({ mode: 'iam', tls, port });
    const up = await waitProvider('good', 'True', 'Available');
    expect(cond(up, 'Reconciling')).toBeUndefined();
    expect(await server.store.list()).toEqual([]);
  });

  it('a registration endpoint that answers 404 or does not answer: RegistrationEndpointUnavailable', async () => {
    server.faults.add({ method: 'POST', pathPattern: /client-registration$/, status: 404, times: Infinity });
    const missing = await waitProvider('good', 'False', 'RegistrationEndpointUnavailable');
    expect(cond(missing, 'Ready')?.message).toBe(
      `POST 127.0.0.1:${port}${REGISTRATION_PATH} answered 404: no registration endpoint at this URL`,
    );
    server.faults.clear();
    await waitProvider('good', 'True', 'Available');
    // An explicit endpoint nobody listens on: discovery works, the endpoint does not.
    await apply(
      providerYaml('wrong-endpoint', 'provider-ca', `  registrationEndpoint: https://127.0.0.1:1/register\n`),
      ns.name,
    );
    const refused = await waitProvider('wrong-endpoint', 'False', 'RegistrationEndpointUnavailable');
    expect(cond(refused, 'Ready')?.message).toBe('POST 127.0.0.1:1/register: no answer (ECONNREFUSED)');
    expect(cond(refused, 'Reconciling')?.status).toBe('True');
  });

  it('a CA that does not sign the server certificate: TLSError (Stalled); fixing the Secret makes it Ready', async () => {
    await apply(caSecretYaml('wrong-ca', (await makeTlsMaterial()).caPem), ns.name);
    await apply(providerYaml('bad-ca', 'wrong-ca'), ns.name);
    const bad = await waitProvider('bad-ca', 'False', 'TLSError');
    expect(cond(bad, 'Ready')?.message).toMatch(
      new RegExp(
        `^127\\.0\\.0\\.1:${port}: certificate not trusted by the CA in Secret ${ns.name}/wrong-ca key ca\\.crt \\(\\w+\\)$`,
      ),
    );
    expect(cond(bad, 'Stalled')).toMatchObject({ status: 'True', reason: 'TLSError' });
    expect(cond(bad, 'Reconciling')).toBeUndefined();
    const out = await kubectl(binDir, kubeconfigPath, ['get', 'oidcproviders', 'bad-ca', '--no-headers'], {
      namespace: ns.name,
    });
    expect(out.stdout.split(/\s+/).slice(0, 3)).toEqual(['bad-ca', 'False', 'TLSError']);
    const fix = await kubectl(
      binDir,
      kubeconfigPath,
      ['patch', 'secret', 'wrong-ca', '-p', JSON.stringify({ stringData: { 'ca.crt': server.caPem } })],
      { namespace: ns.name },
    );
    expect(fix.code, fix.stderr).toBe(0);
    const fixed = await waitProvider('bad-ca', 'True', 'Available');
    expect(cond(fixed, 'Stalled')).toBeUndefined();
    // A Warning Event when it broke, a Normal one when it recovered; one each.
    const events = await waitFor(
      async () => {
        const e = await r.events('bad-ca');
        return e.some((x) => x.type === 'Normal') && e;
      },
      { description: 'Events of bad-ca' },
    );
    expect(events.map((e) => `${e.type} ${e.reason}`).sort()).toEqual([
      'Normal Available',
      'Warning TLSError',
    ]);
  });

  it('a missing Secret or a bad CA bundle: ProviderInvalid (Stalled), nothing sent', async () => {
    await apply(providerYaml('no-secret', 'does-not-exist'), ns.name);
    const p = await waitProvider('no-secret', 'False', 'ProviderInvalid');
    expect(cond(p, 'Ready')?.message).toBe(`Secret ${ns.name}/does-not-exist not found`);
    expect(cond(p, 'Stalled')?.status).toBe('True');
    await apply(caSecretYaml('garbage-ca', 'not a certificate'), ns.name);
    await apply(providerYaml('garbage', 'garbage-ca'), ns.name);
    const g = await waitProvider('garbage', 'False', 'ProviderInvalid');
    expect(cond(g, 'Ready')?.message).toBe(
      `Secret ${ns.name}/garbage-ca key ca.crt is not a PEM certificate`,
    );
  });

  it('a spec change is checked at once and reported for its generation', async () => {
    const p = await waitProvider('good', 'True', 'Available');
    await apply(providerYaml('good', 'other-ca'), ns.name);
    const changed = await waitProvider('good', 'False', 'TLSError');
    expect(changed.metadata.generation).toBe((p.metadata.generation ?? 0) + 1);
    expect(cond(changed, 'Ready')?.observedGeneration).toBe(changed.metadata.generation);
    await apply(providerYaml('good', 'provider-ca'), ns.name);
    await waitProvider('good', 'True', 'Available');
  });

  it('checks a ClusterOidcProvider too, with its columns', async () => {
    await apply(`apiVersion: ${GROUP}/${VERSION}
kind: ClusterOidcProvider
metadata: { name: ${CLUSTER} }
spec:
  issuerUrl: ${server.issuer}
  caSecretRef: { name: provider-ca, namespace: ${ns.name} }
  conditions: [{ namespaces: [${ns.name}] }]
`);
    const p = await waitProvider(CLUSTER, 'True', 'Available', true);
    expect(p.status?.registrationEndpoint).toBe(server.registrationEndpoint);
    const res = await kubectl(binDir, kubeconfigPath, ['get', 'clusteroidcproviders', CLUSTER]);
    const [head, row] = res.stdout.trim().split('\n');
    expect(head?.split(/\s+/)).toEqual(['NAME', 'READY', 'REASON', 'ISSUER', 'AGE']);
    expect(row?.split(/\s+/).slice(0, 3)).toEqual([CLUSTER, 'True', 'Available']);
  });

  it('exports each checked provider as oidc_operator_provider_ready_status', async () => {
    const text = await op.metrics.registry.metrics();
    const line = (name: string, kind: string, namespace: string, condition: string) =>
      new RegExp(
        `^oidc_operator_provider_ready_status\\{provider_kind="${kind}",provider_namespace="${namespace}",provider_name="${name}",condition="${condition}"\\} (\\d+)$`,
        'm',
      ).exec(text)?.[1];
    expect(line('good', 'OidcProvider', ns.name, 'True')).toBe('1');
    expect(line('good', 'OidcProvider', ns.name, 'False')).toBe('0');
    expect(line('no-secret', 'OidcProvider', ns.name, 'False')).toBe('1');
    expect(line(CLUSTER, 'ClusterOidcProvider', '', 'True')).toBe('1');
    // Only the providers this process checks: not other test files' ClusterOidcProviders.
    const cluster = [
      ...text.matchAll(/provider_kind="ClusterOidcProvider",provider_namespace="",provider_name="([^"]+)"/g),
    ];
    expect(new Set(cluster.map((m) => m[1]))).toEqual(new Set([CLUSTER]));
    expect(text).toMatch(/^oidc_operator_provider_health_checks_total\{result="Available"\} \d+$/m);
    // A deleted provider's series go with it.
    await kubectl(binDir, kubeconfigPath, ['delete', 'oidcprovider', 'no-secret'], { namespace: ns.name });
    await waitFor(async () => !(await op.metrics.registry.metrics()).includes('provider_name="no-secret"'), {
      description: 'the no-secret series gone',
    });
  });
});
