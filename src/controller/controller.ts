// Wires informers to the work queue and the OidcClient reconciler: which events wake which keys,
// how many workers run, and how the loop reports to metrics and health checks.
import type { KubernetesObject, V1Namespace, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_GROUP_VERSION } from '../api/schema.js';
import type { ClusterOidcProvider, Condition, OidcClient, OidcProvider } from '../api/types.generated.js';
import { EventRecorder } from '../kube/events.js';
import { type Fence, FenceSlot, isFenced } from '../kube/fence.js';
import {
  type CacheReader,
  errorMessage,
  type IndexedCacheReader,
  Informer,
  stripApplyBookkeeping,
} from '../kube/informer.js';
import { OwnWrites, objectId } from '../kube/own-writes.js';
import type { KubeRest } from '../kube/rest.js';
import { runWorkers, WorkQueue } from '../kube/workqueue.js';
import type { ClientHealthRow, OperatorMetrics, ProviderHealthRow } from '../observability/metrics.js';
import { ClientAccess } from './access.js';
import { isPaused } from './client-control.js';
import { findCondition, Reason } from './conditions.js';
import {
  clientKey,
  LABEL_MANAGED_BY,
  LABEL_ROLE,
  MANAGED_BY,
  ownerClientName,
  SECRETS_BY_CLIENT,
  secretClientIndex,
} from './names.js';
import { OidcClientReconciler } from './oidcclient-reconciler.js';
import { ReconcileError } from './outcome.js';
import {
  DEFAULT_PROVIDER_CHECK_INTERVAL_MS,
  ProviderHealthController,
} from './provider-health-controller.js';
import { ProviderSlots } from './provider-slots.js';
import {
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  ProviderRegistry,
  parseProviderKey,
  providerKey,
  providerKeyOf,
} from './providers.js';
import {
  clusterShare,
  ownsNamespace,
  ownsNamespaceObject,
  ownsObject,
  type Shard,
  SINGLE_SHARD,
} from './sharding.js';

export interface ControllerOptions {
  rest: KubeRest;
  log: Logger;
  metrics?: OperatorMetrics;
  /** Namespaces to watch; empty means all. */
  namespaces: string[];
  workers: number;
  resyncIntervalMs: number;
  /** The shortest spec.refreshInterval honoured (default 1 min). */
  minRefreshIntervalMs?: number;
  deletionTimeoutMs: number;
  /** Provider HTTP tuning (tests shorten these). */
  providerRequestTimeoutMs?: number;
  providerRetries?: number;
  /** How often a provider's CA / initial access token Secrets are re-read at most (default 30 s). */
  providerSecretRecheckMs?: number;
  watchTimeoutSeconds?: [number, number];
  /** This process's part of the OidcClients (by namespace); default: all of them. */
  shard?: Shard;
  /** Provider health checks: time between two checks of one provider (default 5 min; 0 = off). */
  providerCheckIntervalMs?: number;
  /** Which ClusterOidcProviders' status this process writes (default: all on shard 0, else none). */
  checkClusterProviders?: boolean | ((name: string) => boolean);
  /** Pause before a failed health check request's one retry (default 1 s; tests shorten it). */
  providerCheckRetryDelayMs?: number;
}

const CONTROLLER = 'oidcclient';

export class OidcClientController {
  readonly queue: WorkQueue;
  /** States of Secrets and OidcClients we wrote ourselves: their events wake nothing. */
  readonly ownWrites = new OwnWrites();
  private readonly clientInformers: Informer<OidcClient>[] = [];
  private readonly secretInformers: Informer<V1Secret>[] = [];
  private readonly providerInformers: Informer<OidcProvider>[] = [];
  private readonly clusterProviders: Informer<ClusterOidcProvider>;
  /** Namespace labels for ClusterOidcProvider spec.conditions; a label change wakes its clients. */
  private readonly namespaces: Informer<V1Namespace>;
  private readonly registry: ProviderRegistry;
  private readonly providers: CacheReader<OidcProvider>;
  private readonly reconciler: OidcClientReconciler;
  /** The leadership term's fence, set by start(); every write and provider call of a reconcile reads it. */
  private readonly fence = new FenceSlot();
  /** Keeps one slow or silent provider from holding more than its share of the workers. */
  private readonly slots: ProviderSlots;
  private readonly clients: IndexedCacheReader<OidcClient>;
  private readonly shard: Shard;
  private workers?: Promise<void>;
  /** Provider status: undefined when health checks are off. */
  readonly providerHealth?: ProviderHealthController;

