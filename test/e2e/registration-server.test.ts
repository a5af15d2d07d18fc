// The INDIGO IAM-like registration server used by the e2e tests and the demo: its RFC 7591/7592
// behaviour in every mode, fault injection, and out-of-band store changes.
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type RegistrationServer,
  type RegistrationServerOptions,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

interface CallOptions {
  bearer?: string;
  json?: unknown;
  basic?: { id: string; secret: string };
  form?: Record<string, string>;
}

async function call(agent: Agent, method: string, url: string, opts: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (opts.bearer) headers.authorization = `Bearer ${opts.bearer}`;
  if (opts.basic) {
    headers.authorization = `Basic ${Buffer.from(`${opts.basic.id}:${opts.basic.secret}`).toString('base64')}`;
  }
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(opts.form).toString();
  }
  const res = await request(url, { dispatcher: agent, method, headers, body });
  const text = await res.body.text();
  const parsed: unknown = text ? JSON.parse(text) : {};
  return { status: res.statusCode, headers: res.headers, body: asRecord(parsed) };
}

function asRecord(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('expected a JSON object');
  return value as Record<string, unknown>;
}

function str(value: unknown): string {
  if (typeof value !== 'string') throw new Error(`expected a string, got ${JSON.stringify(value)}`);
  return value;
}

// Metadata as the operator would send it, in the shape of IAM's documentation example.
const METADATA = {
  client_name: 'registration-server-test',
  redirect_uris: ['http://localhost:8080/callback'],
  contacts: ['ops@example.org'],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: 'openid profile email offline_access',
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  response_types: ['code'],
};

interface Registered {
  clientId: string;
  clientSecret: string;
  rat: string;
  uri: string;
}

async function register(server: RegistrationServer, agent: Agent, iat?: string): Promise<Registered> {
  const res = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA, bearer: iat });
  expect(res.status).toBe(201);
  return {
    clientId: str(res.body.client_id),
    clientSecret: str(res.body.client_secret),
    rat: str(res.body.registration_access_token),
    uri: str(res.body.registration_client_uri),
  };
}

function clientCredentials(server: RegistrationServer, agent: Agent, c: Registered): Promise<Reply> {
  return call(agent, 'POST', server.tokenEndpoint, {
    basic: { id: c.clientId, secret: c.clientSecret },
    form: { grant_type: 'client_credentials' },
  });
}

const MODES: { name: string; opts: RegistrationServerOptions }[] = [
  { name: 'iam', opts: { mode: 'iam' } },
  { name: 'rotating', opts: { mode: 'rotating' } },
  { name: 'initial-access-token', opts: { initialAccessToken: 'iat-for-tests' } },
  { name: 'tls', opts: { tls: true } },
];

