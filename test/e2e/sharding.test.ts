// Scale-out: two shards × two replicas of the compiled operator (`--shard i --total-shards 2`, a
// Lease per shard), watching ALL namespaces as the chart's default install does. That needs a
// control plane of its own: on the shared one these operators would reconcile other test files'
// clients. Checks that every client is reconciled by exactly one shard (the provider got one POST
// each, and each shard's log names only the namespaces that hash to it), that each shard caches only
// its part, and that SIGKILL of one shard's leader pauses only that shard's clients until its
// standby takes over.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOfNamespace } from '../../src/controller/sharding.js';
import { buildOperator } from '../harness/build.js';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.js';
import { kubeConfigFromFile, kubectlApply, waitFor } from '../harness/kube.js';
import { installProjectCrds } from '../harness/local-stack/crds.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import {
  type LogLine,
  metricSum,
  type OperatorProcess,
  startOperatorProcess,
  stopAll,
} from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const SHARDS = 2;
const LEASE = 'oidc-sharded';
const LEASE_SECONDS = 6;
/** Two namespaces per shard, from a fixed list (FNV-1a is stable, so this is deterministic). */
const NAMESPACES = (() => {
  const picked: string[][] = Array.from({ length: SHARDS }, () => []);
  for (const c of 'abcdefghijklmnopqrstuvwxyz') {
    const ns = `team-${c}`;
    const bucket = picked[shardOfNamespace(ns, SHARDS)] as string[];
    if (bucket.length < 2) bucket.push(ns);
  }
  return picked.flat();
})();
const shardOf = (ns: string) => shardOfNamespace(ns, SHARDS);

const spec = (name: string) => `  clientName: ${name}\n  redirectUris: [https://${name}.example.org/cb]\n`;
const registeredBy = (p: OperatorProcess) =>
  p
    .logs()
    .filter((l) => l.msg === 'registered client')
    .map((l) => String(l.oidcclient));
const isLeaderLine = (l: LogLine) => l.msg === 'became leader';

