// What operators of the operator see, from the outside of a real process: health endpoints, the
// Prometheus metrics, kstatus of OidcClients (what Flux and Argo CD compute), `kubectl wait`, and
// that no credential ever reaches its output, even at debug level with a token-rotating provider.
import { type KubeConfig, type V1Secret, Watch } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, GROUP, OidcReader, providerYaml, VERSION } from '../harness/oidc.js';
import {
  metricSum,
  type OperatorProcess,
  startOperatorProcess,
  stopAll,
} from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');

type KStatus = 'InProgress' | 'Failed' | 'Current' | 'Terminating';

/**
 * kstatus' generic rules (sigs.k8s.io/cli-utils/pkg/kstatus, README "Conditions"): a spec the
 * controller has not seen yet, or Reconciling=True, is InProgress; Stalled=True is Failed; anything
 * else is Current.
 */
function kstatus(obj: OidcClient): KStatus {
  if (obj.metadata.deletionTimestamp) return 'Terminating';
  const observed = obj.status?.observedGeneration;
  if (observed !== undefined && observed !== obj.metadata.generation) return 'InProgress';
  const isTrue = (type: string) =>
    obj.status?.conditions?.some((c) => c.type === type && c.status === 'True');
  if (isTrue('Reconciling')) return 'InProgress';
  if (isTrue('Stalled')) return 'Failed';
  return 'Current';
}

/** Every credential the run produced: each version of each Secret (from a watch) and the provider's store. */
class CredentialHarvester {
  readonly values = { clientSecrets: new Set<string>(), registrationTokens: new Set<string>() };
  private abort?: AbortController;
  private stopped = false;
  private resourceVersion = '';
  private poller?: NodeJS.Timeout;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly server: RegistrationServer,
  ) {}

  async start(): Promise<void> {
    await this.watch();
    this.poller = setInterval(() => void this.pollStore(), 200);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    this.abort?.abort();
    await this.pollStore();
  }

  private add(set: Set<string>, value: string | undefined): void {
    if (value) set.add(value);
  }

  private async pollStore(): Promise<void> {
    for (const c of await this.server.store.list()) {
      const secret = c.metadata.client_secret;
      if (typeof secret === 'string') this.add(this.values.clientSecrets, secret);
    }
  }

  private collect(secret: V1Secret): void {
    const data = secret.data ?? {};
    const decode = (k: string) => (data[k] ? Buffer.from(data[k], 'base64').toString('utf8') : undefined);
    this.add(this.values.clientSecrets, decode('client_secret'));
    this.add(this.values.registrationTokens, decode('registration_access_token'));
  }

  /** A watch sees every stored version of a Secret, so no rotated token slips between two polls. */
  private async watch(): Promise<void> {
    this.abort = await new Watch(this.kc).watch(
      `/api/v1/namespaces/${this.namespace}/secrets`,
      this.resourceVersion ? { resourceVersion: this.resourceVersion } : {},
      (_phase: string, obj: V1Secret) => {
        if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
        if (obj.kind === 'Status') return;
        this.collect(obj);
      },
      () => {
        // The watch ends on idle timeouts: resume from the last version seen.
        if (!this.stopped) void this.watch();
      },
    );
  }
}

const WEB = `  clientName: web
  redirectUris: [https://web.example.org/cb]
  grantTypes: [authorization_code, refresh_token]
  scopes: [openid, email]
`;

