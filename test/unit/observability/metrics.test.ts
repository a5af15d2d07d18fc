import { describe, expect, it } from 'vitest';
import { OperatorMetrics } from '../../../src/observability/metrics.js';

/** Value of the sample `name{labels}` in Prometheus text output, matching labels in any order. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

describe('OperatorMetrics', () => {
  it('exposes every operator metric with its labels under the default prefix', async () => {
    const m = new OperatorMetrics();
    m.reconcileTotal.inc({ controller: 'oidcclient', result: 'success' });
    m.reconcileTotal.inc({ controller: 'oidcclient', result: 'requeue' }, 2);
    m.reconcileDuration.observe({ controller: 'oidcclient' }, 0.2);
    m.queueDepth.set({ controller: 'oidcclient' }, 7);
    m.queueWait.observe({ controller: 'oidcclient' }, 0.003);
    m.queueRetries.inc({ controller: 'oidcclient' });
    m.clients.set({ ready: 'True' }, 3);
    m.clients.set({ ready: 'False' }, 1);
    m.watchRestarts.inc({ resource: 'oidcclients' });
    m.leader.set(1);
    const text = await m.registry.metrics();

    expect(
      sample(text, 'oidc_operator_reconcile_total', { controller: 'oidcclient', result: 'success' }),
    ).toBe(1);
    expect(
      sample(text, 'oidc_operator_reconcile_total', { controller: 'oidcclient', result: 'requeue' }),
    ).toBe(2);
    expect(sample(text, 'oidc_operator_reconcile_duration_seconds_count', { controller: 'oidcclient' })).toBe(
      1,
    );
    expect(sample(text, 'oidc_operator_reconcile_duration_seconds_sum', { controller: 'oidcclient' })).toBe(
      0.2,
    );
    expect(sample(text, 'oidc_operator_workqueue_depth', { controller: 'oidcclient' })).toBe(7);
    expect(
      sample(text, 'oidc_operator_workqueue_wait_seconds_bucket', { controller: 'oidcclient', le: '0.005' }),
    ).toBe(1);
    expect(sample(text, 'oidc_operator_workqueue_retries_total', { controller: 'oidcclient' })).toBe(1);
    expect(sample(text, 'oidc_operator_clients', { ready: 'True' })).toBe(3);
    expect(sample(text, 'oidc_operator_clients', { ready: 'False' })).toBe(1);
    expect(sample(text, 'oidc_operator_watch_restarts_total', { resource: 'oidcclients' })).toBe(1);
    expect(sample(text, 'oidc_operator_leader')).toBe(1);
    for (const name of [
      'reconcile_total',
      'reconcile_duration_seconds',
      'provider_requests_total',
      'provider_request_duration_seconds',
      'workqueue_depth',
      'workqueue_wait_seconds',
      'workqueue_retries_total',
      'clients',
      'watch_restarts_total',
      'leader',
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP oidc_operator_${name} \\S`, 'm'));
    }
  });

  it('reports leader 0 before anything sets it', async () => {
    const text = await new OperatorMetrics().registry.metrics();
    expect(sample(text, 'oidc_operator_leader')).toBe(0);
  });

  it('collects default process metrics under the prefix', async () => {
    const text = await new OperatorMetrics({ prefix: 'test_op_' }).registry.metrics();
    expect(sample(text, 'test_op_process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^test_op_nodejs_heap_size_total_bytes \d/m);
    expect(text).not.toMatch(/^oidc_operator_/m);
  });

  it('keeps instances independent (a registry each)', async () => {
    const a = new OperatorMetrics();
    const b = new OperatorMetrics();
    a.watchRestarts.inc({ resource: 'secrets' });
    expect(a.registry).not.toBe(b.registry);
    expect(
      sample(await b.registry.metrics(), 'oidc_operator_watch_restarts_total', { resource: 'secrets' }),
    ).toBe(undefined);
  });

  it('observeProviderRequest counts by provider resource, method and status, and times in seconds', async () => {
    const m = new OperatorMetrics();
    const provider = { kind: 'OidcProvider', namespace: 'team-a', name: 'iam' };
    m.observeProviderRequest({ provider, method: 'post', status: 201, durationMs: 40 });
    m.observeProviderRequest({ provider, method: 'PUT', status: 'error', durationMs: 1500 });
    m.observeProviderRequest({ provider, method: 'PUT', status: 'error', durationMs: 20 });
    const text = await m.registry.metrics();
    const labels = { provider_kind: 'OidcProvider', provider_namespace: 'team-a', provider_name: 'iam' };
    const post = { ...labels, method: 'POST' };
    const put = { ...labels, method: 'PUT' };
    expect(sample(text, 'oidc_operator_provider_requests_total', { ...post, status: '201' })).toBe(1);
    expect(sample(text, 'oidc_operator_provider_requests_total', { ...put, status: 'error' })).toBe(2);
    expect(sample(text, 'oidc_operator_provider_request_duration_seconds_sum', post)).toBeCloseTo(0.04);
    expect(sample(text, 'oidc_operator_provider_request_duration_seconds_sum', put)).toBeCloseTo(1.52);
    expect(
      sample(text, 'oidc_operator_provider_request_duration_seconds_bucket', { ...put, le: '0.025' }),
    ).toBe(1);
    expect(
      sample(text, 'oidc_operator_provider_request_duration_seconds_bucket', { ...put, le: '2.5' }),
    ).toBe(2);
    expect(text).not.toMatch(/host=/);
  });

  it('keeps provider series bounded and releases those of a deleted provider', async () => {
    const m = new OperatorMetrics();
    const gone = { kind: 'OidcProvider', namespace: 'team-a', name: 'old' };
    const kept = { kind: 'ClusterOidcProvider', namespace: '', name: 'iam' };
    for (const status of [200, 201, 302, 'error', 999] as const) {
      m.observeProviderRequest({ provider: gone, method: 'GET', status, durationMs: 5 });
    }
    m.observeProviderRequest({ provider: gone, method: 'PATCH', status: 200, durationMs: 5 });
    m.observeProviderRequest({ provider: kept, method: 'GET', status: 200, durationMs: 5 });
    let text = await m.registry.metrics();
    const old = { provider_kind: 'OidcProvider', provider_namespace: 'team-a', provider_name: 'old' };
    expect(
      sample(text, 'oidc_operator_provider_requests_total', { ...old, method: 'GET', status: 'invalid' }),
    ).toBe(1);
    expect(
      sample(text, 'oidc_operator_provider_requests_total', { ...old, method: 'OTHER', status: '200' }),
    ).toBe(1);

    m.releaseProvider(gone);
    text = await m.registry.metrics();
    expect(text).not.toContain('provider_name="old"');
    const live = { provider_kind: 'ClusterOidcProvider', provider_namespace: '', provider_name: 'iam' };
    expect(
      sample(text, 'oidc_operator_provider_requests_total', { ...live, method: 'GET', status: '200' }),
    ).toBe(1);
    m.releaseProvider(gone); // idempotent
  });
});