describe.each(MODES)('registration server, $name mode', ({ opts }) => {
  let server: RegistrationServer;
  let agent: Agent;
  let client: Registered;
  const rotating = opts.mode === 'rotating';

  beforeAll(async () => {
    server = await startRegistrationServer(opts);
    // With tls, `ca` replaces the default trust store: only the server's private CA is trusted.
    agent = new Agent(server.caPem ? { connect: { ca: server.caPem } } : {});
  });
  afterAll(async () => {
    await server?.close();
    await agent?.close();
  });

  it('advertises the registration endpoint in discovery', async () => {
    expect(server.issuer).toMatch(opts.tls ? /^https:\/\/127\.0\.0\.1:\d+$/ : /^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.registrationEndpoint).toBe(`${server.issuer}/iam/api/client-registration`);
    const res = await call(agent, 'GET', `${server.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.body.issuer).toBe(server.issuer);
    expect(res.body.registration_endpoint).toBe(server.registrationEndpoint);
    expect(res.body.token_endpoint).toBe(server.tokenEndpoint);
  });

  if (opts.initialAccessToken) {
    it('rejects registration without the initial access token', async () => {
      const missing = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA });
      expect(missing.status).toBe(401);
      expect(missing.body.error).toBe('invalid_token');
      const wrong = await call(agent, 'POST', server.registrationEndpoint, {
        json: METADATA,
        bearer: 'nope',
      });
      expect(wrong.status).toBe(401);
      expect(await server.store.list()).toEqual([]);
    });
  }

  it('registers a client (201 with credentials, RAT and management URI)', async () => {
    client = await register(server, agent, opts.initialAccessToken);
    expect(client.uri).toBe(`${server.registrationEndpoint}/${client.clientId}`);
    const stored = await server.store.get(client.clientId);
    expect(stored?.metadata.client_secret).toBe(client.clientSecret);
    expect(stored?.metadata.redirect_uris).toEqual(METADATA.redirect_uris);
  });

  it(`reads the client with its RAT (${rotating ? 'rotated' : 'unchanged'})`, async () => {
    const res = await call(agent, 'GET', client.uri, { bearer: client.rat });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ client_id: client.clientId, client_secret: client.clientSecret });
    expect(res.body.registration_client_uri).toBe(client.uri);
    const rat = str(res.body.registration_access_token);
    if (rotating) {
      expect(rat).not.toBe(client.rat);
      expect((await call(agent, 'GET', client.uri, { bearer: client.rat })).status).toBe(401);
      client.rat = rat;
    } else {
      expect(rat).toBe(client.rat);
    }
  });

  it(`updates the client with PUT (${rotating ? 'rotated' : 'unchanged'} RAT)`, async () => {
    const redirectUris = ['http://localhost:8080/callback', 'http://localhost:9090/other'];
    const res = await call(agent, 'PUT', client.uri, {
      bearer: client.rat,
      json: { ...METADATA, client_id: client.clientId, redirect_uris: redirectUris },
    });
    expect(res.status).toBe(200);
    expect(res.body.redirect_uris).toEqual(redirectUris);
    expect(res.body.client_secret).toBe(client.clientSecret);
    const rat = str(res.body.registration_access_token);
    if (rotating) {
      expect(rat).not.toBe(client.rat);
      const old = await call(agent, 'GET', client.uri, { bearer: client.rat });
      expect(old.status).toBe(401);
      expect(old.body.error).toBe('invalid_token');
      client.rat = rat;
    } else {
      expect(rat).toBe(client.rat);
      expect((await call(agent, 'GET', client.uri, { bearer: rat })).status).toBe(200);
    }
    expect((await server.store.get(client.clientId))?.metadata.redirect_uris).toEqual(redirectUris);
  });

  it('issues a client_credentials token to the issued credentials', async () => {
    const res = await clientCredentials(server, agent, client);
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('Bearer');
    expect(typeof res.body.access_token).toBe('string');
  });

  it('deletes the client: 204, then GET 401 and token 401 invalid_client', async () => {
    expect((await call(agent, 'DELETE', client.uri, { bearer: client.rat })).status).toBe(204);
    const get = await call(agent, 'GET', client.uri, { bearer: client.rat });
    expect(get.status).toBe(401);
    expect(get.body.error).toBe('invalid_token');
    const token = await clientCredentials(server, agent, client);
    expect(token.status).toBe(401);
    expect(token.body.error).toBe('invalid_client');
    expect(await server.store.get(client.clientId)).toBeUndefined();
  });

  if (opts.tls) {
    it('is not trusted without its private CA', async () => {
      const untrusting = new Agent();
      try {
        await expect(
          call(untrusting, 'GET', `${server.issuer}/.well-known/openid-configuration`),
        ).rejects.toThrow(/certificate/);
      } finally {
        await untrusting.close();
      }
    });
  }
});

describe('registration server quirks the operator must respect', () => {
  let server: RegistrationServer;
  let agent: Agent;

  beforeAll(async () => {
    server = await startRegistrationServer();
    agent = new Agent();
  });
  afterAll(async () => {
    await server?.close();
    await agent?.close();
  });

  it('PUT rejects read-only fields echoed from GET and requires client_id', async () => {
    const c = await register(server, agent);
    const read = await call(agent, 'GET', c.uri, { bearer: c.rat });
    const echoed = await call(agent, 'PUT', c.uri, { bearer: c.rat, json: read.body });
    expect(echoed.status).toBe(400);
    expect(echoed.body.error).toBe('invalid_request');
    const noId = await call(agent, 'PUT', c.uri, { bearer: c.rat, json: METADATA });
    expect(noId.status).toBe(400);
    const wrongSecret = await call(agent, 'PUT', c.uri, {
      bearer: c.rat,
      json: { ...METADATA, client_id: c.clientId, client_secret: 'not-it' },
    });
    expect(wrongSecret.status).toBe(400);
  });

  it('PUT replaces the registration: omitted fields fall back to defaults', async () => {
    const c = await register(server, agent);
    const res = await call(agent, 'PUT', c.uri, {
      bearer: c.rat,
      json: { client_id: c.clientId, redirect_uris: METADATA.redirect_uris },
    });
    expect(res.status).toBe(200);
    expect(res.body.grant_types).toEqual(['authorization_code']);
    expect(res.body.scope).toBeUndefined();
    expect(res.body.client_secret).toBe(c.clientSecret);
  });

  it('answers 400 invalid_redirect_uri / invalid_client_metadata with a description', async () => {
    const badUri = await call(agent, 'POST', server.registrationEndpoint, {
      json: { ...METADATA, redirect_uris: ['https://app.example/cb#fragment'] },
    });
    expect(badUri.status).toBe(400);
    expect(badUri.body).toMatchObject({
      error: 'invalid_redirect_uri',
      error_description: expect.any(String),
    });
    const badScope = await call(agent, 'POST', server.registrationEndpoint, {
      json: { ...METADATA, scope: 'openid not-a-scope' },
    });
    expect(badScope.status).toBe(400);
    expect(badScope.body.error).toBe('invalid_client_metadata');
  });

  it('drops unknown metadata silently', async () => {
    const res = await call(agent, 'POST', server.registrationEndpoint, {
      json: { ...METADATA, custom_field: 'x' },
    });
    expect(res.status).toBe(201);
    expect(res.body).not.toHaveProperty('custom_field');
  });

  it('revokes a RAT that is presented for another client id', async () => {
    const c = await register(server, agent);
    const other = await call(agent, 'GET', `${server.registrationEndpoint}/not-this-client`, {
      bearer: c.rat,
    });
    expect(other.status).toBe(401);
    expect((await call(agent, 'GET', c.uri, { bearer: c.rat })).status).toBe(401);
  });

  it('can hide registration_endpoint from discovery while registration still works', async () => {
    const hidden = await startRegistrationServer({ advertiseRegistrationEndpoint: false });
    try {
      const discovery = await call(agent, 'GET', `${hidden.issuer}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(discovery.body).not.toHaveProperty('registration_endpoint');
      expect(discovery.body.token_endpoint).toBe(hidden.tokenEndpoint);
      await register(hidden, agent);
    } finally {
      await hidden.close();
    }
  });
});

