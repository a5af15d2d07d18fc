// Keeps every OidcProvider / ClusterOidcProvider's status true to what its provider does, whether
// or not a client uses it: checked on first sight and on every spec change, again every interval
// (with jitter, so providers created together are not checked together), sooner while it fails or
// when a client's calls hit trouble. The status is written only when it changes: a healthy provider
// costs one discovery GET and one probe per interval and no write.
//
// Sharding: namespaced providers are checked by the shard owning their namespace (its informers hold
// only those); ClusterOidcProviders by shard 0 only, so shards never take turns writing one status.
import type { Logger } from 'pino';
import { API_GROUP_VERSION } from '../api/schema.js';
import type { ClusterOidcProvider, OidcProvider, OidcProviderStatus } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { isFenced } from '../kube/fence.js';
import { type CacheReader, errorMessage } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { runWorkers, WorkQueue } from '../kube/workqueue.js';
import type { OperatorMetrics } from '../observability/metrics.js';
import { findCondition, removeCondition, setCondition } from './conditions.js';
import { checkProviderHealth, type HealthVerdict, ProviderReason } from './provider-health.js';
import type { AnyProvider } from './provider-trust.js';
import { statusPatch } from './status.js';

/** Default time between two checks of a provider (each takes ±10 % jitter). */
export const DEFAULT_PROVIDER_CHECK_INTERVAL_MS = 5 * 60_000;
/** A failing provider is re-checked after 15 s, 30 s, … up to the interval. */
const FAILING_FIRST_RECHECK_MS = 15_000;
/** Client trouble re-checks a provider at most this often. */
const NUDGE_MIN_MS = 10_000;

export interface ProviderHealthOptions {
  /** Fenced: status writes stop with the leadership term. */
  rest: KubeRest;
  log: Logger;
  metrics?: OperatorMetrics | undefined;
  /** Warning Events when a namespaced provider stops being Ready, Normal when it recovers. */
  events?: EventRecorder | undefined;
  providers: CacheReader<OidcProvider>;
  clusterProviders: CacheReader<ClusterOidcProvider>;
  /** Which ClusterOidcProviders' status this process writes: all on shard 0, none elsewhere. */
  checkClusterProviders: boolean | ((name: string) => boolean);
  intervalMs: number;
  requestTimeoutMs?: number | undefined;
  /** Pause before a failed request's one retry (tests shorten it). */
  retryDelayMs?: number | undefined;
}

export class ProviderHealthController {
  readonly queue = new WorkQueue({ baseDelayMs: 1_000, maxDelayMs: 60_000 });
  private workers?: Promise<void>;
  private readonly lastCheck = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /** The status we last wrote per key, until the informer's cache shows it (read-your-writes). */
  private readonly written = new Map<string, { basedOn: string | undefined; status: OidcProviderStatus }>();
  private readonly abort = new AbortController();

  constructor(private readonly o: ProviderHealthOptions) {}

  static keyOf(p: AnyProvider): string {
    return p.metadata.namespace
      ? `OidcProvider/${p.metadata.namespace}/${p.metadata.name}`
      : `ClusterOidcProvider/${p.metadata.name}`;
  }

  owns(p: AnyProvider): boolean {
    const cluster = this.o.checkClusterProviders;
    if (p.metadata.namespace) return true;
    return typeof cluster === 'function' ? cluster(p.metadata.name ?? '') : cluster;
  }

  /** Informer events: a new provider or a new generation is checked now; status-only updates wake nothing. */
  observe(p: AnyProvider, old?: AnyProvider): void {
    if (!this.owns(p)) return;
    if (old && old.metadata.generation === p.metadata.generation) return;
    this.queue.add(ProviderHealthController.keyOf(p));
  }

  forget(p: AnyProvider): void {
    const key = ProviderHealthController.keyOf(p);
    this.lastCheck.delete(key);
    this.failures.delete(key);
    this.written.delete(key);
  }

  /** A client's call to the provider failed for a reason the status should show: re-check soon. */
  nudge(p: AnyProvider): void {
    if (!this.owns(p)) return;
    const key = ProviderHealthController.keyOf(p);
    const since = Date.now() - (this.lastCheck.get(key) ?? 0);
    this.queue.addAfter(key, Math.max(0, NUDGE_MIN_MS - since));
  }

