import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { http } from '../kube/node-http.js';
import type { OperatorMetrics } from './metrics.js';
import type { MetricsAuthorizer } from './metrics-auth.js';

export interface HealthCheck {
  name: string;
  check(): { ok: boolean; message?: string };
}

export interface HealthServer {
  /** The bound port (the kernel's choice when 0 was requested). */
  port: number;
  close(): Promise<void>;
}

export interface HealthServerOptions {
  /** Interface to bind; default all interfaces, since the kubelet probes the pod IP. */
  host?: string;
  port: number;
  metrics: OperatorMetrics;
  /** When set, /metrics answers only requests this authorizer allows (probes stay open). */
  metricsAuth?: MetricsAuthorizer;
  liveness?: HealthCheck[];
  readiness?: HealthCheck[];
}

interface CheckOutcome {
  name: string;
  ok: boolean;
  message?: string;
}

function runCheck(check: HealthCheck): CheckOutcome {
  try {
    const result = check.check();
    return {
      name: check.name,
      ok: result.ok,
      ...(result.message === undefined ? {} : { message: result.message }),
    };
  } catch (error) {
    // A throwing check is a failing check, not a crashed probe endpoint.
    return { name: check.name, ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Plain-text report in the style of the kube-apiserver's /readyz: "ok" when everything passes,
 * otherwise one "[-]name failed: message" line per failing check (all checks with ?verbose).
 */
function report(endpoint: string, outcomes: CheckOutcome[], verbose: boolean): { ok: boolean; text: string } {
  const ok = outcomes.every((o) => o.ok);
  if (ok && !verbose) return { ok, text: 'ok\n' };
  const lines = outcomes
    .filter((o) => verbose || !o.ok)
    .map((o) =>
      o.ok ? `[+]${o.name} ok` : `[-]${o.name} failed${o.message === undefined ? '' : `: ${o.message}`}`,
    );
  lines.push(`${endpoint} check ${ok ? 'passed' : 'failed'}`);
  return { ok, text: `${lines.join('\n')}\n` };
}

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(head ? undefined : body);
}

const TEXT = 'text/plain; charset=utf-8';
const ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

async function handle(req: IncomingMessage, res: ServerResponse, opts: HealthServerOptions): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!ROUTES.has(url.pathname)) {
    send(res, 404, TEXT, 'not found\n', false);
    return;
  }
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    send(res, 405, TEXT, 'method not allowed\n', false);
    return;
  }
  if (url.pathname === '/metrics') {
    if (opts.metricsAuth) {
      const decision = await opts.metricsAuth.authorize(req.headers.authorization);
      if (!decision.ok) {
        if (decision.status === 401) res.setHeader('www-authenticate', 'Bearer');
        send(res, decision.status, TEXT, `${decision.message}\n`, head);
        return;
      }
    }
    try {
      const body = await opts.metrics.registry.metrics();
      send(res, 200, opts.metrics.registry.contentType, body, head);
    } catch (error) {
      send(
        res,
        500,
        TEXT,
        `collecting metrics failed: ${error instanceof Error ? error.message : ''}\n`,
        head,
      );
    }
    return;
  }
  const endpoint = url.pathname.slice(1);
  const checks = (endpoint === 'healthz' ? opts.liveness : opts.readiness) ?? [];
  const result = report(endpoint, checks.map(runCheck), url.searchParams.has('verbose'));
  send(res, result.ok ? 200 : 503, TEXT, result.text, head);
}

/**
 * Serves /healthz (liveness), /readyz (readiness) and /metrics for the kubelet and Prometheus.
 * Checks are synchronous so a probe never waits on the API server or a provider: components keep
 * their state current and the checks only read it.
 */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    handle(req, res, opts).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, TEXT, 'internal error\n', false);
      else res.destroy(error instanceof Error ? error : undefined);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port, ...(opts.host === undefined ? {} : { host: opts.host }) }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Prometheus and probes keep connections alive; do not let them hold shutdown open.
        server.closeAllConnections();
      }),
  };
}
