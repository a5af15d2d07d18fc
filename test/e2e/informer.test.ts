// The informer on the real apiserver: initial list, events across many short watch renewals, and
// readiness reporting. Renewal is what protects against silently stalled long-lived watches.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Informer } from '../../src/kube/informer.js';
import { KubeRest } from '../../src/kube/rest.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestNamespace, kubeConfigFromFile, type TestNamespace, waitFor } from '../harness/kube.js';

const kc = kubeConfigFromFile(inject('kubeconfigPath'));

describe('Informer', () => {
  let ns: TestNamespace;
  let informer: Informer<V1ConfigMap>;
  const rest = new KubeRest(kc);
  const seen: string[] = [];
  let listRequests = 0;

  beforeAll(async () => {
    ns = await createTestNamespace(kc, 'informer');
    await rest.create(`/api/v1/namespaces/${ns.name}/configmaps`, {
      metadata: { name: 'before' },
      data: { v: '0' },
    });
    rest.onRequest((e) => {
      if (e.method === 'GET' && e.path.endsWith('/configmaps')) listRequests++;
    });
    informer = new Informer<V1ConfigMap>({
      rest,
      path: `/api/v1/namespaces/${ns.name}/configmaps`,
      log: createLogger({ level: 'silent' }),
      name: 'configmaps',
      // Very short server-side timeouts: the watch is renewed every second or two.
      watchTimeoutSeconds: [1, 2],
    });
    informer.on({
      onAdd: (c) => seen.push(`add:${c.metadata?.name}`),
      onUpdate: (c) => seen.push(`update:${c.metadata?.name}:${c.data?.v}`),
      onDelete: (c) => seen.push(`delete:${c.metadata?.name}`),
    });
    await informer.start();
  });

  afterAll(async () => {
    informer?.stop();
    await ns?.cleanup();
  });

  it('lists first, then follows changes across watch renewals without losing any', async () => {
    expect(informer.hasSynced).toBe(true);
    expect(informer.get(`${ns.name}/before`)?.data?.v).toBe('0');
    expect(seen).toContain('add:before');
    const path = `/api/v1/namespaces/${ns.name}/configmaps`;
    for (let i = 1; i <= 4; i++) {
      // Each change lands after at least one renewal of the 1-2 s watch.
      await new Promise((r) => setTimeout(r, 1_200));
      await rest.patch(`${path}/before`, 'merge', { data: { v: String(i) } });
    }
    await rest.create(path, { metadata: { name: 'late' } });
    await rest.delete(`${path}/late`);
    await waitFor(() => seen.includes('delete:late'), {
      description: 'delete event for late',
      timeoutMs: 10_000,
    });
    expect(seen.filter((s) => s.startsWith('update:before'))).toEqual(
      [1, 2, 3, 4].map((i) => `update:before:${i}`),
    );
    expect(informer.get(`${ns.name}/before`)?.data?.v).toBe('4');
    expect(informer.get(`${ns.name}/late`)).toBeUndefined();
    // The renewals really happened: one list, several watches.
    expect(listRequests).toBe(1);
    expect(informer.watchesStarted).toBeGreaterThanOrEqual(3);
    expect(informer.healthy(5_000).ok).toBe(true);
  });

  it('caches objects without managedFields, and a PUT of the trimmed copy keeps them on the server', async () => {
    const path = `/api/v1/namespaces/${ns.name}/configmaps/before`;
    const cached = informer.get(`${ns.name}/before`);
    expect(cached?.metadata?.name).toBe('before');
    expect(cached?.metadata?.managedFields).toBeUndefined();
    const server = await rest.get<V1ConfigMap>(path);
    expect(server.metadata?.managedFields?.length).toBeGreaterThan(0);
    // The read-modify-write the reconciler does with cached Secrets.
    await rest.replace(path, { ...cached, data: { v: 'put' } });
    const after = await rest.get<V1ConfigMap>(path);
    expect(after.data?.v).toBe('put');
    expect(after.metadata?.managedFields?.length).toBeGreaterThan(0);
  });

  it('keeps a secondary index in step with adds, changes, deletes and a relist', async () => {
    const path = `/api/v1/namespaces/${ns.name}/configmaps`;
    const byTeam = (name: string) =>
      new Informer<V1ConfigMap>({
        rest,
        path,
        labelSelector: 'indexed=yes',
        log: createLogger({ level: 'silent' }),
        name,
        indexes: { team: (c) => (c.metadata?.labels?.team ? [c.metadata.labels.team] : []) },
      });
    const indexed = byTeam('configmaps-indexed');
    const names = (team: string) =>
      indexed
        .byIndex('team', team)
        .map((c) => c.metadata?.name)
        .sort();
    const labels = (team: string) => ({ indexed: 'yes', team });
    await rest.create(path, { metadata: { name: 'a1', labels: labels('a') } });
    await indexed.start();
    try {
      expect(names('a')).toEqual(['a1']);
      await rest.create(path, { metadata: { name: 'a2', labels: labels('a') } });
      await rest.create(path, { metadata: { name: 'b1', labels: labels('b') } });
      await waitFor(() => names('a').length === 2 && names('b').length === 1, {
        description: 'a2 and b1 indexed',
        timeoutMs: 10_000,
      });
      // A label change moves the object from one value to the other; a delete removes it.
      await rest.patch(`${path}/a2`, 'merge', { metadata: { labels: { team: 'b' } } });
      await rest.delete(`${path}/a1`);
      await waitFor(() => names('a').length === 0 && names('b').length === 2, {
        description: 'a2 moved to b, a1 gone',
        timeoutMs: 10_000,
      });
      expect(names('b')).toEqual(['a2', 'b1']);
      expect(names('nobody')).toEqual([]);
      expect(() => indexed.byIndex('missing', 'a')).toThrow(/no index missing/);
    } finally {
      indexed.stop();
    }
    // A fresh informer lists what is there now: the same index, built from the list alone.
    const relisted = byTeam('configmaps-relisted');
    await relisted.start();
    try {
      expect(
        relisted
          .byIndex('team', 'b')
          .map((c) => c.metadata?.name)
          .sort(),
      ).toEqual(['a2', 'b1']);
      expect(relisted.byIndex('team', 'a')).toEqual([]);
    } finally {
      relisted.stop();
    }
  });
});