  constructor(private readonly o: ControllerOptions) {
    const m = o.metrics;
    this.queue = new WorkQueue({
      metrics: m && {
        depth: (n) => m.queueDepth.set({ controller: CONTROLLER }, n),
        waited: (s) => m.queueWait.observe({ controller: CONTROLLER }, s),
        retried: () => m.queueRetries.inc({ controller: CONTROLLER }),
      },
    });
    o.rest.trackWrites(this.ownWrites, ['secrets', 'oidcclients']);
    const shard = o.shard ?? SINGLE_SHARD;
    this.shard = shard;
    // Listed namespaces: a shard watches only its own. All namespaces: every shard watches all and
    // drops other shards' objects on receipt (the API server cannot select by a hash).
    const scopes: (string | undefined)[] =
      o.namespaces.length > 0 ? o.namespaces.filter((ns) => ownsNamespace(shard, ns)) : [undefined];
    if (scopes.length === 0)
      o.log.warn({ namespaces: o.namespaces, shard }, 'no listed namespace belongs to this shard');
    const group = `/apis/${API_GROUP_VERSION}`;
    const mk = <T extends KubernetesObject>(
      name: string,
      path: string,
      opts: {
        labelSelector?: string;
        keep?: (obj: KubernetesObject) => boolean;
        transform?: (obj: T) => T;
        indexes?: Record<string, (obj: T) => readonly string[]>;
      } = {},
    ) => {
      const informer = new Informer<T>({
        rest: o.rest,
        path,
        labelSelector: opts.labelSelector,
        keep: opts.keep,
        transform: opts.transform,
        indexes: opts.indexes,
        log: o.log,
        name,
        watchTimeoutSeconds: o.watchTimeoutSeconds,
        onWatchRestart: () => m?.watchRestarts.inc({ resource: name }),
      });
      named.push({ resource: name, informer: informer as unknown as Informer<KubernetesObject> });
      return informer;
    };
    const named: { resource: string; informer: Informer<KubernetesObject> }[] = [];
    for (const ns of scopes) {
      const prefix = ns ? `/namespaces/${ns}` : '';
      const keep = ns ? undefined : ownsObject(shard);
      // OidcClients and providers are only ever patched, so kubectl's last-applied copy can go.
      this.clientInformers.push(
        mk<OidcClient>('oidcclients', `${group}${prefix}/oidcclients`, {
          keep,
          transform: stripApplyBookkeeping,
          indexes: { [CLIENTS_BY_PROVIDER]: (c) => [providerKeyOf(c).key] },
        }),
      );
      this.providerInformers.push(
        mk<OidcProvider>('oidcproviders', `${group}${prefix}/oidcproviders`, {
          keep,
          transform: stripApplyBookkeeping,
        }),
      );
      this.secretInformers.push(
        mk<V1Secret>('secrets', `/api/v1${prefix}/secrets`, {
          labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
          keep,
          indexes: { [SECRETS_BY_CLIENT]: secretClientIndex },
        }),
      );
    }
    this.clusterProviders = mk<ClusterOidcProvider>('clusteroidcproviders', `${group}/clusteroidcproviders`);
    this.namespaces = mk<V1Namespace>('namespaces', '/api/v1/namespaces', {
      keep: ownsNamespaceObject(shard),
    });
    if (m) {
      m.shard.set({ shard: String(shard.index), total_shards: String(shard.total) }, 1);
      m.cacheSource = () => {
        const rows = new Map<string, { resource: string; cached: number; dropped: number }>();
        for (const { resource, informer } of named) {
          const row = rows.get(resource) ?? { resource, cached: 0, dropped: 0 };
          row.cached += informer.list().length;
          row.dropped += informer.dropped;
          rows.set(resource, row);
        }
        return [...rows.values()];
      };
      m.clientSource = () => this.clientInformers.flatMap((i) => i.list().map(clientHealthRow));
      m.providerSource = () => {
        const health = this.providerHealth;
        if (!health) return [];
        const all: (OidcProvider | ClusterOidcProvider)[] = [
          ...this.providerInformers.flatMap((i) => i.list()),
          ...this.clusterProviders.list(),
        ];
        return all.filter((p) => health.owns(p)).map(providerHealthRow);
      };
    }

    const clients = multiInformer(this.clientInformers);
    this.clients = clients;
    const secrets = multiInformer(this.secretInformers);
    const providers = multiInformer(this.providerInformers);
    this.providers = providers;
    this.slots = new ProviderSlots({
      workers: o.workers,
      wake: (key) => this.queue.add(key),
      capOf: (key) => {
        const ref = parseProviderKey(key);
        if (ref.kind === 'ClusterOidcProvider') {
          const p = this.clusterProviders.get(ref.name);
          return clusterShare(p?.spec.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS, shard);
        }
        return providers.get(key)?.spec.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
      },
    });
    // Informers read through the plain client; everything a reconcile does goes through the fence.
    const rest = o.rest.fenced(this.fence);
    this.registry = new ProviderRegistry({
      rest,
      fence: this.fence,
      providers,
      clusterProviders: this.clusterProviders,
      log: o.log,
      metrics: m && {
        observe: (provider, e) => m.observeProviderRequest({ provider, ...e }),
        release: (provider) => m.releaseProvider(provider),
      },
      requestTimeoutMs: o.providerRequestTimeoutMs,
      retries: o.providerRetries,
      secretRecheckMs: o.providerSecretRecheckMs,
      clusterShare: (max) => clusterShare(max, shard),
      onTrouble: (p) => this.providerHealth?.nudge(p),
    });
    const events = new EventRecorder(rest, 'oidc-client-operator', o.log);
    const interval = o.providerCheckIntervalMs ?? DEFAULT_PROVIDER_CHECK_INTERVAL_MS;
    if (interval > 0) {
      this.providerHealth = new ProviderHealthController({
        rest,
        log: o.log.child({ controller: 'provider-health' }),
        metrics: m,
        events,
        providers,
        clusterProviders: this.clusterProviders,
        checkClusterProviders: o.checkClusterProviders ?? shard.index === 0,
        intervalMs: interval,
        requestTimeoutMs: o.providerRequestTimeoutMs,
        retryDelayMs: o.providerCheckRetryDelayMs,
      });
    }
    this.reconciler = new OidcClientReconciler({
      rest,
      clients,
      secrets,
      providers: this.registry,
      access: new ClientAccess({
        providers,
        clusterProviders: this.clusterProviders,
        namespaces: this.namespaces,
        events,
      }),
      events,
      log: o.log,
      resyncIntervalMs: o.resyncIntervalMs,
      minRefreshIntervalMs: o.minRefreshIntervalMs,
      deletionTimeoutMs: o.deletionTimeoutMs,
    });
    this.wireEvents();
  }

