// Git-driven lifecycle with a real GitOps engine: Flux's source-controller and kustomize-controller
// (built from their Go modules) pull a Git repository served on loopback and apply it to the real
// control plane; the operator registers what lands there with the real registration server. Along the
// way the README's Argo CD health checks (Lua, run by gopher-lua) and Flux health expressions are
// evaluated against the objects as they really are at each step.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { OidcClient } from '../../src/api/types.generated.js';
import {
  condition,
  type Flux,
  type FluxObject,
  fluxBinDir,
  getJson,
  installFluxCrds,
  luaHealth,
  requestReconcile,
  startFlux,
} from '../harness/flux.js';
import { type GitServer, startGitServer } from '../harness/git-server.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
  waitFor,
} from '../harness/kube.js';
import { OidcReader } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import { type RegistrationServer, startRegistrationServer } from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const EXAMPLES = resolve(import.meta.dirname, '../../examples');
const CLIENT_LUA = resolve(EXAMPLES, 'argocd/health-oidcclient.lua');
const PROVIDER_LUA = resolve(EXAMPLES, 'argocd/health-oidcprovider.lua');
const G = 'apiVersion: oidc.dcr-operator.dev/v1alpha1';

const client = (name: string, provider: string, kind: string, lines = '') => `${G}
kind: OidcClient
metadata: { name: ${name} }
spec:
  providerRef: { name: ${provider}, kind: ${kind} }
  redirectUris: [https://${name}.example.org/callback]
${lines}`;

