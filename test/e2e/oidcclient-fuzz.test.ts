// Property-based fuzzing of OidcClient specs through the real apiserver and the compiled operator:
// generated specs, valid and invalid (wrong types, huge lists, odd URIs, unicode, empty strings,
// unknown fields), are created the way kubectl does (field validation Strict). Each one is either
// rejected at apply time with a message, or gets a clear Ready condition (True, or False with a
// reason) for its generation within a bound; the operator never crashes and never hot-loops:
// provider requests and apiserver writes per resource stay bounded, and everything can be deleted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { OidcClient } from '../../src/api/types.generated.js';
import { KubeApiError, KubeRest } from '../../src/kube/rest.js';
import { buildOperator } from '../harness/build.js';
import { type ApiserverProxy, startApiserverProxy } from '../harness/chaos/apiserver-proxy.js';
import { writeTarget } from '../harness/chaos/invariants.js';
import { managedClientId } from '../harness/chaos/provider-faults.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { GROUP, providerYaml, VERSION } from '../harness/oidc.js';
import { type OperatorProcess, startOperatorProcess } from '../harness/operator-process.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const RUNS = Number(process.env.FUZZ_RUNS ?? 50);
const SEED = process.env.FUZZ_SEED === undefined ? 20_260_101 : Number(process.env.FUZZ_SEED);
/** How long an accepted spec may go without a clear Ready condition. */
const CONDITION_WITHIN_MS = 15_000;
/**
 * Per resource, over its life so far: a few requests and writes to register and report, plus one
 * or two per retry of a resource that keeps failing (exponential backoff from 0.5 s: about
 * log2(age / 0.5 s) retries). A hot loop makes hundreds.
 */
const retries = (ageMs: number) => Math.ceil(Math.log2(Math.max(2, ageMs / 500)));
const providerBudget = (ageMs: number) => 6 + 2 * retries(ageMs);
const writeBudget = (ageMs: number) => 10 + 2 * retries(ageMs);

// ------------------------------------------------------------------ generators

const wrongType = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.double({ noNaN: true }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
  fc.array(fc.integer(), { maxLength: 2 }),
);
const oddString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', ' ', '\t', '\u0000', '\u202e', 'ü', '😀', 'ﬀ', '..', 'a'.repeat(3_000)),
);
const uri = fc.oneof(
  { weight: 3, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'https://app.example.org/cb',
      'http://localhost:8080/cb',
      'com.example.app:/oauth2redirect',
      'https://app.example.org/cb#fragment',
      'not a uri',
      'javascript:alert(1)',
      'https://例え.テスト/cb',
      'https://[::1]:8443/cb',
      'https://user:pass@example.org/cb',
      'HTTPS://APP.EXAMPLE.ORG/CB',
      `https://example.org/${'a'.repeat(2_500)}`,
    ),
  },
  { weight: 2, arbitrary: oddString },
);
/** Mostly short lists; sometimes a huge one; sometimes not a list at all. */
const listOf = <T>(el: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.array(el, { maxLength: 4 }) },
    { weight: 1, arbitrary: fc.array(el, { minLength: 120, maxLength: 250 }) },
    { weight: 1, arbitrary: wrongType },
  );
const orOdd = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof(
    { weight: 12, arbitrary: valid },
    { weight: 1, arbitrary: oddString },
    { weight: 1, arbitrary: wrongType },
  );
const secretName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('fz-app', 'fz-shared', 'fz-mgmt') },
  { weight: 1, arbitrary: fc.constantFrom('UPPER', 'has space', 'a.b', '-x', `x${'y'.repeat(300)}`) },
  { weight: 1, arbitrary: oddString },
);