  private informersSynced?: Promise<void>;

  /** Fills the caches. A standby replica does this too, so that a takeover need not list first. */
  startInformers(): Promise<void> {
    this.informersSynced ??= Promise.all(this.allInformers().map((i) => i.start())).then(() => {
      this.o.log.info(
        {
          namespaces: this.o.namespaces.length ? this.o.namespaces : 'all',
          ...(this.shard.total > 1 ? { shard: this.shard.index, totalShards: this.shard.total } : {}),
          oidcclients: this.clients.list().length,
        },
        'caches synced',
      );
    });
    return this.informersSynced;
  }

  /**
   * Starts the informers (if not yet) and, once their caches are synced, the workers. With a
   * leadership `fence`, the workers stop taking keys once it closes, and every write and provider
   * call of a reconcile is refused from then on (a controller leads one term; the process exits
   * after losing the Lease).
   */
  async start(fence?: Fence): Promise<void> {
    if (fence) {
      this.fence.set(fence);
      const closed = fence.signal;
      if (closed.aborted) this.queue.shutDown();
      else closed.addEventListener('abort', () => this.queue.shutDown(), { once: true });
    }
    await this.startInformers();
    if (this.workers || fence?.signal.aborted) return;
    this.o.log.info({ workers: this.o.workers }, 'starting workers');
    this.providerHealth?.start(fence?.signal);
    this.workers = runWorkers(
      this.queue,
      this.o.workers,
      (key) => this.reconcileFair(key),
      (key, error) => {
        if (isFenced(error)) return undefined;
        // The status tells users; the log tells operators (error messages carry no secrets).
        this.o.log.warn(
          { oidcclient: key, err: errorMessage(error) },
          'reconcile failed; retrying with backoff',
        );
        return error instanceof ReconcileError
          ? { afterMs: error.retryAfterMs, beforeMs: error.retryBeforeMs }
          : undefined;
      },
    );
  }

