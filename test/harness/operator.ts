// Runs the operator's controller in the test process, scoped to the test's namespace, with a
// counter of every write it sends to the apiserver (the "idle means idle" tests read it).
import { KubeConfig } from '@kubernetes/client-node';
import { OidcClientController } from '../../src/controller/controller.js';
import { KubeRest } from '../../src/kube/rest.js';
import { createLogger } from '../../src/observability/logger.js';
import { OperatorMetrics } from '../../src/observability/metrics.js';

export interface InProcessOperator {
  controller: OidcClientController;
  metrics: OperatorMetrics;
  /** Writes (non-GET requests) sent to the apiserver so far, by "METHOD path". */
  writes: string[];
  /** Every request (reads included) sent to the apiserver so far, by "METHOD path". */
  requests: string[];
  /** Log lines (JSON) the operator wrote: tests search them for leaked secrets. */
  logLines: string[];
  stop(): Promise<void>;
}

export interface InProcessOperatorOptions {
  kubeconfigPath: string;
  namespace: string;
  /** More namespaces to watch besides `namespace`. */
  extraNamespaces?: string[];
  /** How often a provider's CA / initial access token Secrets are re-read at most. */
  providerSecretRecheckMs?: number;
  resyncIntervalMs?: number;
  /** Shortest spec.refreshInterval honoured (the operator's default is 1 min). */
  minRefreshIntervalMs?: number;
  deletionTimeoutMs?: number;
  workers?: number;
  /** Timeout of one apiserver request (default 30 s); outage tests shorten it. */
  kubeTimeoutMs?: number;
  /** Provider HTTP tuning; defaults 5 s per request and 2 retries. */
  providerRequestTimeoutMs?: number;
  providerRetries?: number;
  /**
   * Provider health checks (default off: tests that count provider requests predate them). The
   * test operator checks the providers of its namespaces; ClusterOidcProviders only with
   * checkClusterProviders (they are shared by every test file on the control plane).
   */
  providerCheckIntervalMs?: number;
  checkClusterProviders?: boolean | ((name: string) => boolean);
}

export async function startInProcessOperator(opts: InProcessOperatorOptions): Promise<InProcessOperator> {
  const kc = new KubeConfig();
  kc.loadFromFile(opts.kubeconfigPath);
  const rest = new KubeRest(kc, { timeoutMs: opts.kubeTimeoutMs });
  const writes: string[] = [];
  const requests: string[] = [];
  rest.onRequest((e) => {
    requests.push(`${e.method} ${e.path}`);
    if (e.method !== 'GET') writes.push(`${e.method} ${e.path}`);
  });
  const logLines: string[] = [];
  const log = createLogger({
    level: process.env.OPERATOR_LOG_LEVEL ?? 'info',
    destination: {
      write(chunk: string) {
        logLines.push(chunk);
        if (process.env.OPERATOR_LOG === '1') process.stderr.write(chunk);
        return true;
      },
    } as unknown as NodeJS.WritableStream,
  });
  const metrics = new OperatorMetrics();
  const controller = new OidcClientController({
    rest,
    log,
    metrics,
    namespaces: [opts.namespace, ...(opts.extraNamespaces ?? [])],
    workers: opts.workers ?? 4,
    resyncIntervalMs: opts.resyncIntervalMs ?? 600_000,
    minRefreshIntervalMs: opts.minRefreshIntervalMs,
    deletionTimeoutMs: opts.deletionTimeoutMs ?? 60_000,
    providerRequestTimeoutMs: opts.providerRequestTimeoutMs ?? 5_000,
    providerRetries: opts.providerRetries ?? 2,
    providerSecretRecheckMs: opts.providerSecretRecheckMs,
    providerCheckIntervalMs: opts.providerCheckIntervalMs ?? 0,
    checkClusterProviders: opts.checkClusterProviders ?? false,
    providerCheckRetryDelayMs: 200,
  });
  await controller.start();
  return {
    controller,
    metrics,
    writes,
    requests,
    logLines,
    stop: async () => {
      await controller.stop();
      await rest.close();
    },
  };
}