const specArb = fc
  .record(
    {
      providerRef: fc.oneof(
        { weight: 10, arbitrary: fc.constant({ name: 'iam' }) },
        { weight: 1, arbitrary: fc.constant({ name: 'no-such-provider' }) },
        { weight: 1, arbitrary: fc.constant({ name: 'iam', kind: 'ClusterOidcProvider' }) },
        { weight: 1, arbitrary: fc.record({ name: oddString, kind: orOdd(fc.constant('OidcProvider')) }) },
        { weight: 1, arbitrary: wrongType },
      ),
      clientName: orOdd(fc.string({ unit: 'grapheme', maxLength: 60 })),
      redirectUris: listOf(uri),
      postLogoutRedirectUris: listOf(uri),
      grantTypes: listOf(
        orOdd(
          fc.constantFrom(
            'authorization_code',
            'refresh_token',
            'client_credentials',
            'implicit',
            'password',
          ),
        ),
      ),
      responseTypes: listOf(orOdd(fc.constantFrom('code', 'token', 'id_token', 'code id_token', 'none'))),
      scopes: listOf(orOdd(fc.constantFrom('openid', 'profile', 'email', 'offline_access', 'unknown:scope'))),
      tokenEndpointAuthMethod: orOdd(
        fc.constantFrom(
          'client_secret_basic',
          'client_secret_post',
          'client_secret_jwt',
          'private_key_jwt',
          'none',
        ),
      ),
      contacts: listOf(orOdd(fc.emailAddress())),
      clientUri: orOdd(uri),
      logoUri: orOdd(uri),
      policyUri: orOdd(uri),
      tosUri: orOdd(uri),
      jwksUri: orOdd(uri),
      applicationType: orOdd(fc.constantFrom('web', 'native')),
      extraMetadata: fc.oneof(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }), {
          maxKeys: 4,
        }),
        fc.constant({ redirect_uris: ['https://repeats-a-field.example.org/cb'] }),
        fc.constant({ reuse_refresh_token: true, client_secret: 'chosen-by-the-user' }),
        wrongType,
      ),
      secretName,
      managementSecretName: secretName,
      secretTemplate: fc.oneof(
        fc.record(
          {
            labels: fc.dictionary(oddString, oddString, { maxKeys: 2 }),
            annotations: fc.dictionary(oddString, oddString, { maxKeys: 2 }),
          },
          { requiredKeys: [] },
        ),
        wrongType,
      ),
      deletionPolicy: orOdd(fc.constantFrom('Delete', 'Orphan')),
      adoptFrom: fc.oneof(fc.constant({ secretRef: { name: 'no-such-secret' } }), wrongType),
    },
    { requiredKeys: [] },
  )
  // Most specs set a few fields, as users do; providerRef is there nine times out of ten.
  .chain((spec) =>
    fc
      .tuple(
        fc.subarray(Object.keys(spec), { maxLength: 5 }),
        // Unknown fields in one spec out of eight.
        fc.oneof(
          { weight: 7, arbitrary: fc.constant(undefined) },
          {
            weight: 1,
            arbitrary: fc.dictionary(
              fc.string({ minLength: 1, maxLength: 12 }),
              fc.jsonValue({ maxDepth: 1 }),
              {
                minKeys: 1,
                maxKeys: 2,
              },
            ),
          },
        ),
        fc.nat(9),
      )
      .map(([keep, unknown, dice]) => {
        // A working client underneath, so the generated fields decide the outcome.
        const out: Record<string, unknown> = { redirectUris: ['https://fuzz.example.org/cb'] };
        for (const k of keep) out[k] = (spec as Record<string, unknown>)[k];
        if (dice > 0) out.providerRef = spec.providerRef ?? { name: 'iam' };
        if (unknown) Object.assign(out, unknown);
        return out;
      }),
  );

// ------------------------------------------------------------------ the test

interface Outcome {
  name: string;
  createdAt: number;
  spec: Record<string, unknown>;
  result: 'rejected' | 'condition';
  detail: string;
  message?: string;
}

