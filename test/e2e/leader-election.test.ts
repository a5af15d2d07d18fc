import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { CoordinationV1Api, KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { LeaderElector } from '../../src/kube/leader-election.js';
import { createLogger } from '../../src/observability/logger.js';
import {
  createTestNamespace,
  isApiError,
  kubeConfigFromFile,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';

// Short timings keep the file fast while keeping the orderings client-go relies on:
// retryPeriod (0.5 s) < renewDeadline (2 s) < leaseDuration (3 s).
const LEASE_MS = 3000;
const RENEW_DEADLINE_MS = 2000;
const RETRY_MS = 500;

interface Term {
  startedAt: number;
  signal: AbortSignal;
  /** When the term's fence closed (its signal aborted). */
  fencedAt?: number;
}

interface Candidate {
  identity: string;
  elector: LeaderElector;
  terms: Term[];
  stoppedAt: number[];
  /** How long a term's work takes to finish after its signal aborts. */
  windDownMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** RFC 3339 MicroTime (as the API returns it) to epoch milliseconds. */
function millis(value: unknown): number {
  const ms = new Date(String(value instanceof Date ? value.toISOString() : value)).getTime();
  if (Number.isNaN(ms)) throw new Error(`not a time: ${String(value)}`);
  return ms;
}

/** A TCP relay to the API server that can turn into a black hole: connections accepted, never answered. */
async function startRelay(target: URL): Promise<{ url: string; blackhole(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let blackholed = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (blackholed) return;
    const upstream = tcpConnect(Number(target.port), target.hostname);
    track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    url: `https://127.0.0.1:${address.port}`,
    blackhole() {
      blackholed = true;
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function withServer(kc: KubeConfig, server: string): KubeConfig {
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return copy;
}

describe('LeaderElector on a real API server', () => {
  const kubeconfigPath = inject('kubeconfigPath');
  const apiServer = inject('apiServer');
  let kc: KubeConfig;
  let ns: TestNamespace;
  let leases: CoordinationV1Api;
  const running: Candidate[] = [];
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'silent', destination: process.stderr });

  function candidate(
    lease: string,
    identity: string,
    opts: { windDownMs?: number; kubeConfig?: KubeConfig } = {},
  ): Candidate {
    const c: Candidate = {
      identity,
      terms: [],
      stoppedAt: [],
      windDownMs: opts.windDownMs ?? 0,
      elector: undefined as unknown as LeaderElector,
    };
    c.elector = new LeaderElector({
      kubeConfig: opts.kubeConfig ?? kc,
      namespace: ns.name,
      name: lease,
      identity,
      leaseDurationSeconds: LEASE_MS / 1000,
      renewDeadlineSeconds: RENEW_DEADLINE_MS / 1000,
      retryPeriodSeconds: RETRY_MS / 1000,
      log,
      onStartedLeading: async (signal) => {
        const term: Term = { startedAt: Date.now(), signal };
        signal.addEventListener('abort', () => {
          term.fencedAt = Date.now();
        });
        c.terms.push(term);
        await aborted(signal);
        await sleep(c.windDownMs);
      },
      onStoppedLeading: () => {
        c.stoppedAt.push(Date.now());
      },
    });
    running.push(c);
    c.elector.start();
    return c;
  }

  const readLease = (name: string): Promise<V1Lease> =>
    leases.readNamespacedLease({ name, namespace: ns.name });

  beforeAll(async () => {
    kc = kubeConfigFromFile(kubeconfigPath);
    leases = kc.makeApiClient(CoordinationV1Api);
    ns = await createTestNamespace(kc, 'leader-election');
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.elector.stop({ release: false })));
  });

  afterAll(async () => {
    await ns?.cleanup();
  });

  it('rejects timings in which a successor could take over before the leader gives up', () => {
    const base = {
      kubeConfig: kc,
      namespace: ns.name,
      name: 'unused',
      identity: 'x',
      onStartedLeading: () => {},
    };
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 2, renewDeadlineSeconds: 2 })).toThrow(
      /greater than renewDeadlineSeconds/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineSeconds: 2, retryPeriodSeconds: 2 })).toThrow(
      /renewDeadlineSeconds must be greater/,
    );
    expect(() => new LeaderElector({ ...base, leaseDurationSeconds: 2.5, renewDeadlineSeconds: 1 })).toThrow(
      /integer/,
    );
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow(/identity/);
    expect(() => new LeaderElector(base)).not.toThrow();
  });

  it('API server: MicroTime needs six fractional digits, which V1MicroTime writes', async () => {
    // Why the elector wraps every time in V1MicroTime: a plain Date serializes with milliseconds.
    const spec = { holderIdentity: 'x', leaseDurationSeconds: 3 };
    const create = (name: string, renewTime: Date) =>
      leases.createNamespacedLease({
        namespace: ns.name,
        body: { metadata: { name }, spec: { ...spec, renewTime } },
      });
    const rejected = await create('millis', new Date()).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isApiError(rejected, 400) || isApiError(rejected, 422)).toBe(true);
    const stored = await create('micros', new V1MicroTime(Date.UTC(2030, 0, 2, 3, 4, 5, 678)));
    expect(String(stored.spec?.renewTime)).toBe('2030-01-02T03:04:05.678000Z');
  });

  it('lets exactly one of two candidates lead, holds the lease while the work winds down, then hands over at once', async () => {
    const a = candidate('handover', 'replica-a', { windDownMs: LEASE_MS + 500 });
    const b = candidate('handover', 'replica-b', { windDownMs: LEASE_MS + 500 });
    const [leader, follower] = await waitFor(
      () => (a.elector.isLeader() ? [a, b] : b.elector.isLeader() ? [b, a] : undefined),
      { description: 'one of the two candidates to lead', timeoutMs: 10_000, intervalMs: 50 },
    );
    // Several renew periods: never two leaders, never a change of leader.
    for (let i = 0; i < 15; i++) {
      expect([a, b].filter((c) => c.elector.isLeader()).map((c) => c.identity)).toEqual([leader.identity]);
      await sleep(100);
    }
    const held = await readLease('handover');
    expect(held.spec).toMatchObject({
      holderIdentity: leader.identity,
      leaseDurationSeconds: 3,
      leaseTransitions: 0,
    });
    expect(String(held.spec?.renewTime)).toMatch(/\.\d{6}Z$/);
    expect(follower.terms).toHaveLength(0);

    // stop() aborts the term at once but releases only after the work finished, renewing meanwhile:
    // the work outlasts a lease duration, so without renewals the follower would take over early.
    const stopping = leader.elector.stop();
    await waitFor(() => leader.terms[0]?.signal.aborted, {
      description: 'the term signal to abort',
      timeoutMs: 1000,
    });
    let overlapped = false;
    let stopped = false;
    void stopping.then(() => {
      stopped = true;
    });
    while (!stopped) {
      if (follower.elector.isLeader()) overlapped = true;
      await sleep(50);
    }
    const releasedAt = Date.now();
    expect(overlapped).toBe(false);
    expect(leader.elector.isLeader()).toBe(false);
    expect(leader.stoppedAt).toHaveLength(1);

    // Released (empty holder, 1 s duration): the follower takes over within about a retry period,
    // far sooner than the 3 s lease would have run out.
    await waitFor(() => follower.elector.isLeader(), {
      description: `${follower.identity} to lead after the release`,
      timeoutMs: 5000,
      intervalMs: 20,
    });
    expect(Date.now() - releasedAt).toBeLessThan(1500);
    const taken = await readLease('handover');
    expect(taken.spec).toMatchObject({
      holderIdentity: follower.identity,
      leaseDurationSeconds: 3,
      leaseTransitions: 1,
    });
    follower.windDownMs = 0;
  });

  it('takes over from a leader that vanished without releasing only once the lease ran out', async () => {
    const a = candidate('crash', 'replica-a');
    await waitFor(() => a.elector.isLeader(), {
      description: 'replica-a to lead',
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const b = candidate('crash', 'replica-b');
    // b has seen a's renewals for a while.
    await sleep(1000);
    expect(b.elector.isLeader()).toBe(false);

    await a.elector.stop({ release: false });
    const crashedAt = Date.now();
    const last = await readLease('crash');
    expect(last.spec).toMatchObject({ holderIdentity: 'replica-a', leaseTransitions: 0 });
    const lastRenewal = millis(last.spec?.renewTime);

    await waitFor(() => b.terms[0], { description: 'replica-b to lead', timeoutMs: 10_000, intervalMs: 20 });
    const tookOverAt = b.terms[0]?.startedAt ?? Number.NaN;
    // Never before the lease ran out (counted from a's last renewal)...
    expect(tookOverAt - lastRenewal).toBeGreaterThanOrEqual(LEASE_MS);
    // ...and soon after: b notices a's last renewal within a retry period and polls every retry period.
    expect(tookOverAt - crashedAt).toBeLessThanOrEqual(LEASE_MS + 4 * RETRY_MS);
    const taken = await readLease('crash');
    expect(taken.spec).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: 1 });
    expect(millis(taken.spec?.acquireTime)).toBeGreaterThanOrEqual(crashedAt);
  });

  it('steps down as soon as it sees another holder, then competes again once that lease runs out', async () => {
    const a = candidate('intruded', 'replica-a');
    await waitFor(() => a.elector.isLeader(), {
      description: 'replica-a to lead',
      timeoutMs: 10_000,
      intervalMs: 50,
    });

    // Someone else (e.g. a replica that judged the lease expired) writes itself in.
    const current = await readLease('intruded');
    const writtenAt = Date.now();
    await leases.replaceNamespacedLease({
      name: 'intruded',
      namespace: ns.name,
      body: {
        ...current,
        spec: {
          ...current.spec,
          holderIdentity: 'intruder',
          renewTime: new V1MicroTime(writtenAt),
          leaseTransitions: (current.spec?.leaseTransitions ?? 0) + 1,
        },
      },
    });
    await waitFor(() => !a.elector.isLeader(), {
      description: 'replica-a to step down',
      timeoutMs: 5000,
      intervalMs: 20,
    });
    expect(Date.now() - writtenAt).toBeLessThan(RENEW_DEADLINE_MS);
    expect(a.stoppedAt).toHaveLength(1);
    expect(a.terms[0]?.signal.aborted).toBe(true);
    // Either it read the intruder's lease, or (on a loaded machine) its own renewal was late and the
    // fence closed first: both end the term before the intruder's lease could be contested.
    expect(String(a.terms[0]?.signal.reason)).toMatch(/held by intruder|not renewed in time/);

    // The intruder never renews: a takes the lease back after a lease duration, as a new term.
    await waitFor(() => a.terms[1], {
      description: 'replica-a to lead again',
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    expect((a.terms[1]?.startedAt ?? 0) - writtenAt).toBeGreaterThanOrEqual(LEASE_MS);
    expect((await readLease('intruded')).spec).toMatchObject({
      holderIdentity: 'replica-a',
      leaseTransitions: 2,
    });
  });

  it('gives up leadership before the lease can run out when the API server stops answering', async () => {
    const relay = await startRelay(new URL(apiServer));
    try {
      const a = candidate('unreachable', 'replica-a', { kubeConfig: withServer(kc, relay.url) });
      await waitFor(() => a.elector.isLeader(), {
        description: 'replica-a to lead',
        timeoutMs: 10_000,
        intervalMs: 50,
      });
      await sleep(2 * RETRY_MS);

      // Requests now hang (no error): only the elector's own request timeout can end them.
      relay.blackhole();
      const cutAt = Date.now();
      const lastRenewal = millis((await readLease('unreachable')).spec?.renewTime);
      await waitFor(() => a.stoppedAt[0], {
        description: 'replica-a to give up',
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      const lostAt = a.stoppedAt[0] ?? Number.NaN;
      expect(a.elector.isLeader()).toBe(false);
      expect(a.terms[0]?.signal.aborted).toBe(true);
      // A short outage is tolerated (renew deadline 2 s, renewals every 0.5 s)...
      expect(lostAt - cutAt).toBeGreaterThanOrEqual(RENEW_DEADLINE_MS - 2 * RETRY_MS);
      // ...but the leader stops before any candidate may consider the lease expired, and its fence
      // (what every write and provider call of the controller checks) closed by then too.
      expect(lostAt - lastRenewal).toBeLessThan(LEASE_MS);
      const fencedAt = a.terms[0]?.fencedAt ?? Number.NaN;
      expect(fencedAt - lastRenewal).toBeLessThan(LEASE_MS);
      expect(fencedAt - lastRenewal).toBeGreaterThanOrEqual(RENEW_DEADLINE_MS - 2 * RETRY_MS);
    } finally {
      // Closing the relay first fails the hanging requests, so stop() need not wait out their timeout.
      await relay.close();
      await Promise.all(running.splice(0).map((c) => c.elector.stop({ release: false })));
    }
  });
});
