import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'requeue';

/** The provider resource a request was made for; namespace is '' for a ClusterOidcProvider. */
export interface ProviderLabels {
  kind: string;
  namespace: string;
  name: string;
}

/** One OidcClient as the per-client metrics show it (read from the informer cache at scrape time). */
export interface ClientHealthRow {
  namespace: string;
  name: string;
  providerKind: string;
  providerName: string;
  ready: 'True' | 'False' | 'Unknown';
  /** client_secret_expires_at (seconds since the epoch); undefined or 0 when it never expires. */
  secretExpiresAt?: number | undefined;
  /** status.lastSyncTime in seconds since the epoch. */
  lastSyncSeconds?: number | undefined;
}

/** One provider resource this process checks (namespace '' for a ClusterOidcProvider). */
export interface ProviderHealthRow extends ProviderLabels {
  ready: 'True' | 'False' | 'Unknown';
  reason: string;
}

const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

export interface ProviderRequestObservation {
  provider: ProviderLabels;
  method: string;
  /** HTTP status, or 'error' when no response arrived (connection refused, timeout, TLS failure). */
  status: number | 'error';
  durationMs: number;
}

// Provider calls are remote HTTP requests: resolve tens of milliseconds up to the client's timeouts.
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
// Reconciles include provider calls; queue waits include rate-limited requeues (up to minutes).
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUEUE_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/**
 * The operator's Prometheus metrics. Each instance owns its own Registry, so tests (and several
 * operators in one process) do not collide on metric names in prom-client's global registry.
 */