  /**
   * Graceful stop: no new keys, in-flight reconciles finish (or fail at once when fenced), then
   * credentials the provider returned but not yet stored get up to drainMs to be written (a new
   * registration that still is not is deleted at the provider).
   */
  async stop(drainMs = 15_000): Promise<void> {
    clearTimeout(this.gaugeTimer);
    this.queue.shutDown();
    for (const i of this.allInformers()) i.stop();
    await Promise.all([this.workers, this.providerHealth?.stop()]);
    // Logs each registration undone and each token lost itself.
    await this.reconciler.drainWrites(drainMs);
    await this.registry.close();
  }

  /** For /readyz: every watch is up, or was within maxStaleMs. */
  health(maxStaleMs: number): { ok: boolean; message?: string } {
    const bad = this.allInformers()
      .map((i) => i.healthy(maxStaleMs))
      .filter((h) => !h.ok);
    return bad.length === 0 ? { ok: true } : { ok: false, message: bad.map((b) => b.message).join('; ') };
  }

  private allInformers(): Informer<KubernetesObject>[] {
    return [
      ...this.clientInformers,
      ...this.secretInformers,
      ...this.providerInformers,
      this.clusterProviders,
      this.namespaces,
    ] as Informer<KubernetesObject>[];
  }

  /** Reconciles `key` in a slot of its provider; a key whose provider is at its share is parked. */
  private async reconcileFair(key: string) {
    const cr = this.clients.get(key);
    // A paused client calls no provider: it takes no slot (nor counts as a success of its provider).
    if (!cr || isPaused(cr)) {
      this.slots.skip(key);
      return this.reconcileTimed(key);
    }
    const slot = this.slots.acquire(providerKeyOf(cr).key, key);
    if (!slot) {
      this.o.log.debug({ oidcclient: key }, 'provider at its share of workers; parked');
      // Not a success: a backoff this key is in keeps growing when it next fails.
      return { parked: true } as const;
    }
    let result: 'ok' | 'unavailable' | 'other' = 'other';
    try {
      const outcome = await this.reconcileTimed(key);
      result = 'ok';
      return outcome;
    } catch (error) {
      if (error instanceof ReconcileError && error.reason === Reason.ProviderUnavailable)
        result = 'unavailable';
      throw error;
    } finally {
      slot.release(result);
    }
  }

  private async reconcileTimed(key: string) {
    const m = this.o.metrics;
    const end = m?.reconcileDuration.startTimer({ controller: CONTROLLER });
    this.o.log.debug({ oidcclient: key }, 'reconcile');
    try {
      const outcome = await this.reconciler.reconcile(key);
      m?.reconcileTotal.inc({ controller: CONTROLLER, result: 'success' });
      return outcome;
    } catch (error) {
      m?.reconcileTotal.inc({
        controller: CONTROLLER,
        result: error instanceof ReconcileError ? 'requeue' : 'error',
      });
      throw error;
    } finally {
      end?.();
    }
  }