describe('registration server fault injection and store', () => {
  let server: RegistrationServer;
  let agent: Agent;
  const discoveryUrl = (): string => `${server.issuer}/.well-known/openid-configuration`;

  beforeAll(async () => {
    server = await startRegistrationServer();
    agent = new Agent();
  });
  afterAll(async () => {
    await server?.close();
    await agent?.close();
  });

  it('answers an injected status with headers and body, once by default', async () => {
    server.faults.add({
      method: 'post',
      pathPattern: /\/client-registration$/,
      status: 503,
      headers: { 'Retry-After': '2' },
      body: { error: 'temporarily_unavailable' },
    });
    const before = server.requests.length;
    const failed = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA });
    expect(failed.status).toBe(503);
    expect(failed.headers['retry-after']).toBe('2');
    expect(failed.body.error).toBe('temporarily_unavailable');
    expect(await server.store.list()).toEqual([]);
    await register(server, agent);
    expect(server.requests.slice(before).map((r) => [r.method, r.path, r.status])).toEqual([
      ['POST', '/iam/api/client-registration', 503],
      ['POST', '/iam/api/client-registration', 201],
    ]);
  });

  it('matches method and path, applies `times` times and can be cleared', async () => {
    server.faults.add({ method: 'PUT', status: 500 });
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(200);
    server.faults.clear();
    server.faults.add({ pathPattern: /openid-configuration/, status: 429, times: 2 });
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(429);
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(429);
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(200);
    server.faults.add({ status: 502, times: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 3; i++) expect((await call(agent, 'GET', discoveryUrl())).status).toBe(502);
    server.faults.clear();
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(200);
  });

  it('adds latency and then passes through', async () => {
    server.faults.add({ delayMs: 200 });
    const started = performance.now();
    const res = await call(agent, 'GET', discoveryUrl());
    expect(res.status).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('drops the connection without answering', async () => {
    server.faults.add({ drop: true });
    await expect(call(agent, 'GET', `${discoveryUrl()}?q=secret`)).rejects.toThrow();
    expect(server.requests.at(-1)).toEqual({
      method: 'GET',
      path: '/.well-known/openid-configuration',
      status: 0,
      at: expect.any(Number),
      fault: 'drop',
    });
    expect((await call(agent, 'GET', discoveryUrl())).status).toBe(200);
  });

  it('resets the connection (TCP RST) and names the client of a faulted registration', async () => {
    server.faults.add({ method: 'POST', reset: true });
    const error = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA }).catch(
      (e: unknown) => e,
    );
    expect(String((error as { code?: string }).code ?? error)).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    // The server never saw it; the injector read the body to say whose registration it was.
    expect(server.requests.at(-1)).toMatchObject({
      method: 'POST',
      status: 0,
      fault: 'reset',
      clientName: METADATA.client_name,
    });
  });

  it.each(['drop', 'hang'] as const)(
    'swallow %s: the client is registered, the answer never arrives',
    async (how) => {
      const before = new Set((await server.store.list()).map((c) => c.clientId));
      server.faults.add({ method: 'POST', swallow: how });
      const error = await Promise.race([
        call(agent, 'POST', server.registrationEndpoint, { json: METADATA }).then(
          () => 'answered',
          (e: unknown) => e,
        ),
        new Promise((resolve) => setTimeout(() => resolve('hanging'), 1_500)),
      ]);
      if (how === 'hang') expect(error).toBe('hanging');
      else expect(error).toBeInstanceOf(Error);
      const created = (await server.store.list()).filter((c) => !before.has(c.clientId));
      expect(created).toHaveLength(1);
      expect(server.requests.at(-1)).toMatchObject({
        method: 'POST',
        status: 201,
        fault: `swallow-${how}`,
        clientId: created[0]?.clientId,
        clientName: METADATA.client_name,
      });
      expect(server.requests.at(-1)?.answeredAt).toBeUndefined();
    },
  );

  it('applies a rule with a probability only to that share of requests', async () => {
    server.faults.add({ pathPattern: /openid-configuration/, status: 503, probability: 0.5, times: 1000 });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await call(agent, 'GET', discoveryUrl())).status);
    server.faults.clear();
    const faulted = statuses.filter((s) => s === 503).length;
    expect(faulted).toBeGreaterThan(5);
    expect(faulted).toBeLessThan(35);
    expect(statuses.filter((s) => s === 200)).toHaveLength(40 - faulted);
  });

  it('calls onAnswered once the real answer was sent, with the issued client_id', async () => {
    const seen: { status: number; clientId?: string }[] = [];
    server.faults.add({
      method: 'POST',
      onAnswered: (r) => seen.push({ status: r.status, clientId: r.clientId }),
    });
    const c = await register(server, agent);
    expect(seen).toEqual([{ status: 201, clientId: c.clientId }]);
    expect(server.requests.at(-1)).toMatchObject({ status: 201, clientId: c.clientId, fault: 'observed' });
    expect(server.requests.at(-1)?.answeredAt).toBeGreaterThanOrEqual(server.requests.at(-1)?.at ?? Infinity);
  });

  it('store.update changes what the server returns (drift)', async () => {
    const c = await register(server, agent);
    await server.store.update(c.clientId, { client_name: 'changed elsewhere', contacts: undefined });
    const res = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(res.status).toBe(200);
    expect(res.body.client_name).toBe('changed elsewhere');
    expect(res.body).not.toHaveProperty('contacts');
    await expect(server.store.update('no-such-client', {})).rejects.toThrow();
  });

  it('store.delete: management calls 401, token 401 invalid_client', async () => {
    const c = await register(server, agent);
    await server.store.delete(c.clientId);
    const get = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(get.status).toBe(401);
    expect(get.body.error).toBe('invalid_token');
    expect((await call(agent, 'DELETE', c.uri, { bearer: c.rat })).status).toBe(401);
    const token = await clientCredentials(server, agent, c);
    expect(token.status).toBe(401);
    expect(token.body.error).toBe('invalid_client');
    expect((await server.store.list()).map((s) => s.clientId)).not.toContain(c.clientId);
  });

  it('revokeRegistrationAccessToken: 401 while the client still authenticates', async () => {
    const c = await register(server, agent);
    await server.store.revokeRegistrationAccessToken(c.clientId);
    const get = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(get.status).toBe(401);
    expect(get.body.error).toBe('invalid_token');
    expect(await server.store.get(c.clientId)).toBeDefined();
    expect((await clientCredentials(server, agent, c)).status).toBe(200);
  });

  it('records requests without query strings or tokens', () => {
    const allowed = ['answeredAt', 'at', 'clientId', 'clientName', 'fault', 'method', 'path', 'status'];
    for (const r of server.requests) {
      for (const key of Object.keys(r)) expect(allowed).toContain(key);
      expect(r.path).not.toContain('?');
    }
  });

  it('closes promptly although the client keeps connections alive', async () => {
    const other = await startRegistrationServer();
    await call(agent, 'GET', `${other.issuer}/.well-known/openid-configuration`);
    const started = performance.now();
    await other.close();
    expect(performance.now() - started).toBeLessThan(500);
    await expect(call(agent, 'GET', `${other.issuer}/.well-known/openid-configuration`)).rejects.toThrow();
  });
});

