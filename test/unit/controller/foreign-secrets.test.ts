import { describe, expect, it } from 'vitest';
import { ForeignSecrets } from '../../../src/controller/foreign-secrets.js';
import type { KubeRest } from '../../../src/kube/rest.js';

/** Serves metadata-only lists of `names`, two per page, counting the requests. */
function fakeRest(names: () => string[]) {
  const calls: { path: string; query: Record<string, unknown>; accept?: string }[] = [];
  const rest = {
    getAs: async (path: string, query: Record<string, unknown>, accept?: string) => {
      calls.push({ path, query, accept });
      await new Promise((r) => setTimeout(r, 5));
      const all = names();
      const from = Number(query.continue ?? 0);
      const page = all.slice(from, from + 2);
      const next = from + 2 < all.length ? String(from + 2) : undefined;
      return { metadata: { continue: next }, items: page.map((name) => ({ metadata: { name } })) };
    },
  } as unknown as KubeRest;
  return { rest, calls };
}

describe('ForeignSecrets', () => {
  it('lists the names of Secrets we do not manage, metadata only, all pages, once for a burst', async () => {
    const { rest, calls } = fakeRest(() => ['a', 'b', 'taken']);
    const foreign = new ForeignSecrets(rest);
    const answers = await Promise.all(['taken', 'x', 'a', 'y'].map((n) => foreign.has('ns', n)));
    expect(answers).toEqual([true, false, true, false]);
    expect(calls).toHaveLength(2); // one list, two pages
    expect(calls[0]?.path).toBe('/api/v1/namespaces/ns/secrets');
    expect(calls[0]?.query.labelSelector).toBe('app.kubernetes.io/managed-by!=oidc-client-operator');
    expect(calls[0]?.accept).toMatch(/as=PartialObjectMetadataList/);
  });

  it('lists again for a client created after the last list', async () => {
    let names = ['a'];
    const { rest, calls } = fakeRest(() => names);
    const foreign = new ForeignSecrets(rest);
    expect(await foreign.has('ns', 'late', Date.now() - 10_000)).toBe(false);
    names = ['a', 'late'];
    // Created (with its Secret made before it) after that list: not answered from it.
    expect(await foreign.has('ns', 'late', Date.now() + 1)).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it('keeps no failed list', async () => {
    let fail = true;
    const rest = {
      getAs: async () => {
        if (fail) throw new Error('down');
        return { items: [{ metadata: { name: 'x' } }] };
      },
    } as unknown as KubeRest;
    const foreign = new ForeignSecrets(rest);
    await expect(foreign.has('ns', 'x')).rejects.toThrow('down');
    fail = false;
    expect(await foreign.has('ns', 'x')).toBe(true);
  });
});