describe('two shards × two replicas', () => {
  let cp: ControlPlane;
  let server: RegistrationServer;
  const procs: OperatorProcess[] = [];
  /** procs by shard: [replica a, replica b]. */
  const byShard: OperatorProcess[][] = [[], []];
  const posts = () =>
    server.requests.filter((q) => q.method === 'POST' && q.path.endsWith('/client-registration')).length;
  const apply = (yaml: string, ns: string) => kubectlApply(cp.binDir, cp.kubeconfigPath, yaml, ns);
  const reader = (ns: string) => new OidcReader(kubeConfigFromFile(cp.kubeconfigPath), ns);
  const holder = async (shard: number) =>
    (
      await kubeConfigFromFile(cp.kubeconfigPath)
        .makeApiClient(CoordinationV1Api)
        .readNamespacedLease({ namespace: 'default', name: `${LEASE}-shard-${shard}` })
    ).spec?.holderIdentity ?? '';
  const leaderOf = async (shard: number) => {
    const id = await holder(shard);
    return byShard[shard]?.find((p) => p.name === id) as OperatorProcess;
  };

  const start = async (shard: number, replica: string) => {
    const name = `s${shard}-${replica}`;
    const p = await startOperatorProcess({
      name,
      kubeconfigPath: cp.kubeconfigPath,
      compiled: true,
      env: { POD_NAME: name },
      args: [
        '--leader-elect',
        '--leader-election-namespace=default',
        `--leader-election-id=${LEASE}`,
        `--lease-duration=${LEASE_SECONDS}s`,
        `--shard=${shard}`,
        `--total-shards=${SHARDS}`,
        '--resync-interval=10m',
      ],
    });
    procs.push(p);
    byShard[shard]?.push(p);
    return p;
  };

  /** Applies `count` clients named <prefix>-<i> in every namespace; returns their keys. */
  const applyClients = async (prefix: string, count: number): Promise<string[]> => {
    const keys: string[] = [];
    await Promise.all(
      NAMESPACES.map((ns) => {
        const names = Array.from({ length: count }, (_, i) => `${ns}-${prefix}-${i}`);
        keys.push(...names.map((n) => `${ns}/${n}`));
        return apply(names.map((n) => clientYaml(n, 'iam', spec(n))).join('---\n'), ns);
      }),
    );
    return keys.sort();
  };

  const readyAll = (keys: string[], timeoutMs: number) =>
    Promise.all(
      keys.map((k) => {
        const [ns, name] = k.split('/') as [string, string];
        return reader(ns).waitReady(name, { timeoutMs });
      }),
    );

  beforeAll(async () => {
    const built = buildOperator();
    [cp, server] = await Promise.all([
      startControlPlane({ controllerManager: false }),
      startRegistrationServer({ mode: 'iam' }),
    ]);
    await installProjectCrds(cp.kubeconfigPath, cp.binDir);
    for (const ns of NAMESPACES) {
      const created = await cp.kubectl(['create', 'namespace', ns]);
      expect(created.code, created.stderr).toBe(0);
      await apply(providerYaml('iam', server.issuer), ns);
    }
    await built;
    // Both replicas of both shards; each shard has its own Lease, so one leader each.
    await Promise.all([start(0, 'a'), start(1, 'a')]);
    await Promise.all([start(0, 'b'), start(1, 'b')]);
    for (const shard of [0, 1]) {
      await waitFor(async () => (await holder(shard).catch(() => '')) !== '', {
        description: `a leader for shard ${shard}`,
        timeoutMs: 20_000,
      });
    }
  });

  afterAll(async () => {
    await stopAll(procs);
    await server?.close();
    await cp?.stop();
  });

  it('split the clients: each reconciled by exactly one shard, no gap, no overlap', async () => {
    expect(new Set(NAMESPACES.map(shardOf))).toEqual(new Set([0, 1]));
    const keys = await applyClients('c', 5);
    await readyAll(keys, 30_000);
    expect(posts()).toBe(keys.length);
    expect(await server.store.list()).toHaveLength(keys.length);

    const done = [0, 1].map((s) => (byShard[s] ?? []).flatMap(registeredBy).sort());
    console.info(
      `[sharding] ${keys.length} clients in ${NAMESPACES.length} namespaces: shard 0 registered ${done[0]?.length}, shard 1 ${done[1]?.length}; namespaces by shard ${JSON.stringify(NAMESPACES.map((ns) => `${ns}:${shardOf(ns)}`))}`,
    );
    // No overlap, no gap, and each by the shard its namespace hashes to.
    expect([...(done[0] ?? []), ...(done[1] ?? [])].sort()).toEqual(keys);
    for (const s of [0, 1])
      expect(done[s]?.every((k) => shardOf(k.split('/')[0] as string) === s)).toBe(true);
    expect(done[0]?.length).toBeGreaterThan(0);
    expect(done[1]?.length).toBeGreaterThan(0);

    // Only the leaders reconciled; every replica caches only its shard's clients (and namespaces).
    for (const s of [0, 1]) {
      const leader = await leaderOf(s);
      expect(leader, `leader of shard ${s}`).toBeDefined();
      for (const p of byShard[s] ?? []) {
        const m = await p.metrics();
        expect(metricSum(m, 'oidc_operator_shard_info', { shard: String(s), total_shards: '2' })).toBe(1);
        expect(metricSum(m, 'oidc_operator_cached_objects', { resource: 'oidcclients' })).toBe(
          done[s]?.length,
        );
        expect(metricSum(m, 'oidc_operator_cached_objects', { resource: 'secrets' })).toBe(
          2 * (done[s]?.length ?? 0),
        );
        // The other shard's clients arrived and were dropped.
        expect(
          metricSum(m, 'oidc_operator_shard_dropped_objects_total', { resource: 'oidcclients' }),
        ).toBeGreaterThanOrEqual(done[1 - s]?.length ?? 0);
        const reconciles = metricSum(m, 'oidc_operator_reconcile_total');
        if (p === leader) expect(reconciles).toBeGreaterThan(0);
        else expect(reconciles).toBe(0);
      }
    }
  });

  it("SIGKILL of one shard's leader pauses only that shard; its standby resumes", async () => {
    const victim = await leaderOf(0);
    const standby = byShard[0]?.find((p) => p !== victim) as OperatorProcess;
    const before = posts();
    // The standby is stopped first, so shard 0 has no running replica at all until it is resumed:
    // what this shows (shard 1 goes on while shard 0 waits) does not depend on how fast a loaded
    // machine lets shard 1 work compared with the lease running out.
    standby.kill('SIGSTOP');
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.exited;
    const keys = await applyClients('d', 3);
    const mine = (s: number) => keys.filter((k) => shardOf(k.split('/')[0] as string) === s);

    // Shard 1 goes on at once, while shard 0 has no leader.
    await readyAll(mine(1), 30_000);
    const shard1ReadyAt = Date.now();
    const waiting = await Promise.all(
      mine(0).map(async (k) => {
        const [ns, name] = k.split('/') as [string, string];
        const r = reader(ns);
        return r.condition(await r.client(name), 'Ready')?.status === 'True';
      }),
    );
    const resumedAt = Date.now();
    standby.kill('SIGCONT');
    const took = await standby.waitForLog(isLeaderLine, {
      description: 'the standby of shard 0 takes over',
      timeoutMs: (LEASE_SECONDS + 10) * 1000,
    });
    const tookAt = Date.parse(String(took.time));
    await readyAll(mine(0), (LEASE_SECONDS + 20) * 1000);
    const shard0ReadyAt = Date.now();
    console.info(
      `[sharding] SIGKILL of shard 0's leader (its standby stopped): shard 1's ${mine(1).length} new clients Ready after ${shard1ReadyAt - killedAt} ms; shard 0's standby, resumed ${resumedAt - killedAt} ms after the kill, leader after ${tookAt - killedAt} ms, its ${mine(0).length} new clients Ready after ${shard0ReadyAt - killedAt} ms`,
    );
    expect(shard1ReadyAt).toBeLessThan(tookAt);
    expect(waiting.filter(Boolean)).toEqual([]);
    expect(registeredBy(standby).sort()).toEqual(mine(0));
    expect(await holder(0)).toBe(standby.name);
    expect(posts() - before).toBe(keys.length);
    const ids = (await server.store.list()).map((c) => c.clientId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
