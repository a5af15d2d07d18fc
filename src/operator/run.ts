// `oidc-client-operator run`: builds the controller from flags, serves health and metrics, takes
// part in leader election, and shuts down cleanly on SIGTERM (drain the queue, release the lease).
import { OidcClientController } from '../controller/controller.js';
import { loadKubeConnection } from '../kube/config.js';
import type { Fence } from '../kube/fence.js';
import { LeaderElector } from '../kube/leader-election.js';
import { KubeRest } from '../kube/rest.js';
import { type HealthServer, startHealthServer } from '../observability/health-server.js';
import { createLogger } from '../observability/logger.js';
import { OperatorMetrics } from '../observability/metrics.js';
import { KubernetesMetricsAuth } from '../observability/metrics-auth.js';
import { FlagError, parseOperatorFlags, USAGE } from './flags.js';

/** How long a dead watch may go unnoticed before /readyz fails. */
const WATCH_STALE_MS = 90_000;

export async function runOperator(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let flags: ReturnType<typeof parseOperatorFlags>;
  try {
    flags = parseOperatorFlags(argv);
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`error: ${error.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  const log = createLogger({ level: flags.logLevel, name: 'oidc-client-operator' });
  const kc = await loadKubeConnection(flags.kubeconfig);

  const metrics = new OperatorMetrics();
  const rest = new KubeRest(kc);
  const controller = new OidcClientController({
    rest,
    log,
    metrics,
    namespaces: flags.namespaces,
    workers: flags.maxConcurrentReconciles,
    resyncIntervalMs: flags.resyncIntervalMs,
    minRefreshIntervalMs: flags.minRefreshIntervalMs,
    deletionTimeoutMs: flags.deletionTimeoutMs,
    providerRequestTimeoutMs: flags.providerTimeoutMs,
    providerCheckIntervalMs: flags.providerCheckIntervalMs,
    shard: flags.shard,
  });

  let health: HealthServer | undefined;
  if (flags.healthPort >= 0) {
    health = await startHealthServer({
      host: flags.healthHost,
      port: flags.healthPort,
      metrics,
      ...(flags.metricsAuth === 'kubernetes' ? { metricsAuth: new KubernetesMetricsAuth(rest) } : {}),
      liveness: [{ name: 'process', check: () => ({ ok: true }) }],
      readiness: [
        {
          name: 'watches',
          // A standby replica keeps its caches warm too, so the same check applies.
          check: () => controller.health(WATCH_STALE_MS),
        },
      ],
    });
    log.info({ port: health.port, metricsAuth: flags.metricsAuth }, 'serving /healthz, /readyz and /metrics');
  }

  const startController = async (fence?: Fence) => {
    await controller.start(fence);
  };

  let elector: LeaderElector | undefined;
  let shuttingDown = false;
  const shutdown = async (signal: string, code = 0) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'shutting down: draining in-flight reconciles');
    const hardStop = setTimeout(() => process.exit(code || 1), 25_000);
    hardStop.unref();
    await controller.stop().catch(() => undefined);
    await rest.close().catch(() => undefined);
    await elector?.stop({ release: true }).catch(() => undefined);
    await health?.close().catch(() => undefined);
    log.info('stopped');
    process.exitCode = code;
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  if (flags.leaderElect) {
    elector = new LeaderElector({
      kubeConfig: kc,
      namespace: flags.leaderElectionNamespace,
      name: flags.leaderElectionId,
      identity: flags.identity,
      leaseDurationSeconds: flags.leaseDurationSeconds,
      renewDeadlineSeconds: Math.max(1, Math.round((flags.leaseDurationSeconds * 2) / 3)),
      retryPeriodSeconds: Math.max(1, Math.round(flags.leaseDurationSeconds / 7)),
      log,
      onStartedLeading: (_signal, fence) => {
        metrics.leader.set(1);
        log.info({ identity: flags.identity }, 'became leader');
        // The fence stops every write and provider call once the Lease is not renewed in time.
        void startController(fence);
      },
      onStoppedLeading: () => {
        metrics.leader.set(0);
        if (shuttingDown) return;
        // Like client-go: a replica that lost the lease exits and is restarted clean.
        log.error('lost leadership; exiting');
        void shutdown('leadership-lost', 1);
      },
    });
    log.info(
      { lease: `${flags.leaderElectionNamespace}/${flags.leaderElectionId}`, identity: flags.identity },
      'waiting for leadership',
    );
    void controller.startInformers();
    elector.start();
  } else {
    await startController();
  }
}