export class OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly providerRequests: Counter<ProviderLabel | 'method' | 'status'>;
  readonly providerRequestDuration: Histogram<ProviderLabel | 'method'>;
  readonly queueDepth: Gauge<'controller'>;
  readonly queueWait: Histogram<'controller'>;
  readonly queueRetries: Counter<'controller'>;
  readonly clients: Gauge<'ready'>;
  readonly watchRestarts: Counter<'resource'>;
  readonly leader: Gauge;
  readonly shard: Gauge<'shard' | 'total_shards'>;
  readonly cachedObjects: Gauge<'resource'>;
  readonly droppedObjects: Counter<'resource'>;
  readonly clientReady: ScrapeTimeGauge;
  readonly clientSecretExpiry: ScrapeTimeGauge;
  readonly clientLastSync: ScrapeTimeGauge;
  readonly providerReady: ScrapeTimeGauge;
  readonly providerChecks: Counter<'result'>;
  /** Informer cache sizes, read when /metrics is scraped (set by the controller). */
  cacheSource?: () => { resource: string; cached: number; dropped: number }[];
  /**
   * The OidcClients and providers of this process, read when /metrics is scraped (set by the
   * controller): per-object series exist only while the object does and cost no memory between
   * scrapes.
   */
  clientSource?: () => Iterable<ClientHealthRow>;
  providerSource?: () => Iterable<ProviderHealthRow>;

  constructor(opts: { prefix?: string } = {}) {
    const prefix = opts.prefix ?? 'oidc_operator_';
    const registry = new Registry();
    this.registry = registry;
    collectDefaultMetrics({ register: registry, prefix });

    this.reconcileTotal = new Counter({
      name: `${prefix}reconcile_total`,
      help: 'Reconciliations by controller and result (success, error, requeue).',
      labelNames: ['controller', 'result'] as const,
      registers: [registry],
    });
    this.reconcileDuration = new Histogram({
      name: `${prefix}reconcile_duration_seconds`,
      help: 'Duration of one reconciliation.',
      labelNames: ['controller'] as const,
      buckets: RECONCILE_BUCKETS,
      registers: [registry],
    });
    this.providerRequests = new Counter({
      name: `${prefix}provider_requests_total`,
      help: 'HTTP requests to OpenID providers by provider resource, method and status ("error" when no response).',
      labelNames: [...PROVIDER_LABELS, 'method', 'status'] as const,
      registers: [registry],
    });
    this.providerRequestDuration = new Histogram({
      name: `${prefix}provider_request_duration_seconds`,
      help: 'Duration of HTTP requests to OpenID providers, by provider resource and method.',
      labelNames: [...PROVIDER_LABELS, 'method'] as const,
      buckets: PROVIDER_BUCKETS,
      registers: [registry],
    });
    this.queueDepth = new Gauge({
      name: `${prefix}workqueue_depth`,
      help: 'Keys waiting in the work queue.',
      labelNames: ['controller'] as const,
      registers: [registry],
    });
    this.queueWait = new Histogram({
      name: `${prefix}workqueue_wait_seconds`,
      help: 'Time a key waited in the work queue between being added and being processed.',
      labelNames: ['controller'] as const,
      buckets: QUEUE_WAIT_BUCKETS,
      registers: [registry],
    });
    this.queueRetries = new Counter({
      name: `${prefix}workqueue_retries_total`,
      help: 'Keys re-queued with backoff after a failed or requeued reconciliation.',
      labelNames: ['controller'] as const,
      registers: [registry],
    });
    this.clients = new Gauge({
      name: `${prefix}clients`,
      help: 'OidcClients by Ready condition status (True, False, Unknown).',
      labelNames: ['ready'] as const,
      registers: [registry],
    });
    this.watchRestarts = new Counter({
      name: `${prefix}watch_restarts_total`,
      help: 'Watches restarted (after errors, expiry or 410 Gone) by resource.',
      labelNames: ['resource'] as const,
      registers: [registry],
    });
    this.leader = new Gauge({
      name: `${prefix}leader`,
      help: '1 when this process holds the leader election lease, else 0.',
      registers: [registry],
    });
    this.leader.set(0);
    this.shard = new Gauge({
      name: `${prefix}shard_info`,
      help: 'Always 1; the shard this process reconciles (--shard) out of --total-shards.',
      labelNames: ['shard', 'total_shards'] as const,
      registers: [registry],
    });
    const sizes = () => this.cacheSource?.() ?? [];
    this.cachedObjects = new Gauge({
      name: `${prefix}cached_objects`,
      help: 'Objects in the informer caches by resource (with shards: this shard only).',
      labelNames: ['resource'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sizes()) this.inc({ resource: s.resource }, s.cached);
      },
    });
    const clientRows = () => this.clientSource?.() ?? [];
    // cert-manager's certmanager_certificate_ready_status: one series per condition status, 1 for
    // the current one, so `== 1` selects and `sum by (condition)` counts.
    this.clientReady = new ScrapeTimeGauge(
      `${prefix}client_ready_status`,
      'Ready condition of each OidcClient: 1 for its current status (condition True, False or Unknown), else 0.',
      function* () {
        for (const c of clientRows()) {
          const base = {
            namespace: c.namespace,
            name: c.name,
            provider_kind: c.providerKind,
            provider_name: c.providerName,
          };
          for (const condition of CONDITION_STATUSES)
            yield { labels: { ...base, condition }, value: c.ready === condition ? 1 : 0 };
        }
      },
    );
    this.clientSecretExpiry = new ScrapeTimeGauge(
      `${prefix}client_secret_expiration_timestamp_seconds`,
      'When the client_secret of each OidcClient expires (client_secret_expires_at); only clients whose secret expires.',
      function* () {
        for (const c of clientRows())
          if (c.secretExpiresAt)
            yield { labels: { namespace: c.namespace, name: c.name }, value: c.secretExpiresAt };
      },
    );
    this.clientLastSync = new ScrapeTimeGauge(
      `${prefix}client_last_sync_timestamp_seconds`,
      'When the operator last registered or changed each OidcClient at its provider (status.lastSyncTime).',
      function* () {
        for (const c of clientRows())
          if (c.lastSyncSeconds)
            yield { labels: { namespace: c.namespace, name: c.name }, value: c.lastSyncSeconds };
      },
    );
    const providerRows = () => this.providerSource?.() ?? [];
    this.providerReady = new ScrapeTimeGauge(
      `${prefix}provider_ready_status`,
      'Ready condition of each provider resource this process checks: 1 for its current status (condition True, False or Unknown), else 0.',
      function* () {
        for (const p of providerRows()) {
          for (const condition of CONDITION_STATUSES)
            yield { labels: { ...providerLabels(p), condition }, value: p.ready === condition ? 1 : 0 };
        }
      },
    );
    for (const g of [this.clientReady, this.clientSecretExpiry, this.clientLastSync, this.providerReady])
      registry.registerMetric(g as unknown as Gauge);
    this.providerChecks = new Counter({
      name: `${prefix}provider_health_checks_total`,
      help: 'Provider health checks by result (the Ready reason: Available, DiscoveryFailed, TLSError, RegistrationEndpointUnavailable, ProviderInvalid).',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    this.droppedObjects = new Counter({
      name: `${prefix}shard_dropped_objects_total`,
      help: 'Objects (list items and watch events) received and dropped as belonging to other shards, by resource.',
      labelNames: ['resource'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const s of sizes()) this.inc({ resource: s.resource }, s.dropped);
      },
    });
  }

  /**
   * Records one provider HTTP exchange. Labels come from the provider resource (never from a URL a
   * tenant or a provider answer could choose), the method from a fixed set and the status from
   * 100–599, so the series per provider are bounded; releaseProvider drops them.
   */
  observeProviderRequest(e: ProviderRequestObservation): void {
    const method = KNOWN_METHODS.has(e.method.toUpperCase()) ? e.method.toUpperCase() : 'OTHER';
    const status =
      e.status === 'error' || (Number.isInteger(e.status) && e.status >= 100 && e.status <= 599)
        ? String(e.status)
        : 'invalid';
    const base = providerLabels(e.provider);
    this.providerRequests.inc({ ...base, method, status });
    this.providerRequestDuration.observe({ ...base, method }, Math.max(0, e.durationMs) / 1000);
    const key = providerKey(e.provider);
    let seen = this.#providerSeries.get(key);
    if (!seen) {
      seen = { labels: base, series: new Set() };
      this.#providerSeries.set(key, seen);
    }
    seen.series.add(`${method} ${status}`);
  }

  /** Removes every series of a provider resource that no longer exists. */
  releaseProvider(provider: ProviderLabels): void {
    const key = providerKey(provider);
    const seen = this.#providerSeries.get(key);
    if (!seen) return;
    this.#providerSeries.delete(key);
    const methods = new Set<string>();
    for (const entry of seen.series) {
      const [method = '', status = ''] = entry.split(' ');
      methods.add(method);
      this.providerRequests.remove({ ...seen.labels, method, status });
    }
    for (const method of methods) this.providerRequestDuration.remove({ ...seen.labels, method });
  }

  readonly #providerSeries = new Map<
    string,
    { labels: Record<ProviderLabel, string>; series: Set<string> }
  >();
}

