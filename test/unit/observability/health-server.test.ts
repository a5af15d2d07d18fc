import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type HealthServer, startHealthServer } from '../../../src/observability/health-server.js';
import { OperatorMetrics } from '../../../src/observability/metrics.js';

interface Reply {
  status: number;
  contentType: string | undefined;
  body: string;
}

async function get(port: number, path: string, method = 'GET'): Promise<Reply> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? undefined,
    body: await res.text(),
  };
}

describe('startHealthServer', () => {
  const servers: HealthServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(
    opts: Omit<Parameters<typeof startHealthServer>[0], 'port' | 'host' | 'metrics'> = {},
  ) {
    const metrics = new OperatorMetrics();
    const server = await startHealthServer({ host: '127.0.0.1', port: 0, metrics, ...opts });
    servers.push(server);
    return { server, metrics };
  }

  it('binds a random port for port 0 and reports it', async () => {
    const { server } = await start();
    expect(server.port).toBeGreaterThan(0);
    expect((await get(server.port, '/healthz')).status).toBe(200);
  });

  it('answers ok on /healthz and /readyz when all checks pass (or there are none)', async () => {
    const { server } = await start({
      readiness: [{ name: 'informers-synced', check: () => ({ ok: true }) }],
    });
    expect(await get(server.port, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get(server.port, '/readyz')).toMatchObject({ status: 200, body: 'ok\n' });
  });

  it('answers 503 on /readyz naming each failing check and its message', async () => {
    let synced = false;
    const { server } = await start({
      liveness: [{ name: 'event-loop', check: () => ({ ok: true }) }],
      readiness: [
        { name: 'informers-synced', check: () => ({ ok: synced, message: 'oidcclients not listed yet' }) },
        { name: 'api-reachable', check: () => ({ ok: true }) },
        { name: 'leader-or-standby', check: () => ({ ok: false }) },
      ],
    });
    const failing = await get(server.port, '/readyz');
    expect(failing.status).toBe(503);
    expect(failing.contentType).toMatch(/^text\/plain/);
    expect(failing.body).toContain('[-]informers-synced failed: oidcclients not listed yet');
    expect(failing.body).toContain('[-]leader-or-standby failed');
    expect(failing.body).not.toContain('api-reachable');
    expect(failing.body).toContain('readyz check failed');
    // Readiness is not liveness: the kubelet must not restart a process that is only not ready.
    expect((await get(server.port, '/healthz')).status).toBe(200);

    synced = true;
    const verbose = await get(server.port, '/readyz?verbose');
    expect(verbose.status).toBe(503);
    expect(verbose.body).toContain('[+]informers-synced ok');
    expect(verbose.body).toContain('[+]api-reachable ok');
  });

  it('treats a throwing check as failing', async () => {
    const { server } = await start({
      liveness: [
        {
          name: 'watchdog',
          check: () => {
            throw new Error('loop stalled for 42 s');
          },
        },
      ],
    });
    const reply = await get(server.port, '/healthz');
    expect(reply.status).toBe(503);
    expect(reply.body).toContain('[-]watchdog failed: loop stalled for 42 s');
    expect(reply.body).toContain('healthz check failed');
  });

  it('serves the registry on /metrics with the Prometheus content type', async () => {
    const { server, metrics } = await start();
    metrics.reconcileTotal.inc({ controller: 'oidcclient', result: 'error' });
    const reply = await get(server.port, '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.contentType).toBe(metrics.registry.contentType);
    expect(reply.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body).toMatch(
      /^oidc_operator_reconcile_total\{controller="oidcclient",result="error"\} 1$/m,
    );
    expect(reply.body).toMatch(/^oidc_operator_process_cpu_user_seconds_total /m);
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const { server } = await start();
    expect((await get(server.port, '/')).status).toBe(404);
    expect((await get(server.port, '/metricsx')).status).toBe(404);
    const post = await get(server.port, '/readyz', 'POST');
    expect(post.status).toBe(405);
    const head = await get(server.port, '/readyz', 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
  });

  it('close() returns promptly even with an idle keep-alive connection open', async () => {
    const { server } = await start();
    // A keep-alive socket left open, as Prometheus leaves between scrapes.
    await new Promise<void>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: server.port,
        path: '/healthz',
        agent: false,
        headers: { connection: 'keep-alive' },
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    const started = performance.now();
    await servers.pop()?.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(get(server.port, '/healthz')).rejects.toThrow();
  });

  it('rejects when the port is taken', async () => {
    const { server } = await start();
    await expect(
      startHealthServer({ host: '127.0.0.1', port: server.port, metrics: new OperatorMetrics() }),
    ).rejects.toThrow(/EADDRINUSE/);
  });

  it('asks the metrics authorizer for /metrics only, with the Authorization header', async () => {
    const asked: (string | undefined)[] = [];
    const { server, metrics } = await start({
      metricsAuth: {
        authorize: async (authorization) => {
          asked.push(authorization);
          if (authorization === 'Bearer good') return { ok: true };
          if (authorization === undefined)
            return { ok: false, status: 401, message: 'a Bearer token is required' };
          return { ok: false, status: 403, message: 'nope' };
        },
      },
    });
    metrics.leader.set(1);
    const anonymous = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    expect(await anonymous.text()).not.toContain('oidc_operator_');
    const refused = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      headers: { authorization: 'Bearer bad' },
    });
    expect(refused.status).toBe(403);
    const allowed = await fetch(`http://127.0.0.1:${server.port}/metrics`, {
      headers: { authorization: 'Bearer good' },
    });
    expect(allowed.status).toBe(200);
    expect(await allowed.text()).toContain('oidc_operator_leader 1');
    // Probes stay open for the kubelet and never reach the authorizer.
    expect((await get(server.port, '/healthz')).status).toBe(200);
    expect((await get(server.port, '/readyz')).status).toBe(200);
    expect(asked).toEqual([undefined, 'Bearer bad', 'Bearer good']);
  });
});
