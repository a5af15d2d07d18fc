// Command-line flags of `oidc-client-operator run`, with environment fallbacks for the
// Deployment (downward API). Pure: parsed here, validated with clear messages, used by run.ts.
import { parseArgs } from 'node:util';
import { type Shard, shardLeaseName } from '../controller/sharding.js';

export interface OperatorFlags {
  kubeconfig?: string;
  namespaces: string[];
  leaderElect: boolean;
  leaderElectionNamespace: string;
  /** The Lease name: --leader-election-id, suffixed with -shard-<i> when there are several shards. */
  leaderElectionId: string;
  /** Which part of the OidcClients this process reconciles (by a hash of their namespace). */
  shard: Shard;
  identity: string;
  healthPort: number;
  healthHost?: string;
  metricsAuth: 'kubernetes' | 'none';
  logLevel: string;
  resyncIntervalMs: number;
  minRefreshIntervalMs: number;
  maxConcurrentReconciles: number;
  deletionTimeoutMs: number;
  leaseDurationSeconds: number;
  providerTimeoutMs: number;
  /** Time between two health checks of one provider resource; 0 turns them off. */
  providerCheckIntervalMs: number;
}

export class FlagError extends Error {}

export const USAGE = `Usage: oidc-client-operator run [flags]

  --kubeconfig PATH                 kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespaces a,b                  watch only these namespaces (default: all; env WATCH_NAMESPACES)
  --leader-elect[=true|false]       use a coordination.k8s.io Lease so only one replica reconciles (default false)
  --leader-election-namespace NS    namespace of the Lease (default: $POD_NAMESPACE, else "default")
  --leader-election-id NAME         name of the Lease (default oidc-client-operator; with
                                    --total-shards > 1 each shard uses NAME-shard-<i>)
  --lease-duration 15s              how long a dead leader blocks a successor
  --health-port 8081                port for /healthz, /readyz and /metrics (0 = random, -1 = off)
  --health-host HOST                interface for the health port (default all)
  --metrics-auth none               who may read /metrics: none (anyone who reaches the port) or
                                    kubernetes (Bearer token checked with TokenReview, then
                                    SubjectAccessReview for get on /metrics; the chart sets this)
  --log-level info                  trace|debug|info|warn|error (env LOG_LEVEL)
  --resync-interval 10m             drift check (RFC 7592 GET) per client, spread over this interval
                                    (an OidcClient's spec.refreshInterval overrides it)
  --min-refresh-interval 1m         shortest spec.refreshInterval honoured; shorter ones are raised
                                    to it (protects shared providers from tenants' tight loops)
  --max-concurrent-reconciles 8     OidcClients reconciled at once (provider calls are further
                                    bounded per provider by spec.maxConcurrentRequests)
  --deletion-timeout 5m             how long a finalizer retries an unreachable provider before
                                    letting the OidcClient go (with a Warning Event)
  --provider-timeout 10s            timeout of one provider HTTP request
  --provider-check-interval 5m      health check of every OidcProvider / ClusterOidcProvider
                                    (discovery, TLS, registration endpoint) into its status,
                                    repeated this often (±10 %), 0 = off; ClusterOidcProviders
                                    are checked by shard 0
  --shard 0 --total-shards 1        run shard i of n: only the OidcClients whose namespace hashes
                                    to i (FNV-1a of the name, modulo n) are watched into memory and
                                    reconciled; run each shard as its own Deployment (leader and
                                    standby), every one with the same --total-shards
`;

/** Go-style durations as in Helm values and client-go flags: 500ms, 30s, 10m, 1h30m. A bare number is seconds. */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  while (part.lastIndex < text.length) {
    const m = part.exec(text);
    if (!m) break;
    total += Number(m[1]) * unitMs[m[2] as keyof typeof unitMs];
    matched = part.lastIndex;
  }
  if (text === '' || matched !== text.length) {
    throw new FlagError(`${flag}: "${value}" is not a duration (examples: 500ms, 30s, 10m, 1h30m)`);
  }
  return Math.round(total);
}

