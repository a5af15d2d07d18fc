// Fenced leader handover: two operator processes share a Lease while OidcClients are registered in
// waves, and the leadership is forced over three times during the waves — twice by freezing the
// leader (SIGSTOP past the lease duration, then SIGCONT: it resumes with work in flight and must
// not write over its successor), once by a rolling restart (SIGTERM). Afterwards the provider's
// store holds exactly one live client per OidcClient and no client that no management Secret names.
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
  type OperatorProcess,
  startOperatorProcess,
  stopAll,
} from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const LEASE = 'oidc-operator-handover';
const LEASE_SECONDS = 4;
const WAVE = 15;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('leader handover during a burst of registrations', () => {
  let kc: KubeConfig;
  let ns: TestNamespace;
  let server: RegistrationServer;
  let r: OidcReader;
  const procs: OperatorProcess[] = [];
  const names: string[] = [];
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
  const holder = async () =>
    (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: ns.name, name: LEASE })).spec
      ?.holderIdentity ?? '';
  const isLeaderLine = (l: LogLine) => l.msg === 'became leader';

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
        '--provider-timeout=5s',
      ],
    });
    procs.push(p);
    return p;
  }

  async function leader(): Promise<OperatorProcess> {
    const id = await waitFor(async () => (await holder()) || undefined, {
      description: 'a Lease holder',
      timeoutMs: 20_000,
    });
    const p = procs.find((x) => x.name === id && x.exit === undefined);
    if (!p) throw new Error(`Lease held by ${id}, which is not a running replica`);
    return p;
  }

  /** Applies the next wave and returns once its registrations are under way. */
  async function wave(): Promise<void> {
    const before = posts();
    const docs: string[] = [];
    for (let i = 0; i < WAVE; i++) {
      const name = `app-${names.length}`;
      names.push(name);
      docs.push(clientYaml(name, 'iam', `  redirectUris: [https://${name}.example.org/cb]\n`));
    }
    await apply(docs.join('---\n'));
    await waitFor(() => posts() >= before + 3, {
      description: 'registrations of the new wave to start',
      timeoutMs: 30_000,
      intervalMs: 20,
    });
  }

  /** Freezes the leader past the lease; the standby takes over; the old leader resumes and must exit. */
  async function pauseHandover(old: OperatorProcess, standby: OperatorProcess): Promise<void> {
    old.kill('SIGSTOP');
    try {
      await standby.waitForLog(isLeaderLine, {
        description: 'taking over from a frozen leader',
        timeoutMs: (LEASE_SECONDS + 10) * 1000,
      });
      // Let the successor act for a moment while the old leader still holds its work in flight.
      await sleep(1_500);
    } finally {
      old.kill('SIGCONT');
    }
    const exit = await Promise.race([old.exited, sleep(40_000).then(() => undefined)]);
    expect(exit, `${old.name} exits after resuming without the Lease`).toEqual({ code: 1, signal: null });
    expect(old.logs().some((l) => l.msg === 'lost leadership; exiting')).toBe(true);
  }

  beforeAll(async () => {
    kc = kubeConfigFromFile(kubeconfigPath);
    [ns, server] = await Promise.all([
      createTestNamespace(kc, 'leader-handover'),
      startRegistrationServer({ mode: 'iam' }),
    ]);
    r = new OidcReader(kc, ns.name);
    // A slow provider keeps registrations in flight while the leadership moves.
    server.faults.add({
      method: 'POST',
      pathPattern: /\/client-registration$/,
      delayMs: 300,
      times: Infinity,
    });
    await apply(providerYaml('iam', server.issuer, '  maxConcurrentRequests: 2\n'));
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGCONT');
    await stopAll(procs);
    await Promise.allSettled([ns?.cleanup(), server?.close()]);
  });

  it('three forced handovers: no duplicate and no orphaned client at the provider', async () => {
    const a = await start('op-a');
    await a.waitForLog(isLeaderLine, { description: 'leadership', timeoutMs: 20_000 });
    const b = await start('op-b');
    await b.waitForLog((l) => l.msg === 'waiting for leadership', { description: 'standby' });

    // 1. Freeze the leader during a wave.
    await wave();
    await pauseHandover(a, b);
    const a2 = await start('op-a2');
    await a2.waitForLog((l) => l.msg === 'waiting for leadership', { description: 'standby' });

    // 2. Rolling restart of the leader during a wave: released at once.
    await wave();
    expect((await leader()).name).toBe('op-b');
    b.kill('SIGTERM');
    expect(await b.exited).toEqual({ code: 0, signal: null });
    await a2.waitForLog(isLeaderLine, { description: 'taking over after SIGTERM', timeoutMs: 10_000 });
    const b2 = await start('op-b2');
    await b2.waitForLog((l) => l.msg === 'waiting for leadership', { description: 'standby' });

    // 3. Freeze the new leader during a wave.
    await wave();
    await pauseHandover(a2, b2);

    for (const n of names) await r.waitReady(n, { timeoutMs: 90_000 });
    await stopAll(procs);

    // Exactly one live client per OidcClient, each named by its management Secret; nothing else.
    const stored = await server.store.list();
    const referenced = new Map<string, string>();
    for (const n of names) {
      const id = (await r.secretValues(`${n}-oidc-registration`))?.client_id;
      expect(id, `management Secret of ${n}`).toBeDefined();
      referenced.set(id as string, n);
      expect((await r.secretValues(`${n}-oidc-client`))?.client_id).toBe(id);
    }
    const perName = new Map<string, number>();
    for (const c of stored) {
      const name = String(c.metadata.client_name);
      perName.set(name, (perName.get(name) ?? 0) + 1);
    }
    const duplicates = [...perName.values()].reduce((sum, k) => sum + Math.max(0, k - 1), 0);
    const orphans = stored.filter((c) => !referenced.has(c.clientId)).length;
    const missing = [...referenced.keys()].filter((id) => !stored.some((c) => c.clientId === id)).length;
    const events = (await Promise.all(names.map((n) => r.events(n)))).flat();
    const undone = procs
      .flatMap((p) => p.logs())
      .filter((l) => typeof l.msg === 'string' && l.msg.includes('deleting it at the provider')).length;
    console.info(
      `[leader-handover] ${names.length} OidcClients, 3 forced handovers (2× SIGSTOP past the lease, 1× SIGTERM): ${stored.length} clients at the provider, duplicates ${duplicates}, orphans ${orphans}; ${posts()} POSTs, ${undone} registrations undone by their loser, ${events.filter((e) => e.reason === 'RegistrationRetried').length} RegistrationRetried events`,
    );
    // Every registration beyond one per OidcClient was deleted again by the attempt that lost.
    expect(posts() - undone).toBe(names.length);
    expect(duplicates).toBe(0);
    expect(orphans).toBe(0);
    expect(missing).toBe(0);
    expect(stored).toHaveLength(names.length);
    expect(referenced.size).toBe(names.length);
  });
});
