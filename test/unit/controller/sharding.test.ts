import { describe, expect, it } from 'vitest';
import {
  clusterShare,
  fnv1a32,
  ownsNamespace,
  ownsNamespaceObject,
  ownsObject,
  shardLeaseName,
  shardOfNamespace,
} from '../../../src/controller/sharding.js';

describe('sharding by namespace', () => {
  it('hashes with FNV-1a 32 (reference values)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('puts every namespace in exactly one shard, stably', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `team-${i}`);
    for (const total of [2, 3, 5]) {
      const counts = new Array<number>(total).fill(0);
      for (const ns of names) {
        const owners = Array.from({ length: total }, (_, index) => index).filter((index) =>
          ownsNamespace({ index, total }, ns),
        );
        expect(owners).toEqual([shardOfNamespace(ns, total)]);
        counts[owners[0] as number] = (counts[owners[0] as number] ?? 0) + 1;
      }
      // Well spread: each shard within ±20 % of an even split.
      for (const c of counts) expect(Math.abs(c - 1000 / total)).toBeLessThan(200 / total);
    }
    expect(shardOfNamespace('payments', 4)).toBe(shardOfNamespace('payments', 4));
  });

  it('one shard owns everything and filters nothing', () => {
    expect(ownsNamespace({ index: 0, total: 1 }, 'x')).toBe(true);
    expect(ownsObject({ index: 0, total: 1 })).toBeUndefined();
    expect(ownsNamespaceObject({ index: 0, total: 1 })).toBeUndefined();
  });

  it('filters namespaced objects by their namespace, Namespaces by their name', () => {
    const shard = { index: shardOfNamespace('a', 2), total: 2 };
    const other = { index: 1 - shard.index, total: 2 };
    const obj = { metadata: { namespace: 'a', name: 'x' } };
    expect(ownsObject(shard)?.(obj)).toBe(true);
    expect(ownsObject(other)?.(obj)).toBe(false);
    expect(ownsNamespaceObject(shard)?.({ metadata: { name: 'a' } })).toBe(true);
    expect(ownsNamespaceObject(other)?.({ metadata: { name: 'a' } })).toBe(false);
  });

  it('splits a ClusterOidcProvider request limit, names Leases per shard', () => {
    expect(clusterShare(16, { index: 0, total: 1 })).toBe(16);
    expect(clusterShare(16, { index: 0, total: 3 })).toBe(6);
    expect(clusterShare(1, { index: 0, total: 3 })).toBe(1);
    expect(shardLeaseName('op', { index: 0, total: 1 })).toBe('op');
    expect(shardLeaseName('op', { index: 2, total: 3 })).toBe('op-shard-2');
  });
});
