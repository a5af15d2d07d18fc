// Two (then three) operator processes sharing one Lease, as two replicas of the Deployment would:
// only the leader talks to the provider; SIGKILL of the leader (a crashed node) hands over within the
// lease duration; SIGTERM (a rollout) exits 0 and releases the Lease so the successor starts at once.
import { CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import {
  type LogLine,
  metricSum,
  type OperatorProcess,
  startOperatorProcess,
  stopAll,
} from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const LEASE = 'oidc-operator-e2e';
const LEASE_SECONDS = 4;

const spec = (host: string) => `  redirectUris: [https://${host}.example.org/cb]\n`;
const isLeaderLine = (l: LogLine) => l.msg === 'became leader';
const logTime = (l: LogLine) => Date.parse(String(l.time));

describe('leader election between operator processes', () => {
  let kc: KubeConfig;
  let ns: TestNamespace;
  let server: RegistrationServer;
  let r: OidcReader;
  const procs: OperatorProcess[] = [];
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
  const holder = async () =>
    (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns.name, name: LEASE })).spec
      ?.holderIdentity ?? '';

  async function start(identity: string): Promise<OperatorProcess> {
    const p = await startOperatorProcess({
      name: identity,
      kubeconfigPath,
      env: { POD_NAME: identity },
      args: [
        `--namespaces=${ns.name}`,
        '--leader-elect',
        `--leader-election-namespace=${ns.name}`,
        `--leader-election-id=${LEASE}`,
        `--lease-duration=${LEASE_SECONDS}s`,
        '--resync-interval=10m',
      ],
    });
    procs.push(p);
    return p;
  }

  beforeAll(async () => {
    kc = kubeConfigFromFile(kubeconfigPath);
    [ns, server] = await Promise.all([
      createTestNamespace(kc, 'leader-process'),
      startRegistrationServer({ mode: 'iam' }),
    ]);
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
  });

  afterAll(async () => {
    await stopAll(procs);
    await Promise.allSettled([ns?.cleanup(), server?.close()]);
  });

  let a: OperatorProcess;
  let b: OperatorProcess;

  it('only the leader reconciles and calls the provider', async () => {
    a = await start('op-a');
    await a.waitForLog(isLeaderLine, { description: 'leadership', timeoutMs: 15_000 });
    b = await start('op-b');
    await b.waitForLog((l) => l.msg === 'waiting for leadership', { description: 'standby' });
    // A standby is ready: it has nothing to sync and must be able to take over.
    await b.waitReady(10_000);
    expect((await b.get('/readyz')).status).toBe(200);
    expect(await holder()).toBe('op-a');

    const names = ['one', 'two', 'three'];
    for (const n of names) await apply(clientYaml(n, 'iam', spec(n)));
    for (const n of names) await r.waitReady(n, { timeoutMs: 20_000 });
    expect(posts()).toBe(3);

    const [ma, mb] = await Promise.all([a.metrics(), b.metrics()]);
    expect(metricSum(ma, 'oidc_operator_leader')).toBe(1);
    expect(metricSum(mb, 'oidc_operator_leader')).toBe(0);
    expect(metricSum(ma, 'oidc_operator_provider_requests_total', { method: 'POST', status: '201' })).toBe(3);
    expect(metricSum(mb, 'oidc_operator_provider_requests_total')).toBe(0);
    expect(metricSum(mb, 'oidc_operator_reconcile_total')).toBe(0);
    expect(b.logs().some((l) => l.msg === 'starting workers')).toBe(false);
  });

  it('SIGKILL of the leader: the standby takes over within the lease duration and reconciles', async () => {
    const killedAt = Date.now();
    a.kill('SIGKILL');
    const exit = await a.exited;
    expect(exit.signal).toBe('SIGKILL');
    await apply(clientYaml('after-kill', 'iam', spec('after-kill')));

    const took = await b.waitForLog(isLeaderLine, {
      description: 'taking over',
      timeoutMs: (LEASE_SECONDS + 5) * 1000,
    });
    await r.waitReady('after-kill', { timeoutMs: (LEASE_SECONDS + 8) * 1000 });
    const reconciledAt = Date.now();
    const takeoverMs = logTime(took) - killedAt;
    const reconcileMs = reconciledAt - killedAt;
    console.info(
      `[leader-election] SIGKILL → op-b leader ${takeoverMs} ms; new client Ready ${reconcileMs} ms`,
    );
    // The standby counts the lease from when it saw the last renewal (up to one retry period, 1-1.2 s,
    // after it was written) and notices expiry on its next poll (another retry period).
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 3) * 1000);
    expect(reconcileMs).toBeLessThan((LEASE_SECONDS + 5) * 1000);
    expect(await holder()).toBe('op-b');
    // The new leader re-lists everything but registers only the new client: no duplicates.
    expect(posts()).toBe(4);
    const mb = await b.metrics();
    expect(metricSum(mb, 'oidc_operator_leader')).toBe(1);
    expect(metricSum(mb, 'oidc_operator_provider_requests_total', { method: 'POST', status: '201' })).toBe(1);
  });

  it('SIGTERM of the leader: exits 0 promptly and releases the Lease to the standby', async () => {
    const c = await start('op-c');
    await c.waitForLog((l) => l.msg === 'waiting for leadership', { description: 'standby' });
    const termAt = Date.now();
    b.kill('SIGTERM');
    const exit = await b.exited;
    const exitedAt = Date.now();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(b.logs().some((l) => l.msg === 'released the lease')).toBe(true);
    const releasedOrTaken = await waitFor(
      async () => {
        const h = await holder();
        return h === '' || h === 'op-c' ? h || '(released)' : undefined;
      },
      { description: 'the Lease released or taken by op-c', timeoutMs: 1_000, intervalMs: 50 },
    );
    const took = await c.waitForLog(isLeaderLine, { description: 'taking over', timeoutMs: 5_000 });
    const handoverMs = logTime(took) - exitedAt;
    console.info(
      `[leader-election] SIGTERM → exit 0 in ${exitedAt - termAt} ms (lease: ${releasedOrTaken}); op-c leader ${handoverMs} ms after the exit`,
    );
    expect(exitedAt - termAt).toBeLessThan(5_000);
    // Well under the lease duration: the successor did not have to wait for expiry.
    expect(handoverMs).toBeLessThan(2_500);
    await apply(clientYaml('after-term', 'iam', spec('after-term')));
    await r.waitReady('after-term', { timeoutMs: 15_000 });
    expect(posts()).toBe(5);
  });
});
