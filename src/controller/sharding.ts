// Scale-out beyond one replica: the OidcClients are split across shards the way Argo CD's
// application controller splits clusters and kube-state-metrics splits objects. Each shard is its
// own leader-elected Deployment (`--shard i --total-shards n`, its own Lease) and reconciles, caches
// and watches-to-memory only the namespaces that hash to it.
//
// The key is the NAMESPACE, hashed with FNV-1a (32 bit) modulo the shard count:
// - everything one client needs lives in its namespace (the OidcClient, both Secrets, a namespaced
//   OidcProvider and its CA / initial access token Secrets), so one shard sees all of it and no
//   event has to be routed between shards;
// - a namespace's clients usually share a provider, so the fairness slots and the per-provider
//   request limit stay in one process;
// - it is stable: the same name always lands on the same shard, whatever else exists (no
//   coordination, no assignment table), and changes only when the shard count changes.
// The price: one namespace is never split, so a namespace with most of the clients makes its shard
// the busiest. The API server cannot filter by a hash, so a cluster-wide shard still receives every
// event and drops those of other shards on receipt, before they reach its caches.
import type { KubernetesObject } from '@kubernetes/client-node';

export interface Shard {
  /** 0-based. */
  index: number;
  total: number;
}

export const SINGLE_SHARD: Shard = { index: 0, total: 1 };

/** FNV-1a, 32 bit: tiny, fast and well spread for short strings such as namespace names. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The shard that owns a namespace. */
export function shardOfNamespace(namespace: string, total: number): number {
  return total <= 1 ? 0 : fnv1a32(namespace) % total;
}

export function ownsNamespace(shard: Shard, namespace: string): boolean {
  return shard.total <= 1 || shardOfNamespace(namespace, shard.total) === shard.index;
}

/** For informers of namespaced objects: keep only this shard's. */
export function ownsObject(shard: Shard): ((obj: KubernetesObject) => boolean) | undefined {
  if (shard.total <= 1) return undefined;
  return (obj) => ownsNamespace(shard, obj.metadata?.namespace ?? '');
}

/** For the Namespace informer: a shard needs the labels of its own namespaces only. */
export function ownsNamespaceObject(shard: Shard): ((obj: KubernetesObject) => boolean) | undefined {
  if (shard.total <= 1) return undefined;
  return (obj) => ownsNamespace(shard, obj.metadata?.name ?? '');
}

/**
 * A ClusterOidcProvider serves clients of every shard: each shard takes its part of the provider's
 * maxConcurrentRequests (rounded up), so n shards together do not send n times the limit.
 */
export function clusterShare(maxConcurrentRequests: number, shard: Shard): number {
  return Math.max(1, Math.ceil(maxConcurrentRequests / Math.max(1, shard.total)));
}

/** The Lease of a shard: the plain name when there is one shard (so upgrades keep their Lease). */
export function shardLeaseName(base: string, shard: Shard): string {
  return shard.total <= 1 ? base : `${base}-shard-${shard.index}`;
}