function parseBool(value: string | boolean | undefined, flag: string, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value === 'boolean') return value;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new FlagError(`${flag}: expected true or false, got "${value}"`);
}

function parseInteger(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new FlagError(`${flag}: expected an integer >= ${min}, got "${value}"`);
  return n;
}

export function parseOperatorFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorFlags {
  let values: Record<string, string | boolean | undefined>;
  // `--leader-elect` alone means true; parseArgs wants a value for string options.
  const args = argv.map((a) => (a === '--leader-elect' ? '--leader-elect=true' : a));
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: 'string' },
        namespaces: { type: 'string' },
        'leader-elect': { type: 'string' },
        'leader-election-namespace': { type: 'string' },
        'leader-election-id': { type: 'string' },
        'lease-duration': { type: 'string' },
        'health-port': { type: 'string' },
        'health-host': { type: 'string' },
        'metrics-auth': { type: 'string' },
        'log-level': { type: 'string' },
        'resync-interval': { type: 'string' },
        'min-refresh-interval': { type: 'string' },
        'max-concurrent-reconciles': { type: 'string' },
        'deletion-timeout': { type: 'string' },
        'provider-timeout': { type: 'string' },
        'provider-check-interval': { type: 'string' },
        shard: { type: 'string' },
        'total-shards': { type: 'string' },
      },
    }));
  } catch (error) {
    throw new FlagError(error instanceof Error ? error.message : String(error));
  }
  const leaderRaw = values['leader-elect'] as string | undefined;
  const str = (k: string) => values[k] as string | undefined;
  const namespaces = (str('namespaces') ?? env.WATCH_NAMESPACES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const level = str('log-level') ?? env.LOG_LEVEL ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) {
    throw new FlagError(`--log-level: unknown level "${level}"`);
  }
  const healthPort = Number(str('health-port') ?? '8081');
  if (!Number.isInteger(healthPort) || healthPort < -1 || healthPort > 65535) {
    throw new FlagError(`--health-port: expected a port number, 0 (random) or -1 (off)`);
  }
  const metricsAuth = str('metrics-auth') ?? 'none';
  if (metricsAuth !== 'none' && metricsAuth !== 'kubernetes') {
    throw new FlagError(`--metrics-auth: expected kubernetes or none, got "${metricsAuth}"`);
  }
  const total = parseInteger(str('total-shards') ?? '1', '--total-shards', 1);
  const index = parseInteger(str('shard') ?? '0', '--shard', 0);
  if (index >= total)
    throw new FlagError(`--shard: expected 0..${total - 1} for --total-shards ${total}, got ${index}`);
  const shard: Shard = { index, total };
  return {
    kubeconfig: str('kubeconfig'),
    namespaces,
    leaderElect: parseBool(leaderRaw, '--leader-elect', false),
    leaderElectionNamespace: str('leader-election-namespace') ?? env.POD_NAMESPACE ?? 'default',
    leaderElectionId: shardLeaseName(str('leader-election-id') ?? 'oidc-client-operator', shard),
    shard,
    identity: env.POD_NAME ?? `${env.HOSTNAME ?? 'local'}-${process.pid}`,
    healthPort,
    healthHost: str('health-host'),
    metricsAuth,
    logLevel: level,
    resyncIntervalMs: parseDuration(str('resync-interval') ?? '10m', '--resync-interval'),
    minRefreshIntervalMs: parseDuration(str('min-refresh-interval') ?? '1m', '--min-refresh-interval'),
    maxConcurrentReconciles: parseInteger(
      str('max-concurrent-reconciles') ?? '8',
      '--max-concurrent-reconciles',
      1,
    ),
    deletionTimeoutMs: parseDuration(str('deletion-timeout') ?? '5m', '--deletion-timeout'),
    leaseDurationSeconds: Math.max(
      2,
      Math.round(parseDuration(str('lease-duration') ?? '15s', '--lease-duration') / 1000),
    ),
    providerTimeoutMs: parseDuration(str('provider-timeout') ?? '10s', '--provider-timeout'),
    providerCheckIntervalMs: parseDuration(
      str('provider-check-interval') ?? '5m',
      '--provider-check-interval',
    ),
  };
}