/**
 * A gauge whose samples are produced when /metrics is scraped and dropped right after: per-object
 * series (one OidcClient each) keep nothing in memory between scrapes, unlike a prom-client Gauge,
 * which holds every label set it was ever given until it is reset. Registered as a prom-client
 * metric (name, help, type, aggregator, get).
 */
export class ScrapeTimeGauge {
  readonly type = 'gauge';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly samples: () => Iterable<{ labels: Record<string, string>; value: number }>,
  ) {}

  async get(): Promise<{
    name: string;
    help: string;
    type: 'gauge';
    aggregator: 'sum';
    values: { labels: Record<string, string>; value: number }[];
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.samples()],
    };
  }

  /** Registry.resetMetrics() calls it; there is nothing to reset. */
  reset(): void {}
}

const PROVIDER_LABELS = ['provider_kind', 'provider_namespace', 'provider_name'] as const;
type ProviderLabel = (typeof PROVIDER_LABELS)[number];
const KNOWN_METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE']);

function providerLabels(p: ProviderLabels): Record<ProviderLabel, string> {
  return { provider_kind: p.kind, provider_namespace: p.namespace, provider_name: p.name };
}

function providerKey(p: ProviderLabels): string {
  return `${p.kind}/${p.namespace}/${p.name}`;
}
