// Per-client metrics, the Grafana dashboard and the PrometheusRule on real parts: the operator runs
// against the real apiserver with a few OidcClients registered at the real registration server (its
// secrets expire in 30 days), its /metrics is scraped over HTTP, and every metric name in every
// dashboard query and alert expression of the chart must be one that scrape shows.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type HealthServer, startHealthServer } from '../../src/observability/health-server.js';
import {
  createTestNamespace,
  helm,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type MetricSample, parseMetrics } from '../harness/operator-process.js';
import { exportedNames, metricNamesIn } from '../harness/promql.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const CHART = resolve(import.meta.dirname, '../../helm/oidc-client-operator');
const DASHBOARD = resolve(CHART, 'dashboards/oidc-client-operator.json');
const SPEC = '  redirectUris: [https://app.example.org/cb]\n';

describe('per-client metrics, dashboard and alerts', () => {
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator;
  let health: HealthServer;
  let r: OidcReader;
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const scrapeText = async () => {
    const res = await fetch(`http://127.0.0.1:${health.port}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };
  const samples = async (name: string, where: Record<string, string> = {}): Promise<MetricSample[]> =>
    parseMetrics(await scrapeText()).filter(
      (s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v),
    );
  const helmRun = (args: string[]) => helm(binDir, kubeconfigPath, args);

  beforeAll(async () => {
    server = await startRegistrationServer({
      mode: 'iam',
      dialect: { clientSecretLifetimeSeconds: 30 * 86_400 },
    });
    ns = await createTestNamespace(kc, 'client-metrics');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('idp', server.issuer));
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      providerCheckIntervalMs: 60_000,
    });
    health = await startHealthServer({ host: '127.0.0.1', port: 0, metrics: op.metrics });
    await apply(
      [clientYaml('a', 'idp', SPEC), clientYaml('b', 'idp', SPEC), clientYaml('c', 'missing', SPEC)].join(
        '---\n',
      ),
    );
    await Promise.all([
      r.waitReady('a'),
      r.waitReady('b'),
      r.waitReady('c', { status: 'False', reason: 'ProviderNotFound' }),
    ]);
  });

  afterAll(async () => {
    await health?.close();
    await op?.stop();
    await ns?.cleanup();
    await server?.close();
  });

  it('client_ready_status: one series per condition status, 1 on the current one, with the provider', async () => {
    // The status reaches the cache a moment after waitReady saw it on the apiserver.
    const ready = await waitFor(
      async () => {
        const s = await samples('oidc_operator_client_ready_status', { namespace: ns.name });
        return s.find((x) => x.labels.name === 'c' && x.labels.condition === 'False')?.value === 1 && s;
      },
      { description: 'client c reported not Ready' },
    );
    const view = ready
      .map(
        (s) =>
          `${s.labels.name} ${s.labels.provider_kind}/${s.labels.provider_name} ${s.labels.condition}=${s.value}`,
      )
      .sort();
    expect(view).toEqual([
      'a OidcProvider/idp False=0',
      'a OidcProvider/idp True=1',
      'a OidcProvider/idp Unknown=0',
      'b OidcProvider/idp False=0',
      'b OidcProvider/idp True=1',
      'b OidcProvider/idp Unknown=0',
      'c OidcProvider/missing False=1',
      'c OidcProvider/missing True=0',
      'c OidcProvider/missing Unknown=0',
    ]);
  });

  it('secret expiry and last sync are the status values; none for a client never registered', async () => {
    const a = await r.client('a');
    const expiresAt = a?.status?.clientSecretExpiresAt ?? 0;
    // What the provider answered: 30 days after it issued the client.
    const stored = await server.store.get(a?.status?.clientId as string);
    expect(expiresAt).toBe(Number(stored?.metadata.client_id_issued_at) + 30 * 86_400);
    expect(expiresAt - Date.now() / 1000).toBeGreaterThan(29 * 86_400);
    const expiry = await samples('oidc_operator_client_secret_expiration_timestamp_seconds', {
      namespace: ns.name,
    });
    expect(Object.fromEntries(expiry.map((s) => [s.labels.name, s.value]))).toMatchObject({ a: expiresAt });
    expect(expiry.map((s) => s.labels.name).sort()).toEqual(['a', 'b']);
    const sync = await samples('oidc_operator_client_last_sync_timestamp_seconds', {
      namespace: ns.name,
      name: 'a',
    });
    expect(sync.map((s) => s.value)).toEqual([Date.parse(a?.status?.lastSyncTime as string) / 1000]);
    expect(
      await samples('oidc_operator_client_last_sync_timestamp_seconds', { namespace: ns.name, name: 'c' }),
    ).toEqual([]);
  });

  it('a deleted client leaves no series behind', async () => {
    const res = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', 'b', '--wait=true'], {
      namespace: ns.name,
    });
    expect(res.code, res.stderr).toBe(0);
    await waitFor(
      async () =>
        (await samples('oidc_operator_client_ready_status', { namespace: ns.name, name: 'b' })).length === 0,
      {
        description: 'no series of the deleted client b',
      },
    );
    for (const name of [
      'oidc_operator_client_secret_expiration_timestamp_seconds',
      'oidc_operator_client_last_sync_timestamp_seconds',
    ])
      expect(await samples(name, { namespace: ns.name, name: 'b' })).toEqual([]);
    expect(await server.store.get((await r.client('a'))?.status?.clientId as string)).toBeDefined();
  });

  it('every metric in every dashboard query and alert expression is one the operator exports', async () => {
    const exported = exportedNames(await scrapeText());
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
      templating: { list: { name: string; definition?: string }[] };
    };
    const exprs: { where: string; expr: string }[] = [];
    for (const p of dashboard.panels)
      for (const t of p.targets ?? []) exprs.push({ where: `dashboard panel "${p.title}"`, expr: t.expr });
    for (const v of dashboard.templating.list) {
      const m = v.definition && /^label_values\((\w+),/.exec(v.definition);
      if (m?.[1]) exprs.push({ where: `dashboard variable ${v.name}`, expr: m[1] });
    }
    const rendered = await helmRun([
      'template',
      'rel',
      CHART,
      '--set',
      'metrics.prometheusRule.enabled=true',
    ]);
    expect(rendered.code, rendered.stderr).toBe(0);
    const rule = parseAllDocuments(rendered.stdout)
      .map(
        (d) =>
          d.toJSON() as { kind?: string; spec?: { groups: { rules: { alert: string; expr: string }[] }[] } },
      )
      .find((d) => d?.kind === 'PrometheusRule');
    const alerts = rule?.spec?.groups.flatMap((g) => g.rules) ?? [];
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'OidcClientNotReady',
      'OidcClientSecretExpiringSoon',
      'OidcOperatorWorkQueueBackingUp',
      'OidcProviderNotReady',
      'OidcProviderRequestErrors',
    ]);
    for (const a of alerts) exprs.push({ where: `alert ${a.alert}`, expr: a.expr });
    expect(exprs.length).toBeGreaterThan(20);
    const missing: string[] = [];
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = metricNamesIn(expr);
      if (names.length === 0) missing.push(`${where}: no metric in ${expr}`);
      for (const n of names) {
        used.add(n);
        if (!exported.has(n)) missing.push(`${where}: ${n}`);
      }
    }
    expect(missing).toEqual([]);
    // The per-client and provider metrics are all used somewhere.
    for (const n of [
      'oidc_operator_client_ready_status',
      'oidc_operator_client_secret_expiration_timestamp_seconds',
      'oidc_operator_client_last_sync_timestamp_seconds',
      'oidc_operator_provider_ready_status',
      'oidc_operator_provider_requests_total',
      'oidc_operator_workqueue_depth',
    ])
      expect(used).toContain(n);
    console.info(`[client-metrics] ${exprs.length} expressions, ${used.size} metric names, all exported`);
  });

  it('chart: lint --strict with dashboard and rule on; ConfigMap for the sidecar; both off by default; values checked', async () => {
    const lint = await helmRun([
      'lint',
      '--strict',
      CHART,
      '--set',
      'metrics.grafanaDashboard.enabled=true,metrics.prometheusRule.enabled=true',
    ]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    const kinds = async (args: string[]) => {
      const out = await helmRun(['template', 'rel', CHART, '--namespace', 'ops', ...args]);
      expect(out.code, out.stderr).toBe(0);
      return parseAllDocuments(out.stdout)
        .map(
          (d) =>
            d.toJSON() as {
              kind: string;
              metadata: {
                name: string;
                namespace?: string;
                labels?: Record<string, string>;
                annotations?: Record<string, string>;
              };
              data?: Record<string, string>;
            },
        )
        .filter(Boolean);
    };
    const defaults = await kinds([]);
    expect(defaults.map((d) => d.kind)).not.toContain('PrometheusRule');
    expect(defaults.filter((d) => d.kind === 'ConfigMap')).toEqual([]);
    const deployment = defaults.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    expect(deployment.spec.template.spec.containers[0]?.args).toContain('--provider-check-interval=5m');
    const on = await kinds([
      '--set',
      'metrics.grafanaDashboard.enabled=true,metrics.grafanaDashboard.namespace=monitoring',
      '--set',
      'metrics.grafanaDashboard.annotations.grafana_folder=OIDC',
    ]);
    const cm = on.find((d) => d.kind === 'ConfigMap');
    expect(cm?.metadata).toMatchObject({
      name: 'rel-oidc-client-operator-dashboard',
      namespace: 'monitoring',
      annotations: { grafana_folder: 'OIDC' },
    });
    expect(cm?.metadata.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm?.data?.['oidc-client-operator.json'] ?? '')).toEqual(
      JSON.parse(readFileSync(DASHBOARD, 'utf8')),
    );
    for (const bad of [
      'metrics.prometheusRule.secretExpiryDays=0',
      'metrics.prometheusRule.clientNotReadyFor=15 minutes',
      'metrics.prometheusRule.providerErrorRatio=2',
      'operator.providerCheckInterval=often',
    ]) {
      const out = await helmRun(['template', 'rel', CHART, '--set', bad]);
      expect(out.code, bad).not.toBe(0);
      expect(out.stderr, bad).toMatch(/values don't meet the specifications of the schema|schema/i);
    }
  });
});