describe('OidcClient spec fuzzing', () => {
  let ns: TestNamespace;
  let server: RegistrationServer;
  let proxy: ApiserverProxy;
  let operator: OperatorProcess;
  let rest: KubeRest;
  let workDir: string;
  const outcomes: Outcome[] = [];
  let counter = 0;

  beforeAll(async () => {
    await buildOperator();
    rest = new KubeRest(kubeConfigFromFile(kubeconfigPath));
    [ns, server, workDir] = await Promise.all([
      createTestNamespace(kubeConfigFromFile(kubeconfigPath), 'fuzz'),
      startRegistrationServer({ mode: 'iam' }),
      mkdtemp(join(tmpdir(), 'fuzz-')),
    ]);
    await kubectlApply(binDir, kubeconfigPath, providerYaml('iam', server.issuer), ns.name);
    proxy = await startApiserverProxy({
      adminKubeconfigPath: kubeconfigPath,
      kubeconfigPath: join(workDir, 'kubeconfig'),
    });
    operator = await startOperatorProcess({
      name: 'fuzz',
      kubeconfigPath: proxy.kubeconfigPath,
      compiled: true,
      args: [
        `--namespaces=${ns.name}`,
        '--resync-interval=10m',
        '--provider-timeout=3s',
        '--max-concurrent-reconciles=4',
      ],
    });
    await operator.waitReady(30_000);
  });

  afterAll(async () => {
    await operator?.stop(5_000);
    await proxy?.close();
    await Promise.allSettled([ns?.cleanup(), server?.close(), rest?.close()]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** The resource a client_name belongs to: spec.clientName when set, else the resource name. */
  function ownerOf(clientName: string): string | undefined {
    const o = outcomes.find((x) =>
      typeof x.spec.clientName === 'string' && x.spec.clientName !== ''
        ? x.spec.clientName === clientName
        : x.name === clientName,
    );
    return o?.name;
  }

  async function condition(name: string) {
    const cr = await rest.get<OidcClient>(
      `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/oidcclients/${name}`,
    );
    const ready = cr.status?.conditions?.find((c) => c.type === 'Ready');
    if (!ready || cr.status?.observedGeneration !== cr.metadata.generation) return undefined;
    if (ready.status !== 'True' && ready.status !== 'False') return undefined;
    if (!ready.reason) return undefined;
    return ready;
  }

  it(`each of ${RUNS} generated specs is rejected with a message or gets a clear Ready condition`, async () => {
    await fc.assert(
      fc.asyncProperty(specArb, async (spec) => {
        const name = `fz-${String(++counter).padStart(3, '0')}`;
        const createdAt = Date.now();
        const body = { apiVersion: `${GROUP}/${VERSION}`, kind: 'OidcClient', metadata: { name }, spec };
        try {
          // What kubectl apply sends for a new object: field validation Strict (unknown fields are errors).
          await rest.create(`/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/oidcclients`, body, {
            fieldValidation: 'Strict',
            fieldManager: 'kubectl-client-side-apply',
          });
        } catch (error) {
          if (!(error instanceof KubeApiError)) throw error;
          // Rejected at apply time: a client error with a message saying what is wrong.
          expect([400, 422]).toContain(error.status);
          expect(error.message.length).toBeGreaterThan(20);
          outcomes.push({
            name,
            createdAt,
            spec,
            result: 'rejected',
            detail: `${error.status} ${error.message.slice(0, 160)}`,
          });
          return;
        }
        const ready = await waitFor(() => condition(name), {
          description: `a clear Ready condition on ${name} (spec ${JSON.stringify(spec).slice(0, 300)})`,
          timeoutMs: CONDITION_WITHIN_MS,
          intervalMs: 100,
          fatal: () => (operator.exit ? new Error(`the operator exited: ${operator.tail()}`) : undefined),
        });
        outcomes.push({
          name,
          createdAt,
          spec,
          result: 'condition',
          detail: `${ready.status} ${ready.reason}`,
          message: ready.message ?? '',
        });
        expect(operator.exit).toBeUndefined();
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    const summary: Record<string, number> = {};
    for (const o of outcomes) {
      const key = o.result === 'rejected' ? 'rejected' : `Ready ${o.detail}`;
      summary[key] = (summary[key] ?? 0) + 1;
    }
    const examples = new Map<string, string>();
    for (const o of outcomes) {
      const key = o.result === 'rejected' ? 'rejected' : o.detail;
      if (!examples.has(key)) examples.set(key, `${o.name}: ${(o.message ?? o.detail).slice(0, 200)}`);
    }
    console.info(
      `fuzz outcomes (seed ${SEED}): ${JSON.stringify(summary)}\n${[...examples].map(([k, v]) => `  ${k} e.g. ${v}`).join('\n')}`,
    );
    // Both paths were exercised, or the generators are broken.
    expect(outcomes.filter((o) => o.result === 'rejected').length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.result === 'condition').length).toBeGreaterThan(RUNS / 5);
  });

  it('the operator stays healthy and quiet: bounded provider requests and apiserver writes per resource', async () => {
    expect(operator.exit).toBeUndefined();
    expect((await operator.get('/healthz')).status).toBe(200);
    const accepted = outcomes.filter((o) => o.result === 'condition').map((o) => o.name);
    // Quiet period: retrying resources back off, nothing loops.
    const req0 = server.requests.length;
    const api0 = proxy.requests.filter((r) => r.method !== 'GET').length;
    await new Promise((r) => setTimeout(r, 5_000));
    const quietProvider = server.requests.length - req0;
    const quietWrites = proxy.requests.filter((r) => r.method !== 'GET').length - api0;
    expect(quietProvider).toBeLessThanOrEqual(accepted.length);
    expect(quietWrites).toBeLessThanOrEqual(2 * accepted.length);

    // Per resource: POSTs carry client_name (the resource name unless the spec set one), management
    // calls the client id, which the store or the POST answers map back.
    const nameOf = new Map<string, string>();
    for (const r of server.requests) if (r.clientId && r.clientName) nameOf.set(r.clientId, r.clientName);
    const perResource = new Map<string, number>();
    for (const r of server.requests) {
      const id = managedClientId(r.path);
      const clientName = id ? nameOf.get(id) : r.clientName;
      const owner = clientName === undefined ? undefined : ownerOf(clientName);
      if (owner) perResource.set(owner, (perResource.get(owner) ?? 0) + 1);
    }
    const writes = new Map<string, number>();
    for (const r of proxy.requests) {
      if (r.method === 'GET') continue;
      const t = writeTarget(r);
      if (t) writes.set(t.client, (writes.get(t.client) ?? 0) + 1);
    }
    const age = (name: string) =>
      Date.now() - (outcomes.find((o) => o.name === name)?.createdAt ?? Date.now());
    const over = (m: Map<string, number>, budget: (ageMs: number) => number) =>
      [...m]
        .filter(([name, n]) => n > budget(age(name)))
        .map(([name, n]) => `${name}: ${n} (budget ${budget(age(name))})`);
    expect(over(perResource, providerBudget)).toEqual([]);
    expect(over(writes, writeBudget)).toEqual([]);
  });

  it('every fuzzed OidcClient can be deleted, and its clients leave the provider', async () => {
    const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclients', '--all', '--wait=false'], {
      namespace: ns.name,
    });
    expect(del.code).toBe(0);
    await waitFor(
      async () => {
        const list = await rest.get<{ items: OidcClient[] }>(
          `/apis/${GROUP}/${VERSION}/namespaces/${ns.name}/oidcclients`,
        );
        return list.items.length === 0 || undefined;
      },
      { description: 'every fuzzed OidcClient to be gone', timeoutMs: 30_000, intervalMs: 250 },
    );
    // deletionPolicy Orphan leaves clients registered on purpose; every other one is deleted.
    const orphanPolicy = new Set(
      outcomes.filter((o) => o.spec.deletionPolicy === 'Orphan').map((o) => o.name),
    );
    const left = (await server.store.list())
      .map((c) => ({
        client: String(c.metadata.client_name),
        owner: ownerOf(String(c.metadata.client_name)),
      }))
      .filter((c) => !(c.owner && orphanPolicy.has(c.owner)));
    expect(left).toEqual([]);
    expect(operator.exit).toBeUndefined();
  });
});