// Each dialect switch, seen from a client: the conformance suite (dialects.test.ts) relies on them.
describe('registration server dialects', () => {
  const agent = new Agent();
  const servers: RegistrationServer[] = [];
  const start = async (opts: RegistrationServerOptions) => {
    const server = await startRegistrationServer(opts);
    servers.push(server);
    return server;
  };
  const READ_ONLY = [
    'registration_access_token',
    'registration_client_uri',
    'client_secret_expires_at',
    'client_id_issued_at',
  ];
  const withoutReadOnly = (body: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(body).filter(([k]) => !READ_ONLY.includes(k)));
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await agent.close();
  });

  it("emptyForUnset / vendorFields: '' and null for what was not sent, vendor fields, its own output taken back", async () => {
    const server = await start({ dialect: { emptyForUnset: true, vendorFields: true } });
    const c = await register(server, agent);
    const read = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(read.body).toMatchObject({
      client_uri: '',
      logo_uri: '',
      jwks_uri: '',
      contacts: ['ops@example.org'],
      post_logout_redirect_uris: null,
      response_types: ['code'],
      owner: '',
      audience: [],
      jwks: {},
      metadata: {},
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const other = await call(agent, 'POST', server.registrationEndpoint, {
      json: { redirect_uris: ['https://a.example/cb'] },
    });
    expect(other.body).toMatchObject({ response_types: null, contacts: null, client_uri: '' });
    const put = await call(agent, 'PUT', c.uri, { bearer: c.rat, json: withoutReadOnly(read.body) });
    expect(put.status).toBe(200);
    expect((await server.store.get(c.clientId))?.metadata).not.toHaveProperty('client_uri');
  });

  it('readWithoutCredentials: GET has neither client_secret nor the token; POST and PUT have both', async () => {
    const server = await start({ dialect: { readWithoutCredentials: true } });
    const c = await register(server, agent);
    const read = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty('client_secret');
    expect(read.body).not.toHaveProperty('registration_access_token');
    const put = await call(agent, 'PUT', c.uri, {
      bearer: c.rat,
      json: { ...METADATA, client_id: c.clientId },
    });
    expect(put.body.client_secret).toBe(c.clientSecret);
  });

  it('status codes: 200 on registration and delete, 404 for a gone client, 401 for a revoked token', async () => {
    const server = await start({
      dialect: { registrationStatus: 200, deleteStatus: 200, unknownClientStatus: 404 },
    });
    const res = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA });
    expect(res.status).toBe(200);
    const [uri, rat, id] = [
      str(res.body.registration_client_uri),
      str(res.body.registration_access_token),
      str(res.body.client_id),
    ];
    const other = await register200(server);
    await server.store.revokeRegistrationAccessToken(other.clientId);
    expect((await call(agent, 'GET', other.uri, { bearer: other.rat })).status).toBe(401);
    expect((await call(agent, 'DELETE', uri, { bearer: rat })).status).toBe(200);
    const gone = await call(agent, 'GET', uri, { bearer: rat });
    expect(gone).toMatchObject({ status: 404, body: { error: 'invalid_client' } });
    expect(await server.store.get(id)).toBeUndefined();
  });

  async function register200(server: RegistrationServer): Promise<Registered> {
    const res = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA });
    return {
      clientId: str(res.body.client_id),
      clientSecret: str(res.body.client_secret),
      rat: str(res.body.registration_access_token),
      uri: str(res.body.registration_client_uri),
    };
  }

  it("ratRotation 'put': GET keeps the token, PUT replaces it", async () => {
    const server = await start({ dialect: { ratRotation: 'put' } });
    const c = await register(server, agent);
    expect((await call(agent, 'GET', c.uri, { bearer: c.rat })).body.registration_access_token).toBe(c.rat);
    const put = await call(agent, 'PUT', c.uri, {
      bearer: c.rat,
      json: { ...METADATA, client_id: c.clientId },
    });
    const fresh = str(put.body.registration_access_token);
    expect(fresh).not.toBe(c.rat);
    expect((await call(agent, 'GET', c.uri, { bearer: c.rat })).status).toBe(401);
    expect((await call(agent, 'GET', c.uri, { bearer: fresh })).status).toBe(200);
  });

  it('normalise: scope extended and reordered, redirect URIs serialised, grant types added', async () => {
    const server = await start({
      dialect: {
        normalise: {
          scopeDefaults: ['openid'],
          reorderScope: true,
          redirectUris: true,
          addGrantTypes: ['refresh_token'],
        },
      },
    });
    const res = await call(agent, 'POST', server.registrationEndpoint, {
      json: {
        redirect_uris: ['https://App.Example.ORG'],
        scope: 'email profile',
        grant_types: ['authorization_code'],
      },
    });
    expect(res.body).toMatchObject({
      redirect_uris: ['https://app.example.org/'],
      scope: 'profile openid email',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect((await server.store.get(str(res.body.client_id)))?.metadata.scope).toBe('profile openid email');
  });

  it.each([
    ['required', 'invalid_request'],
    ['forbidden', 'invalid_client_metadata'],
  ] as const)('putClientSecret %s: 400 the other way, 200 this way', async (rule, error) => {
    const server = await start({ dialect: { putClientSecret: rule } });
    const c = await register(server, agent);
    const body = { ...METADATA, client_id: c.clientId };
    const withSecret = { ...body, client_secret: c.clientSecret };
    const [refused, accepted] = rule === 'required' ? [body, withSecret] : [withSecret, body];
    const no = await call(agent, 'PUT', c.uri, { bearer: c.rat, json: refused });
    expect(no).toMatchObject({
      status: 400,
      body: { error, error_description: expect.stringContaining('client_secret') },
    });
    expect((await call(agent, 'PUT', c.uri, { bearer: c.rat, json: accepted })).status).toBe(200);
  });

  it('clientSecretLifetimeSeconds: client_secret_expires_at = issued + lifetime in every answer', async () => {
    const server = await start({ dialect: { clientSecretLifetimeSeconds: 3600 } });
    const res = await call(agent, 'POST', server.registrationEndpoint, { json: METADATA });
    expect(res.body.client_secret_expires_at).toBe((res.body.client_id_issued_at as number) + 3600);
    const read = await call(agent, 'GET', str(res.body.registration_client_uri), {
      bearer: str(res.body.registration_access_token),
    });
    expect(read.body.client_secret_expires_at).toBe(res.body.client_secret_expires_at);
  });

  it("Keycloak's shape: a realm path, registration and management below it, an initial access token", async () => {
    const server = await start({
      initialAccessToken: 'kc-iat',
      dialect: {
        basePath: '/realms/shop',
        registrationPath: '/clients-registrations/openid-connect',
        tokenPath: '/protocol/openid-connect/token',
        ratRotation: 'every-call',
      },
    });
    expect(server.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/realms\/shop$/);
    const discovery = await call(agent, 'GET', `${server.issuer}/.well-known/openid-configuration`);
    expect(discovery.body).toMatchObject({
      issuer: server.issuer,
      registration_endpoint: `${server.issuer}/clients-registrations/openid-connect`,
      token_endpoint: `${server.issuer}/protocol/openid-connect/token`,
    });
    const origin = new URL(server.issuer).origin;
    expect((await call(agent, 'GET', `${origin}/.well-known/openid-configuration`)).status).toBe(404);
    expect((await call(agent, 'POST', server.registrationEndpoint, { json: METADATA })).status).toBe(401);
    const c = await register(server, agent, 'kc-iat');
    expect(c.uri).toBe(`${server.registrationEndpoint}/${c.clientId}`);
    const read = await call(agent, 'GET', c.uri, { bearer: c.rat });
    expect(str(read.body.registration_access_token)).not.toBe(c.rat);
    expect((await clientCredentials(server, agent, c)).status).toBe(200);
  });
});