  private gaugeTimer?: NodeJS.Timeout;
  /** Recounts clients by Ready at most once a second, after the burst of status events settles. */
  private scheduleReadyGauge(): void {
    if (!this.o.metrics || this.gaugeTimer) return;
    this.gaugeTimer = setTimeout(() => {
      this.gaugeTimer = undefined;
      const counts: Record<string, number> = { True: 0, False: 0, Unknown: 0 };
      for (const inf of this.clientInformers) {
        for (const c of inf.list()) {
          const s = findCondition(c.status?.conditions, 'Ready')?.status ?? 'Unknown';
          counts[s] = (counts[s] ?? 0) + 1;
        }
      }
      for (const [ready, n] of Object.entries(counts)) this.o.metrics?.clients.set({ ready }, n);
    }, 1000);
    this.gaugeTimer.unref();
  }

  private wireEvents(): void {
    const enqueue = (c: OidcClient) => this.queue.add(clientKey(c));
    for (const inf of this.clientInformers) {
      inf.on({
        onAdd: (c) => {
          this.scheduleReadyGauge();
          enqueue(c);
        },
        onUpdate: (c, old) => {
          this.scheduleReadyGauge();
          // Our own writes (status, finalizer) come back as updates; they need no reconcile.
          if (!specOrMetaChanged(c, old)) return;
          const id = objectId('oidcclients', c.metadata.namespace, c.metadata.name as string);
          this.ownWrites.judge(id, c.metadata.resourceVersion, () => enqueue(c));
        },
        onDelete: (c) => {
          this.scheduleReadyGauge();
          enqueue(c);
          this.releaseUnusedProvider(providerKeyOf(c).key);
        },
      });
    }
    const fromSecret = (s: V1Secret) => {
      const owner = ownerClientName(s);
      if (owner && s.metadata?.namespace) this.queue.add(`${s.metadata.namespace}/${owner}`);
    };
    // A Secret state we wrote ourselves wakes nothing: the reconcile that wrote it knows it, and
    // waking the key again would bypass its backoff (and Retry-After) after every failed attempt.
    const fromSecretChange = (s: V1Secret) => {
      const id = objectId('secrets', s.metadata?.namespace, s.metadata?.name as string);
      this.ownWrites.judge(id, s.metadata?.resourceVersion, () => fromSecret(s));
    };
    for (const inf of this.secretInformers) {
      inf.on({
        onAdd: fromSecretChange,
        // On the management Secret, annotation- or finalizer-only changes are bookkeeping (attempt
        // markers, a rejected token's fingerprint): they wake nothing, whoever made them.
        onUpdate: (s, old) => {
          if (s.metadata?.labels?.[LABEL_ROLE] !== 'registration' || secretContentChanged(s, old))
            fromSecretChange(s);
        },
        onDelete: (s) => {
          const owner = ownerClientName(s);
          if (owner && s.metadata?.labels?.[LABEL_ROLE] === 'registration') {
            this.reconciler.rememberRegistration(`${s.metadata?.namespace}/${owner}`, s);
          }
          fromSecret(s);
        },
      });
    }
    const wakeReferencing = (key: string) => {
      for (const c of this.clients.byIndex(CLIENTS_BY_PROVIDER, key)) enqueue(c);
    };
    for (const inf of this.providerInformers) {
      const wake = (p: OidcProvider, old?: OidcProvider) => {
        this.providerHealth?.observe(p, old);
        if (old && old.metadata.generation === p.metadata.generation) return;
        wakeReferencing(providerKey('OidcProvider', p.metadata.namespace, p.metadata.name as string));
      };
      inf.on({
        onAdd: (p) => wake(p),
        onUpdate: wake,
        onDelete: (p) => {
          this.providerHealth?.forget(p);
          wake(p);
          this.releaseUnusedProvider(
            providerKey('OidcProvider', p.metadata.namespace, p.metadata.name as string),
          );
        },
      });
    }
    const wakeCluster = (p: ClusterOidcProvider, old?: ClusterOidcProvider) => {
      this.providerHealth?.observe(p, old);
      if (old && old.metadata.generation === p.metadata.generation) return;
      wakeReferencing(providerKey('ClusterOidcProvider', undefined, p.metadata.name as string));
    };
    this.clusterProviders.on({
      onAdd: (p) => wakeCluster(p),
      onUpdate: wakeCluster,
      onDelete: (p) => {
        this.providerHealth?.forget(p);
        wakeCluster(p);
        this.releaseUnusedProvider(providerKey('ClusterOidcProvider', undefined, p.metadata.name as string));
      },
    });
    // A namespace label change can allow or refuse its clients of ClusterOidcProviders.
    this.namespaces.on({
      onUpdate: (n, old) => {
        if (JSON.stringify(n.metadata?.labels ?? {}) === JSON.stringify(old.metadata?.labels ?? {})) return;
        for (const inf of this.clientInformers) {
          for (const c of inf.list()) {
            if (c.metadata.namespace === n.metadata?.name && providerKeyOf(c).kind === 'ClusterOidcProvider')
              enqueue(c);
          }
        }
      },
    });
  }

