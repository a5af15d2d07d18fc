import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// Helm validates values with its own JSON Schema engine (test/e2e/install.test.ts covers that path);
// ajv checks the same draft-07 schema here in milliseconds, case by case.

const chart = resolve(import.meta.dirname, '../../../helm/oidc-client-operator');

type Values = Record<string, unknown>;

function defaults(): Values {
  return parse(readFileSync(resolve(chart, 'values.yaml'), 'utf8')) as Values;
}

/** Deep-merges `override` onto the chart defaults, as `helm --values` does. */
function merged(override: Values, base: Values = defaults()): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const prev = out[key];
    const bothObjects =
      typeof value === 'object' && value !== null && !Array.isArray(value) && typeof prev === 'object';
    out[key] =
      bothObjects && prev !== null && !Array.isArray(prev) ? merged(value as Values, prev as Values) : value;
  }
  return out;
}

describe('values.schema.json', () => {
  let validate: (values: unknown) => { ok: boolean; errors: string };

  beforeAll(() => {
    const schema: unknown = JSON.parse(readFileSync(resolve(chart, 'values.schema.json'), 'utf8'));
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
    const fn = ajv.compile(schema as object);
    validate = (values) => {
      const ok = fn(values);
      return { ok, errors: ajv.errorsText(fn.errors) };
    };
  });

  it('accepts the default values.yaml', () => {
    const r = validate(defaults());
    expect(r.errors).toBe('No errors');
    expect(r.ok).toBe(true);
  });

  it('accepts PodDisruptionBudget bounds as numbers or percentages, and a configured NetworkPolicy', () => {
    expect(validate(merged({ podDisruptionBudget: { minAvailable: '50%', maxUnavailable: '' } })).ok).toBe(
      true,
    );
    expect(validate(merged({ podDisruptionBudget: { minAvailable: 1 } })).ok).toBe(true);
    const networkPolicy = {
      enabled: true,
      metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
      apiServer: { cidrs: ['10.0.0.1/32', 'fd00::1/128'], ports: [6443] },
      providers: { cidrs: ['192.0.2.0/24'], ports: [443, 8443] },
      extraEgress: [{ ports: [{ port: 8080 }] }],
    };
    expect(validate(merged({ networkPolicy })).errors).toBe('No errors');
  });

  it('accepts namespaces scope with namespaces listed', () => {
    expect(validate(merged({ rbac: { scope: 'namespaces', namespaces: ['team-a', 'team-b'] } })).ok).toBe(
      true,
    );
  });

  it.each([
    ['a misspelt rbac.scope', { rbac: { scope: 'clusterr' } }, /rbac\/scope must be equal to one of/],
    ['replicaCount as a string', { replicaCount: '3' }, /replicaCount must be integer/],
    ['an unknown top-level key', { replicas: 3 }, /must NOT have additional properties/],
    ['an unknown nested key', { operator: { leaderElect: true } }, /operator must NOT have additional/],
    ['namespaces scope without namespaces', { rbac: { scope: 'namespaces' } }, /rbac\/namespaces/],
    ['an invalid namespace name', { rbac: { scope: 'namespaces', namespaces: ['Team_A'] } }, /pattern/],
    ['a duration without unit', { operator: { resyncInterval: '600' } }, /resyncInterval must match/],
    ['an unknown log level', { operator: { logLevel: 'verbose' } }, /logLevel must be equal to one of/],
    ['a typo in resources', { resources: { request: { cpu: '1' } } }, /resources must NOT have additional/],
    ['extraArgs that are not flags', { operator: { extraArgs: ['run'] } }, /extraArgs\/0 must match/],
    [
      'a PDB bound that is no number or percentage',
      { podDisruptionBudget: { maxUnavailable: 'one' } },
      /maxUnavailable/,
    ],
    [
      'a typo in podDisruptionBudget',
      { podDisruptionBudget: { minAvailabe: 1 } },
      /must NOT have additional/,
    ],
    [
      'a host name as a CIDR',
      { networkPolicy: { providers: { cidrs: ['iam.example.org'] } } },
      /cidrs\/0 must match/,
    ],
    [
      'no provider ports',
      { networkPolicy: { providers: { ports: [] } } },
      /ports must NOT have fewer than 1/,
    ],
  ])('rejects %s', (_what, override, message) => {
    const r = validate(merged(override));
    expect(r.ok).toBe(false);
    expect(r.errors).toMatch(message);
  });
});
