import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'requeue';

export interface ProviderRequestObservation {
  method: string;
  host: string;
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
  readonly providerRequests: Counter<'host' | 'method' | 'status'>;
  readonly providerRequestDuration: Histogram<'host' | 'method'>;
  readonly queueDepth: Gauge<'controller'>;
  readonly queueWait: Histogram<'controller'>;
  readonly queueRetries: Counter<'controller'>;
  readonly clients: Gauge<'ready'>;
  readonly watchRestarts: Counter<'resource'>;
  readonly leader: Gauge;

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
      help: 'HTTP requests to OpenID providers by host, method and status ("error" when no response).',
      labelNames: ['host', 'method', 'status'] as const,
      registers: [registry],
    });
    this.providerRequestDuration = new Histogram({
      name: `${prefix}provider_request_duration_seconds`,
      help: 'Duration of HTTP requests to OpenID providers.',
      labelNames: ['host', 'method'] as const,
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
  }

  /** Records one provider HTTP exchange; shaped for the registration client's observer hook. */
  observeProviderRequest(e: ProviderRequestObservation): void {
    const method = e.method.toUpperCase();
    this.providerRequests.inc({ host: e.host, method, status: String(e.status) });
    this.providerRequestDuration.observe({ host: e.host, method }, Math.max(0, e.durationMs) / 1000);
  }
}