  /**
   * Frees a deleted provider's client and metric series once no OidcClient refers to it. Clients
   * being finalized still refer to it (their DELETE may need it), so the last one to go frees it.
   */
  private releaseUnusedProvider(key: string): void {
    const labels = parseProviderKey(key);
    const exists =
      labels.kind === 'ClusterOidcProvider'
        ? this.clusterProviders.get(labels.name)
        : this.providers.get(key);
    if (exists) return;
    if (this.clients.byIndex(CLIENTS_BY_PROVIDER, key).length > 0) return;
    this.registry.release(key, labels);
  }
}

function readyOf(conditions: Condition[] | undefined): 'True' | 'False' | 'Unknown' {
  return findCondition(conditions, 'Ready')?.status ?? 'Unknown';
}

function clientHealthRow(c: OidcClient): ClientHealthRow {
  const ref = providerKeyOf(c);
  const synced = c.status?.lastSyncTime ? Date.parse(c.status.lastSyncTime) : Number.NaN;
  return {
    namespace: c.metadata.namespace ?? '',
    name: c.metadata.name ?? '',
    providerKind: ref.kind,
    providerName: c.spec.providerRef.name,
    ready: readyOf(c.status?.conditions),
    secretExpiresAt: c.status?.clientSecretExpiresAt,
    lastSyncSeconds: Number.isFinite(synced) ? synced / 1000 : undefined,
  };
}

function providerHealthRow(p: OidcProvider | ClusterOidcProvider): ProviderHealthRow {
  const ready = findCondition(p.status?.conditions, 'Ready');
  return {
    kind: p.metadata.namespace ? 'OidcProvider' : 'ClusterOidcProvider',
    namespace: p.metadata.namespace ?? '',
    name: p.metadata.name ?? '',
    ready: ready?.status ?? 'Unknown',
    reason: ready?.reason ?? '',
  };
}

function specOrMetaChanged(c: OidcClient, old: OidcClient): boolean {
  const a = c.metadata;
  const b = old.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.finalizers ?? []) !== JSON.stringify(b.finalizers ?? []) ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {}) ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {})
  );
}

function secretContentChanged(s: V1Secret, old: V1Secret): boolean {
  const a = s.metadata ?? {};
  const b = old.metadata ?? {};
  return (
    JSON.stringify(s.data ?? {}) !== JSON.stringify(old.data ?? {}) ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.labels ?? {}) !== JSON.stringify(b.labels ?? {}) ||
    JSON.stringify(a.ownerReferences ?? []) !== JSON.stringify(b.ownerReferences ?? [])
  );
}

/** The OidcClient informers' index of clients by their provider's key (providerKeyOf). */
const CLIENTS_BY_PROVIDER = 'provider';

/** One read-only view over per-namespace informers. */
function multiInformer<T>(informers: IndexedCacheReader<T>[]): IndexedCacheReader<T> {
  return {
    byIndex: (index, value) => informers.flatMap((i) => i.byIndex(index, value)),
    get: (key) => {
      for (const i of informers) {
        const v = i.get(key);
        if (v) return v;
      }
      return undefined;
    },
    list: () => informers.flatMap((i) => i.list()),
  };
}
