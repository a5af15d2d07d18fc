// Many clients of one provider that allows a single request at a time, deleted at once: keys beyond
// the provider's share are parked and woken as slots free. A woken key whose turn is not taken (its
// client already finalized by an earlier event) must pass the turn on, or the keys still parked
// wait for the resync interval (here 10 minutes). Real kube-apiserver, real registration server.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestNamespace, kubeConfigFromFile, kubectl, kubectlApply, waitFor } from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const COUNT = 24;

describe('OidcClient: deleting many clients of a provider at its share', () => {
  let server: RegistrationServer;
  let ns: Awaited<ReturnType<typeof createTestNamespace>>;
  let op: InProcessOperator | undefined;

  beforeAll(async () => {
    server = await startRegistrationServer({ mode: 'iam' });
    ns = await createTestNamespace(kc, 'share-deletion');
    await kubectlApply(
      binDir,
      kubeconfigPath,
      providerYaml('iam', server.issuer, '  maxConcurrentRequests: 1'),
      ns.name,
    );
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      workers: 6,
      resyncIntervalMs: 600_000,
    });
  });

  afterAll(async () => {
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('deletes every client at the provider and lets every OidcClient go, none waiting for a resync', async () => {
    const r = new OidcReader(kc, ns.name);
    const names = Array.from({ length: COUNT }, (_, i) => `c${String(i).padStart(2, '0')}`);
    const yaml = names
      .map((n) => clientYaml(n, 'iam', '  redirectUris: ["https://app.example.org/cb"]\n  scopes: [openid]'))
      .join('\n---\n');
    await kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
    for (const n of names) await r.waitReady(n, { timeoutMs: 60_000 });
    const registered = server.requests.filter((q) => q.method === 'POST').length;
    expect(registered).toBe(COUNT);

    // Each DELETE takes a while, so deletion events pile up behind the single slot.
    server.faults.add({ method: 'DELETE', delayMs: 150, times: Number.POSITIVE_INFINITY });
    const start = Date.now();
    await kubectl(binDir, kubeconfigPath, ['-n', ns.name, 'delete', 'oidcclients', '--all', '--wait=false']);
    await waitFor(
      async () => {
        const left = await kubectl(binDir, kubeconfigPath, [
          '-n',
          ns.name,
          'get',
          'oidcclients',
          '-o',
          'name',
        ]);
        return left.code === 0 && left.stdout.trim() === '';
      },
      { timeoutMs: 60_000, intervalMs: 250, description: 'every OidcClient gone' },
    );
    const seconds = (Date.now() - start) / 1000;

    const deletes = server.requests.filter((q) => q.method === 'DELETE');
    // One DELETE per client, no more (none twice), and none left registered at the provider.
    expect(deletes).toHaveLength(COUNT);
    expect(await server.store.list()).toEqual([]);
    expect(server.requests.filter((q) => q.method === 'POST')).toHaveLength(COUNT);
    const secrets = await kubectl(binDir, kubeconfigPath, ['-n', ns.name, 'get', 'secrets', '-o', 'name']);
    expect(secrets.stdout.split('\n').filter((l) => l.includes('oidc'))).toEqual([]);
    // Serialised DELETEs of 150 ms each: a few seconds, far below the 10-minute resync.
    expect(seconds).toBeLessThan(45);
  });
});