describe('operator process: health, metrics, kstatus and no leaked credentials', () => {
  let kc: KubeConfig;
  let ns: TestNamespace;
  let server: RegistrationServer;
  let op: OperatorProcess;
  let r: OidcReader;
  let harvester: CredentialHarvester;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const read = async (name: string) => {
    const cr = await r.client(name);
    if (!cr) throw new Error(`OidcClient ${name} not found`);
    return cr;
  };

  beforeAll(async () => {
    kc = kubeConfigFromFile(kubeconfigPath);
    [ns, server] = await Promise.all([
      createTestNamespace(kc, 'observability-process'),
      // Rotating: every GET and PUT hands out a new registration access token, so many are issued.
      startRegistrationServer({ mode: 'rotating' }),
    ]);
    r = new OidcReader(kc, ns.name);
    harvester = new CredentialHarvester(kc, ns.name, server);
    await harvester.start();
    await apply(providerYaml('iam', server.issuer));
    op = await startOperatorProcess({
      name: 'observability',
      kubeconfigPath,
      env: { POD_NAME: 'observability-0' },
      args: [
        `--namespaces=${ns.name}`,
        '--leader-elect',
        `--leader-election-namespace=${ns.name}`,
        '--lease-duration=4s',
        '--log-level=debug',
        '--resync-interval=2s',
        '--deletion-timeout=10s',
        '--provider-timeout=3s',
      ],
    });
  });

  afterAll(async () => {
    await stopAll([op]);
    await harvester?.stop();
    await Promise.allSettled([ns?.cleanup(), server?.close()]);
  });

  it('answers /healthz, and /readyz once the caches are synced', async () => {
    expect(await op.get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    await op.waitForLog((l) => l.msg === 'starting workers', {
      description: 'caches synced',
      timeoutMs: 20_000,
    });
    await op.waitReady(5_000);
    const verbose = await op.get('/readyz?verbose');
    expect(verbose.status).toBe(200);
    expect(verbose.body).toContain('[+]watches ok');
    expect((await op.get('/nope')).status).toBe(404);
  });

  it('a healthy client is kstatus Current and `kubectl wait --for=condition=Ready` succeeds', async () => {
    await apply(clientYaml('web', 'iam', WEB));
    const wait = await kubectl(
      binDir,
      kubeconfigPath,
      ['wait', '--for=condition=Ready', 'oidcclient/web', '--timeout=30s'],
      { namespace: ns.name },
    );
    expect(wait.code, wait.stderr).toBe(0);
    expect(wait.stdout).toContain('oidcclient.oidc.dcr-operator.dev/web condition met');
    expect(kstatus(await read('web'))).toBe('Current');
  });

  it('stays Current through an update and token rotations on drift checks', async () => {
    const before = harvester.values.registrationTokens.size;
    await apply(clientYaml('web', 'iam', WEB.replace('[openid, email]', '[openid, email, profile]')));
    const cr = await r.waitReady('web');
    expect(cr.metadata.generation).toBe(2);
    expect(kstatus(cr)).toBe('Current');
    // The PUT and at least two drift-check GETs each rotated the token, and each was stored.
    await waitFor(() => harvester.values.registrationTokens.size >= before + 3, {
      description: 'three more registration access tokens stored',
      timeoutMs: 15_000,
    });
    expect(kstatus(await read('web'))).toBe('Current');
  });

  it('an invalid spec and a provider 400 are kstatus Failed', async () => {
    // Accepted by the apiserver, refused by the operator: a label value invalid on the Secret.
    await apply(
      clientYaml(
        'frag',
        'iam',
        `  redirectUris: ['https://frag.example.org/cb']\n  secretTemplate:\n    labels: { tier: "front end" }\n`,
      ),
    );
    await apply(
      clientYaml(
        'alg',
        'iam',
        `  redirectUris: ['https://alg.example.org/cb']\n  extraMetadata:\n    id_token_signed_response_alg: XS999\n`,
      ),
    );
    const frag = await r.waitReady('frag', { status: 'False', reason: 'InvalidSecretTemplate' });
    const alg = await r.waitReady('alg', { status: 'False', reason: 'InvalidMetadata' });
    expect(kstatus(frag)).toBe('Failed');
    expect(kstatus(alg)).toBe('Failed');
  });

  it('is kstatus InProgress while the provider answers 503, then Current', async () => {
    server.faults.add({
      method: 'POST',
      pathPattern: /client-registration$/,
      status: 503,
      body: { error: 'temporarily_unavailable' },
      times: Number.POSITIVE_INFINITY,
    });
    try {
      await apply(clientYaml('busy', 'iam', `  redirectUris: ['https://busy.example.org/cb']\n`));
      const first = await r.waitReady('busy', { status: 'False', reason: 'ProviderUnavailable' });
      expect(kstatus(first)).toBe('InProgress');
      // Not a passing state: it stays InProgress for as long as the provider is down.
      const seen = new Set<KStatus>();
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        seen.add(kstatus(await read('busy')));
        await new Promise((res) => setTimeout(res, 200));
      }
      expect([...seen]).toEqual(['InProgress']);
      expect(server.requests.some((q) => q.method === 'POST' && q.status === 503)).toBe(true);
    } finally {
      server.faults.clear();
    }
    const ready = await r.waitReady('busy', { timeoutMs: 30_000 });
    expect(kstatus(ready)).toBe('Current');
  });

  it('exposes reconcile, provider, work queue, client and leader metrics', async () => {
    // The clients gauge is refreshed after reconciles; drift checks run every 2 s.
    await waitFor(
      async () => metricSum(await op.metrics(), 'oidc_operator_clients', { ready: 'True' }) >= 2,
      {
        description: 'oidc_operator_clients{ready="True"} >= 2',
        timeoutMs: 10_000,
      },
    );
    const m = await op.metrics();
    const sum = (name: string, where: Record<string, string> = {}) => metricSum(m, name, where);
    const has = (name: string, where: Record<string, string> = {}) =>
      m.some((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));

    expect(
      sum('oidc_operator_reconcile_total', { controller: 'oidcclient', result: 'success' }),
    ).toBeGreaterThan(0);
    // The 503s came back as requeues.
    expect(sum('oidc_operator_reconcile_total', { result: 'requeue' })).toBeGreaterThan(0);
    expect(sum('oidc_operator_reconcile_duration_seconds_count')).toBeGreaterThan(0);
    expect(has('oidc_operator_reconcile_duration_seconds_bucket', { le: '+Inf' })).toBe(true);

    expect(sum('oidc_operator_provider_requests_total', { method: 'POST', status: '201' })).toBeGreaterThan(
      0,
    );
    expect(sum('oidc_operator_provider_requests_total', { method: 'POST', status: '503' })).toBeGreaterThan(
      0,
    );
    expect(sum('oidc_operator_provider_requests_total', { method: 'POST', status: '400' })).toBeGreaterThan(
      0,
    );
    expect(sum('oidc_operator_provider_requests_total', { method: 'PUT', status: '200' })).toBeGreaterThan(0);
    expect(sum('oidc_operator_provider_requests_total', { method: 'GET', status: '200' })).toBeGreaterThan(0);
    // Labelled by the provider resource, never by a host taken from a URL.
    expect(
      has('oidc_operator_provider_requests_total', { provider_kind: 'OidcProvider', provider_name: 'iam' }),
    ).toBe(true);
    expect(m.some((s) => s.name.startsWith('oidc_operator_provider_') && 'host' in s.labels)).toBe(false);
    expect(sum('oidc_operator_provider_request_duration_seconds_count', { method: 'POST' })).toBeGreaterThan(
      0,
    );

    expect(has('oidc_operator_workqueue_depth', { controller: 'oidcclient' })).toBe(true);
    expect(sum('oidc_operator_workqueue_wait_seconds_count', { controller: 'oidcclient' })).toBeGreaterThan(
      0,
    );
    expect(sum('oidc_operator_clients', { ready: 'True' })).toBeGreaterThanOrEqual(2);
    expect(sum('oidc_operator_clients', { ready: 'False' })).toBeGreaterThanOrEqual(2);
    expect(sum('oidc_operator_leader')).toBe(1);
  });

  it('deletes the client at the provider', async () => {
    const id = (await read('web')).status?.clientId as string;
    expect(await server.store.get(id)).toBeDefined();
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'web', '--timeout=30s'], {
      namespace: ns.name,
    });
    expect(del.code, del.stderr).toBe(0);
    expect(await server.store.get(id)).toBeUndefined();
  });

  it('never writes a client secret or registration access token to its output, Events or status', async () => {
    const stoppedAt = Date.now();
    const exit = await op.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    console.info(`[observability] SIGTERM → exit 0 in ${Date.now() - stoppedAt} ms`);
    await harvester.stop();
    const output = op.output();
    // Events and status are readable by far more people than Secrets are.
    const events = JSON.stringify((await r.core.listNamespacedEvent({ namespace: ns.name })).items);
    const statuses = JSON.stringify(
      await r.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns.name,
        plural: 'oidcclients',
      }),
    );
    const { clientSecrets, registrationTokens } = harvester.values;
    const levels = op.logs().reduce<Record<string, number>>((n, l) => {
      const level = l.raw ? 'raw' : String(l.level);
      n[level] = (n[level] ?? 0) + 1;
      return n;
    }, {});
    console.info(
      `[observability] searched output (lines by level: ${JSON.stringify(levels)}), ${events.length} bytes of Events and the OidcClients for ${clientSecrets.size} client secrets and ${registrationTokens.size} registration access tokens`,
    );
    // Enough material to make the search meaningful: web and busy registered, many rotated tokens.
    expect(clientSecrets.size).toBeGreaterThanOrEqual(2);
    expect(registrationTokens.size).toBeGreaterThanOrEqual(6);
    // The places searched do talk about these clients (ids are not secret): they are not just empty.
    const webId = [...statuses.matchAll(/client (\S+) registered at/g)][0]?.[1];
    expect(webId).toBeTruthy();
    expect(output).toContain(webId);
    const leaks = [...clientSecrets, ...registrationTokens].filter((v) =>
      [output, events, statuses].some(
        (text) => text.includes(v) || text.includes(Buffer.from(v).toString('base64')),
      ),
    );
    expect(leaks.map((v) => `${v.slice(0, 4)}… (${v.length} chars)`)).toEqual([]);
  });
});
