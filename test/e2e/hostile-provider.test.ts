// A provider that answers badly or with hostile content, one table row per answer, on registration
// (POST) and on management (GET, PUT). For each: a clear Ready condition, nothing new stored in the
// management or application Secret, no credential sent anywhere new (a foreign loopback listener
// stays empty), and no hot loop (requests to the provider are counted). Real kube-apiserver, real
// node-oidc-provider with fault injection.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ForeignListener, startForeignListener } from '../harness/foreign-listener.js';
import {
  createTestNamespace,
  kubeConfigFromFile,
  kubectl,
  kubectlApply,
  type TestNamespace,
} from '../harness/kube.js';
import { clientYaml, OidcReader, providerYaml } from '../harness/oidc.js';
import { type InProcessOperator, startInProcessOperator } from '../harness/operator.js';
import {
  type FaultRule,
  type RegistrationServer,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

const kubeconfigPath = inject('kubeconfigPath');
const binDir = inject('binDir');
const kc = kubeConfigFromFile(kubeconfigPath);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long each row watches for repeated requests after the condition appeared. */
const WINDOW_MS = 2_000;
const REQUEST_TIMEOUT_MS = 1_000;
const OVERSIZED = 'x'.repeat(1024 * 1024 + 16);

type Fault = Omit<FaultRule, 'method' | 'pathPattern' | 'times'>;

interface Row {
  name: string;
  /** The answer, given the client id (for management calls) and the foreign listener's origin. */
  fault: (ctx: { id: string; foreign: string; endpoint: string }) => Fault;
  reason: string;
  message: RegExp;
  /** Most requests of the faulted method allowed from the trigger to the end of the window. */
  maxRequests: number;
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}): Fault => ({
  status,
  body,
  headers,
});

// Hostile answers that apply to any call that expects a registration back.
const common = (status: number): Row[] => [
  {
    name: 'oversized body',
    fault: () => json(OVERSIZED, status, { 'content-type': 'application/json' }),
    reason: 'UnexpectedResponse',
    message: /larger than 1048576 bytes/,
    maxRequests: status === 201 ? 1 : 2,
  },
  {
    name: 'not JSON',
    fault: () => json('<html><body>maintenance</body></html>', status, { 'content-type': 'text/html' }),
    reason: 'UnexpectedResponse',
    message: /body is not JSON/,
    maxRequests: status === 201 ? 1 : 2,
  },
  {
    name: 'a JSON array',
    fault: ({ id }) => json([{ client_id: id }], status),
    reason: 'UnexpectedResponse',
    message: /not a JSON object/,
    maxRequests: status === 201 ? 1 : 2,
  },
  {
    name: 'no client_id',
    fault: () => json({ client_secret: 'leak-me', registration_access_token: 'leak-me-too' }, status),
    reason: 'UnexpectedResponse',
    message: /no client_id/,
    maxRequests: status === 201 ? 1 : 2,
  },
  {
    name: 'JSON served as text/html',
    fault: ({ id, endpoint }) =>
      json(
        {
          client_id: id,
          client_secret: 's',
          registration_access_token: 't',
          registration_client_uri: `${endpoint}/${id}`,
        },
        status,
        { 'content-type': 'text/html; charset=utf-8' },
      ),
    reason: 'UnexpectedResponse',
    message: /"text\/html", not application\/json/,
    maxRequests: status === 201 ? 1 : 2,
  },
  {
    name: '3xx redirect to another host',
    fault: ({ id, foreign }) => ({
      status: 307,
      headers: { location: `${foreign}/iam/api/client-registration/${id}` },
    }),
    reason: 'UnexpectedResponse',
    message: /HTTP 307 redirect to http:\/\/127\.0\.0\.1:\d+\); redirects are not followed/,
    maxRequests: 2,
  },
  {
    name: 'a body slower than the request timeout',
    fault: ({ id, endpoint }) => ({
      ...json({ client_id: id, registration_client_uri: `${endpoint}/${id}` }, status),
      trickle: { intervalMs: 200 },
    }),
    reason: 'ProviderUnavailable',
    message: new RegExp(`no answer within ${REQUEST_TIMEOUT_MS} ms`),
    // One attempt per reconcile for POST (a create is not retried), two for GET/PUT; queue backoff.
    maxRequests: 6,
  },
];

const management: Row[] = [
  ...common(200),
  {
    name: 'another client_id',
    fault: () => json({ client_id: 'someone-else', registration_access_token: 'someone-elses-token' }),
    reason: 'ClientMismatch',
    message: /about client someone-else, not /,
    maxRequests: 1,
  },
  {
    name: 'registration_client_uri on another origin',
    fault: ({ foreign }) => ({
      rewrite: (b) => ({
        ...b,
        registration_client_uri: `${foreign}/iam/api/client-registration/${b.client_id}`,
      }),
    }),
    reason: 'UntrustedEndpoint',
    message: /names a new registration_client_uri that is not trusted: it is on http:\/\/127/,
    maxRequests: 1,
  },
];