  start(signal?: AbortSignal): void {
    if (this.workers) return;
    signal?.addEventListener('abort', () => this.queue.shutDown(), { once: true });
    // Two workers: one provider's slow check does not hold up the others' (each call has a timeout).
    this.workers = runWorkers(
      this.queue,
      2,
      (key) => this.check(key),
      (key, error) => {
        if (!isFenced(error) && !this.abort.signal.aborted)
          this.o.log.warn({ provider: key, err: errorMessage(error) }, 'provider health check failed');
        return undefined;
      },
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.queue.shutDown();
    await this.workers;
  }

  private lookup(key: string): AnyProvider | undefined {
    const [kind, a = '', b] = key.split('/');
    if (kind === 'ClusterOidcProvider') return this.o.clusterProviders.get(a);
    return this.o.providers.get(`${a}/${b}`);
  }

  private async check(key: string): Promise<{ requeueAfterMs: number } | undefined> {
    const provider = this.lookup(key);
    if (!provider || !this.owns(provider) || provider.metadata.deletionTimestamp) return undefined;
    const generation = provider.metadata.generation;
    // kstatus: a generation not yet checked is "in progress", never "current" (healthy).
    if (this.currentStatus(key, provider).observedGeneration !== generation) {
      await this.write(key, provider, { kind: 'checking' });
    }
    this.lastCheck.set(key, Date.now());
    const verdict = await checkProviderHealth(provider, {
      rest: this.o.rest,
      requestTimeoutMs: this.o.requestTimeoutMs,
      retryDelayMs: this.o.retryDelayMs,
      signal: this.abort.signal,
    });
    this.o.metrics?.providerChecks.inc({ result: verdict.reason });
    const now = this.lookup(key);
    // The spec changed during the check: its event queued the key again; this verdict is stale.
    if (!now || now.metadata.generation !== generation) return undefined;
    await this.write(key, now, { kind: 'verdict', verdict });
    const failures = verdict.ready || verdict.stalled ? 0 : (this.failures.get(key) ?? 0) + 1;
    if (failures === 0) this.failures.delete(key);
    else this.failures.set(key, failures);
    const base =
      failures === 0
        ? this.o.intervalMs
        : Math.min(this.o.intervalMs, FAILING_FIRST_RECHECK_MS * 2 ** (failures - 1));
    return { requeueAfterMs: Math.round(base * (0.9 + Math.random() * 0.2)) };
  }

  /** The provider's status as stored, or as we last wrote it when the cache has not caught up. */
  private currentStatus(key: string, p: AnyProvider): OidcProviderStatus {
    const mine = this.written.get(key);
    if (mine && mine.basedOn === p.metadata.resourceVersion) return mine.status;
    this.written.delete(key);
    return p.status ?? {};
  }

  private async write(
    key: string,
    p: AnyProvider,
    what: { kind: 'checking' } | { kind: 'verdict'; verdict: HealthVerdict },
  ): Promise<void> {
    const old = this.currentStatus(key, p);
    const next = nextProviderStatus(p, old, what.kind === 'checking' ? undefined : what.verdict);
    const patch = statusPatch(old, next);
    if (!patch) return;
    const plural = p.metadata.namespace ? 'oidcproviders' : 'clusteroidcproviders';
    const base = `/apis/${API_GROUP_VERSION}`;
    const path = p.metadata.namespace
      ? `${base}/namespaces/${p.metadata.namespace}/${plural}/${p.metadata.name}/status`
      : `${base}/${plural}/${p.metadata.name}/status`;
    await this.o.rest.patch(path, 'merge', patch);
    this.written.set(key, { basedOn: p.metadata.resourceVersion, status: next });
    const ready = findCondition(next.conditions, 'Ready');
    const was = findCondition(old.conditions, 'Ready');
    // Namespaced only: a cluster-scoped object's Events would land in "default", which the
    // operator may not write to (namespaces RBAC scope); the status says it all the same.
    if (ready && p.metadata.namespace && this.o.events) {
      if (ready.status === 'False' && (was?.status !== 'False' || was.reason !== ready.reason))
        this.o.events.record(p, 'Warning', ready.reason ?? '', ready.message ?? '');
      else if (ready.status === 'True' && was?.status === 'False')
        this.o.events.record(p, 'Normal', ready.reason ?? '', ready.message ?? '');
    }
    this.o.log.info(
      { provider: key, ready: ready?.status, reason: ready?.reason, message: ready?.message },
      'provider status changed',
    );
  }
}

/**
 * The status a verdict leads to (undefined verdict: the check of a new generation is running).
 * Ready always; Reconciling while checking or retrying; Stalled when a person must act.
 */
export function nextProviderStatus(
  p: AnyProvider,
  old: OidcProviderStatus,
  verdict: HealthVerdict | undefined,
  now = new Date().toISOString(),
): OidcProviderStatus {
  const gen = p.metadata.generation;
  const put = (
    list: NonNullable<OidcProviderStatus['conditions']>,
    type: string,
    status: 'True' | 'False' | 'Unknown',
    reason: string,
    message: string,
  ) => setCondition(list, { type, status, reason, message }, gen, now);
  let conditions = old.conditions ?? [];
  if (!verdict) {
    const message = 'checking discovery, TLS and the registration endpoint';
    conditions = put(conditions, 'Ready', 'Unknown', ProviderReason.Checking, message);
    conditions = put(conditions, 'Reconciling', 'True', ProviderReason.Checking, message);
    conditions = removeCondition(conditions, 'Stalled');
    return { ...old, observedGeneration: gen, conditions };
  }
  conditions = put(conditions, 'Ready', verdict.ready ? 'True' : 'False', verdict.reason, verdict.message);
  conditions =
    !verdict.ready && !verdict.stalled
      ? put(conditions, 'Reconciling', 'True', verdict.reason, verdict.message)
      : removeCondition(conditions, 'Reconciling');
  conditions =
    !verdict.ready && verdict.stalled
      ? put(conditions, 'Stalled', 'True', verdict.reason, verdict.message)
      : removeCondition(conditions, 'Stalled');
  const next: OidcProviderStatus = { ...old, observedGeneration: gen, conditions };
  if (verdict.endpoints) {
    next.registrationEndpoint = verdict.endpoints.registrationEndpoint;
    if (verdict.endpoints.tokenEndpoint) next.tokenEndpoint = verdict.endpoints.tokenEndpoint;
  }
  return next;
}