describe('GitOps with Flux: commit, change, prune, orphan, bad spec', () => {
  let fluxDir: string;
  let flux: Flux;
  let git: GitServer;
  let server: RegistrationServer;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  let shared: string;
  const ids: Record<string, string> = {};
  // Registrations: POSTs the server answered 201 (the operator's provider health probe POSTs an
  // unparsable body, answered 400).
  const posts = () =>
    server.requests.filter(
      (q) => q.method === 'POST' && q.path.endsWith('/client-registration') && q.status === 201,
    );
  const kustomization = (name: string) =>
    getJson<FluxObject>(binDir, kubeconfigPath, `kustomization.kustomize.toolkit.fluxcd.io/${name}`, ns.name);
  const raw = <T>(resource: string, namespaced = true) =>
    getJson<T>(binDir, kubeconfigPath, resource, namespaced ? ns.name : undefined);
  /** Waits until the Kustomization has applied `sha` and its Ready condition passes `check`. */
  const waitKustomization = (
    name: string,
    what: string,
    check: (
      ready: { status: string; reason?: string; message?: string } | undefined,
      k: FluxObject,
    ) => boolean,
    timeoutMs = 60_000,
  ) =>
    waitFor(
      async () => {
        const k = await kustomization(name);
        return k && check(condition(k, 'Ready'), k) ? k : undefined;
      },
      { description: `Kustomization ${name}: ${what}`, timeoutMs, intervalMs: 500 },
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await flux.tail()}`);
    });
  const commitAndSync = async (files: Record<string, string | null>, message: string) => {
    const sha = await git.commit(files, message);
    await requestReconcile(binDir, kubeconfigPath, 'gitrepository/config', ns.name);
    return sha;
  };

  beforeAll(async () => {
    const t0 = Date.now();
    fluxDir = await fluxBinDir();
    const kc = kubeConfigFromFile(kubeconfigPath);
    [server, git, ns] = await Promise.all([
      startRegistrationServer({ mode: 'iam' }),
      startGitServer(),
      createTestNamespace(kc, 'gitops'),
    ]);
    r = new OidcReader(kc, ns.name);
    shared = `shared-${ns.name}`;
    await installFluxCrds(binDir, kubeconfigPath, fluxDir);
    flux = await startFlux({ fluxDir, kubeconfigPath });
    process.stderr.write(`[gitops] Flux built/found and started in ${Date.now() - t0} ms\n`);
    // `npm test` builds Flux before vitest starts; run alone on a clean clone, this hook builds it.
  }, 1_800_000);

  afterAll(async () => {
    // Deleting the Kustomizations while Flux and the operator still run prunes what they applied (the
    // ClusterOidcProvider too) and lets every finalizer go, so nothing outlives the test.
    if (ns && flux) {
      await kubectl(
        binDir,
        kubeconfigPath,
        ['delete', 'kustomizations,gitrepositories', '--all', '--timeout=30s'],
        {
          namespace: ns.name,
        },
      );
    }
    await op?.stop();
    await flux?.stop();
    if (shared)
      await kubectl(binDir, kubeconfigPath, ['delete', 'clusteroidcprovider', shared, '--ignore-not-found']);
    await ns?.cleanup();
    await git?.close();
    await server?.close();
  });

  it('1. a commit is applied by Flux; the Kustomization waits until the operator has registered every client', async () => {
    const sha = await git.commit(
      {
        'oidc/provider.yaml': `${G}\nkind: OidcProvider\nmetadata: { name: iam }\nspec:\n  issuerUrl: ${server.issuer}\n`,
        'oidc/cluster-provider.yaml': `${G}\nkind: ClusterOidcProvider\nmetadata: { name: ${shared} }\nspec:\n  issuerUrl: ${server.issuer}\n`,
        'oidc/shop.yaml': client('shop', 'iam', 'OidcProvider'),
        'oidc/legacy.yaml': client('legacy', 'iam', 'OidcProvider', '  deletionPolicy: Orphan\n'),
        'oidc/reports.yaml': client('reports', shared, 'ClusterOidcProvider'),
        'plain/plain.yaml': client('plain', 'iam', 'OidcProvider'),
      },
      'OIDC clients for team A',
    );
    // The documented Kustomization (examples/flux), pointed at this repository and namespace, with
    // intervals in seconds; a second one without healthCheckExprs shows kstatus' own rules.
    const docs = parseAllDocuments(await readFile(resolve(EXAMPLES, 'flux/oidc-clients.yaml'), 'utf8'));
    const documented = docs.map((d) => d.toJS()).find((d) => d.kind === 'Kustomization');
    const ks = (name: string, path: string, exprs: unknown) => ({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name },
      spec: {
        ...documented.spec,
        interval: '1m',
        retryInterval: '2s',
        timeout: '8s',
        path,
        targetNamespace: ns.name,
        sourceRef: { kind: 'GitRepository', name: 'config' },
        healthCheckExprs: exprs,
      },
    });
    await kubectlApply(
      binDir,
      kubeconfigPath,
      [
        {
          apiVersion: 'source.toolkit.fluxcd.io/v1',
          kind: 'GitRepository',
          metadata: { name: 'config' },
          spec: { interval: '1m', timeout: '10s', url: git.url, ref: { branch: 'main' } },
        },
        ks('oidc-clients', './oidc', documented.spec.healthCheckExprs),
        ks('plain', './plain', undefined),
      ]
        .map((o) => JSON.stringify(o))
        .join('\n---\n'),
      ns.name,
    );
    // Flux applied the clients; no operator runs yet. The apiserver serves them with the CRD's status
    // default, and both Flux (kstatus: observedGeneration 0 != 1, Reconciling=True) and the Argo CD
    // health check call them in progress.
    const fresh = await waitFor(() => raw<OidcClient>('oidcclient/shop'), {
      description: 'Flux to apply OidcClient shop',
      timeoutMs: 60_000,
    });
    expect(fresh.metadata.generation).toBe(1);
    expect(fresh.status?.observedGeneration).toBe(0);
    expect(fresh.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'Unknown', 'Pending'],
      ['Reconciling', 'True', 'Pending'],
    ]);
    expect((await luaHealth(fluxDir, CLIENT_LUA, [fresh]))[0]?.status).toBe('Progressing');
    for (const name of ['oidc-clients', 'plain']) {
      const k = await waitKustomization(name, 'health check times out on the unreconciled clients', (c) =>
        Boolean(c?.status === 'False' && c.reason === 'HealthCheckFailed'),
      );
      process.stderr.write(`[gitops] ${name} before the operator: ${condition(k, 'Ready')?.message}\n`);
      expect(condition(k, 'Ready')?.message).toMatch(
        name === 'plain'
          ? `OidcClient/${ns.name}/plain status: 'InProgress'`
          : `OidcClient/${ns.name}/shop status: 'InProgress'`,
      );
    }
    expect(posts()).toHaveLength(0);

    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      deletionTimeoutMs: 10_000,
      // Provider status comes from the operator's provider checks (Flux's expressions read it).
      providerCheckIntervalMs: 60_000,
      checkClusterProviders: (name) => name === shared,
    });
    for (const name of ['oidc-clients', 'plain']) {
      const k = await waitKustomization(name, `Ready for ${sha}`, (c, o) =>
        Boolean(c?.status === 'True' && o.status?.lastAppliedRevision?.endsWith(sha)),
      );
      expect(condition(k, 'Healthy')?.status).toBe('True');
    }
    for (const name of ['shop', 'legacy', 'reports', 'plain']) {
      const cr = await r.waitReady(name);
      ids[name] = cr.status?.clientId as string;
      expect((await server.store.get(ids[name] as string))?.metadata.redirect_uris).toEqual([
        `https://${name}.example.org/callback`,
      ]);
      expect((await r.secretValues(`${name}-oidc-client`))?.client_id).toBe(ids[name]);
    }
    expect(posts()).toHaveLength(4);
    // Argo CD's checks on the same objects: clients and both provider kinds are Healthy.
    const objs = await Promise.all(['shop', 'legacy', 'reports'].map((n) => raw(`oidcclient/${n}`)));
    expect((await luaHealth(fluxDir, CLIENT_LUA, objs)).map((h) => h.status)).toEqual([
      'Healthy',
      'Healthy',
      'Healthy',
    ]);
    const providers = [await raw('oidcprovider/iam'), await raw(`clusteroidcprovider/${shared}`, false)];
    expect((await luaHealth(fluxDir, PROVIDER_LUA, providers)).map((h) => h.status)).toEqual([
      'Healthy',
      'Healthy',
    ]);
  });

  it('2. a changed redirect URI in Git reaches the provider', async () => {
    const sha = await commitAndSync(
      {
        'oidc/shop.yaml': client('shop', 'iam', 'OidcProvider').replace(
          'shop.example.org/callback',
          'shop.example.org/cb2',
        ),
      },
      'shop: new callback',
    );
    await waitKustomization('oidc-clients', `Ready for ${sha}`, (c, k) =>
      Boolean(c?.status === 'True' && k.status?.lastAppliedRevision?.endsWith(sha)),
    );
    const cr = await r.waitReady('shop');
    expect(cr.metadata.generation).toBe(2);
    expect(cr.status?.clientId).toBe(ids.shop);
    expect((await server.store.get(ids.shop as string))?.metadata.redirect_uris).toEqual([
      'https://shop.example.org/cb2',
    ]);
    expect(posts()).toHaveLength(4);
  });

  it('3. a client removed from Git is pruned, deleted at the provider, its Secrets gone', async () => {
    const sha = await commitAndSync({ 'oidc/shop.yaml': null }, 'shop retired');
    await waitKustomization('oidc-clients', `Ready for ${sha}`, (c, k) =>
      Boolean(c?.status === 'True' && k.status?.lastAppliedRevision?.endsWith(sha)),
    );
    await waitFor(async () => (await r.client('shop')) === undefined, { description: 'shop pruned' });
    expect(await server.store.get(ids.shop as string)).toBeUndefined();
    expect(
      server.requests.filter((q) => q.method === 'DELETE' && q.path.endsWith(`/${ids.shop}`)),
    ).toHaveLength(1);
    await waitFor(
      async () => !(await r.secret('shop-oidc-client')) && !(await r.secret('shop-oidc-registration')),
      { description: "shop's Secrets gone" },
    );
  });

  it('4. a deletionPolicy: Orphan client removed from Git stays registered, its token kept', async () => {
    const sha = await commitAndSync({ 'oidc/legacy.yaml': null }, 'legacy handed over');
    await waitKustomization('oidc-clients', `Ready for ${sha}`, (c, k) =>
      Boolean(c?.status === 'True' && k.status?.lastAppliedRevision?.endsWith(sha)),
    );
    await waitFor(async () => (await r.client('legacy')) === undefined, { description: 'legacy pruned' });
    expect(await server.store.get(ids.legacy as string)).toBeDefined();
    expect(
      server.requests.filter((q) => q.method === 'DELETE' && q.path.endsWith(`/${ids.legacy}`)),
    ).toHaveLength(0);
    const mgmt = await r.secretValues('legacy-oidc-registration');
    expect(mgmt?.registration_client_uri).toBe(`${server.registrationEndpoint}/${ids.legacy}`);
    const res = await fetch(mgmt?.registration_client_uri as string, {
      headers: { authorization: `Bearer ${mgmt?.registration_access_token}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { client_id: string }).client_id).toBe(ids.legacy);
  });

  it('5. a bad spec: Flux reports the apiserver message, a refused or stuck client holds the Kustomization, nothing is registered', async () => {
    // (a) The apiserver refuses the spec: Flux's dry-run fails with its message, nothing is applied.
    let sha = await commitAndSync(
      { 'oidc/bad.yaml': client('bad', 'iam', 'OidcProvider', '  deletionPolicy: Sometimes\n') },
      'bad: typo in deletionPolicy',
    );
    let k = await waitKustomization('oidc-clients', `not Ready for ${sha}`, (c) =>
      Boolean(c?.status === 'False' && c.message?.includes('Sometimes')),
    );
    process.stderr.write(`[gitops] bad spec: ${condition(k, 'Ready')?.message}\n`);
    expect(condition(k, 'Ready')?.reason).toBe('ReconciliationFailed');
    expect(condition(k, 'Ready')?.message).toContain('spec.deletionPolicy: Unsupported value: "Sometimes"');
    expect(await r.client('bad')).toBeUndefined();
    expect(posts()).toHaveLength(4);

    // (b) The provider refuses a valid-looking spec (Stalled) and (c) a provider that does not answer
    // keeps a client retrying (Reconciling): the Kustomization fails its health check and says which.
    server.faults.add({
      method: 'POST',
      pathPattern: /client-registration$/,
      status: 400,
      body: { error: 'invalid_redirect_uri', error_description: 'redirect_uris not allowed here' },
      times: Number.POSITIVE_INFINITY,
    });
    sha = await commitAndSync(
      {
        'oidc/bad.yaml': client('bad', 'iam', 'OidcProvider'),
        'oidc/down.yaml': `${G}\nkind: OidcProvider\nmetadata: { name: down }\nspec:\n  issuerUrl: http://127.0.0.1:9/\n`,
        'oidc/waiting.yaml': client('waiting', 'down', 'OidcProvider'),
      },
      'bad: fixed typo; waiting on a provider that is down',
    );
    k = await waitKustomization('oidc-clients', `health check failed for ${sha}`, (c, o) =>
      Boolean(
        c?.status === 'False' &&
          c.reason === 'HealthCheckFailed' &&
          o.status?.inventory?.entries?.some((e) => e.id.includes('_bad_')),
      ),
    );
    const msg = condition(k, 'Ready')?.message ?? '';
    process.stderr.write(`[gitops] refused + stuck clients: ${msg}\n`);
    expect(msg).toMatch(
      /OidcClient\/[^/]+\/bad status: 'Failed'|OidcProvider\/[^/]+\/down status: 'Failed'|OidcClient\/[^/]+\/waiting status: 'InProgress'/,
    );
    const bad = await r.waitReady('bad', { status: 'False', reason: 'InvalidMetadata' });
    expect(r.condition(bad, 'Stalled')?.status).toBe('True');
    const waiting = await waitFor(
      async () => {
        const cr = await r.client('waiting');
        return r.condition(cr, 'Ready')?.reason === 'ProviderUnavailable' ? cr : undefined;
      },
      { description: 'waiting: ProviderUnavailable' },
    );
    const down = await waitFor(
      () =>
        raw<{ status?: { conditions?: unknown[] } }>('oidcprovider/down').then(
          (p) => p?.status?.conditions && p,
        ),
      {
        description: 'provider down has a status',
      },
    );
    // What each tool says about them. Flux: the expressions of examples/flux are evaluated by
    // kustomize-controller itself; Argo CD: the README's Lua.
    expect((await luaHealth(fluxDir, CLIENT_LUA, [bad, waiting])).map((h) => h.status)).toEqual([
      'Degraded',
      'Progressing',
    ]);
    const [downHealth] = await luaHealth(fluxDir, PROVIDER_LUA, [down]);
    expect(downHealth?.status).toBe('Degraded');
    expect(downHealth?.message).toBeTruthy();
    server.faults.clear();
    // Nothing was registered by the refused or the waiting client.
    expect(posts()).toHaveLength(4);
    expect(server.requests.some((q) => q.method === 'POST' && q.status === 400 && q.fault)).toBe(true);
    expect((await server.store.list()).map((c) => c.clientId).sort()).toEqual(
      [ids.legacy, ids.reports, ids.plain].sort(),
    );
    expect(await r.secret('bad-oidc-client')).toBeUndefined();
    expect(await r.secret('waiting-oidc-client')).toBeUndefined();
  });
});