describe('hostile provider answers', () => {
  let server: RegistrationServer;
  let foreign: ForeignListener;
  let ns: TestNamespace;
  let op: InProcessOperator | undefined;
  let r: OidcReader;
  const seen: string[] = [];
  const apply = (yaml: string) => kubectlApply(binDir, kubeconfigPath, yaml, ns.name);
  const count = (method: string, path: RegExp, since: number) =>
    server.requests.slice(since).filter((q) => q.method === method && path.test(q.path)).length;
  const spec = (name: string, uri: string) => clientYaml(name, 'iam', `  redirectUris: [${uri}]\n`);

  beforeAll(async () => {
    [server, foreign] = await Promise.all([startRegistrationServer(), startForeignListener()]);
    ns = await createTestNamespace(kc, 'hostile-provider');
    r = new OidcReader(kc, ns.name);
    await apply(providerYaml('iam', server.issuer));
    op = await startInProcessOperator({
      kubeconfigPath,
      namespace: ns.name,
      providerRequestTimeoutMs: REQUEST_TIMEOUT_MS,
      providerRetries: 1,
      deletionTimeoutMs: 2_000,
    });
  });

  afterAll(async () => {
    if (seen.length > 0) console.info(`hostile answers:\n${seen.join('\n')}`);
    await op?.stop();
    await ns?.cleanup();
    await Promise.all([server?.close(), foreign?.close()]);
  });

  describe('on registration (POST)', () => {
    const rows = common(201).map((row, i) => ({ ...row, i }));
    it.each(rows)('$name', async (row) => {
      const name = `post-${row.i}`;
      const endpoint = server.registrationEndpoint;
      const path = /\/client-registration$/;
      const since = server.requests.length;
      server.faults.add({
        method: 'POST',
        pathPattern: path,
        times: Number.POSITIVE_INFINITY,
        ...row.fault({ id: `fake-${row.i}`, foreign: foreign.origin, endpoint }),
      });
      try {
        await apply(spec(name, `https://${name}.example.org/cb`));
        const cr = await r.waitReady(name, { status: 'False', reason: row.reason });
        const message = r.condition(cr, 'Ready')?.message ?? '';
        expect(message).toMatch(row.message);
        expect(message).not.toContain('leak-me');
        await sleep(WINDOW_MS);
        const n = count('POST', path, since);
        expect(n).toBeGreaterThanOrEqual(1);
        expect(n).toBeLessThanOrEqual(row.maxRequests);
        expect(await r.secret(`${name}-oidc-client`)).toBeUndefined();
        const mgmt = await r.secretValues(`${name}-oidc-registration`);
        expect(mgmt?.client_id).toBeUndefined();
        expect(mgmt?.registration_access_token).toBeUndefined();
        expect(foreign.requests).toEqual([]);
        seen.push(`POST ${row.name}: ${n} request(s); Ready=False ${row.reason}: ${message}`);
      } finally {
        server.faults.clear();
      }
      const del = await kubectl(binDir, kubeconfigPath, ['delete', 'oidcclient', name, '--timeout=20s'], {
        namespace: ns.name,
      });
      expect(del.code, del.stderr).toBe(0);
    });
  });

  // Each row has its own client and a fault on that client's path only, so rows run side by side.
  describe.each(['GET', 'PUT'] as const)('on management (%s)', (method) => {
    const rows = management.map((row, i) => ({ ...row, i }));
    it.concurrent.each(rows)('$name', async (row) => {
      const name = `${method.toLowerCase()}-${row.i}`;
      await apply(spec(name, `https://${name}.example.org/cb`));
      const id = (await r.waitReady(name)).status?.clientId as string;
      const mgmtBefore = await r.secretValues(`${name}-oidc-registration`);
      const appBefore = await r.secretValues(`${name}-oidc-client`);
      const path = new RegExp(`/client-registration/${id}$`);
      const since = server.requests.length;
      server.faults.add({
        method,
        pathPattern: path,
        times: Number.POSITIVE_INFINITY,
        ...row.fault({ id, foreign: foreign.origin, endpoint: server.registrationEndpoint }),
      });
      // A spec change: GET at once, then PUT for the new redirect URI.
      await apply(spec(name, `https://${name}.example.org/changed`));
      const cr = await r.waitReady(name, { status: 'False', reason: row.reason, timeoutMs: 20_000 });
      const message = r.condition(cr, 'Ready')?.message ?? '';
      expect(message).toMatch(row.message);
      expect(message).not.toContain('someone-elses-token');
      await sleep(WINDOW_MS);
      const n = count(method, path, since);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(row.maxRequests);
      if (method === 'GET') expect(count('PUT', path, since)).toBe(0);
      expect(await r.secretValues(`${name}-oidc-registration`)).toEqual(mgmtBefore);
      expect(await r.secretValues(`${name}-oidc-client`)).toEqual(appBefore);
      expect(foreign.requests).toEqual([]);
      seen.push(`${method} ${row.name}: ${n} request(s); Ready=False ${row.reason}: ${message}`);
    });
  });

  it('keeps working for well-behaved answers afterwards', async () => {
    server.faults.clear();
    await apply(spec('after', 'https://after.example.org/cb'));
    const cr = await r.waitReady('after');
    expect(await server.store.get(cr.status?.clientId as string)).toBeDefined();
    expect(op?.controller.health(90_000).ok).toBe(true);
    expect(foreign.requests).toEqual([]);
    const logs = op?.logLines.join('') ?? '';
    expect(logs).not.toContain('leak-me');
    expect(logs).not.toContain('someone-elses-token');
  });
});
