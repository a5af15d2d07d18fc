// The operator's RFC 7591/7592 client against the real IAM-like registration server
// (node-oidc-provider): every server mode, typed errors, retries that are safe and only those,
// the per-provider concurrency bound, and endpoint discovery.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OidcClientSpec } from '../../src/api/types.generated.js';
import { RegistrationClient } from '../../src/registration/client.js';
import { discoverEndpoints } from '../../src/registration/discovery.js';
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
  UnconfirmedNotFoundError,
  UnexpectedResponseError,
} from '../../src/registration/errors.js';
import { diffSpecified, metadataForUpdate, specToMetadata } from '../../src/registration/metadata.js';
import type { ProviderEndpoints, RegisteredClient, RequestObserver } from '../../src/registration/types.js';
import {
  type RegistrationServer,
  type RegistrationServerOptions,
  startRegistrationServer,
} from '../harness/registration-server/index.js';

type ObservedRequest = Parameters<RequestObserver>[0];

const SPEC: OidcClientSpec = {
  providerRef: { name: 'iam' },
  clientName: 'registration-client-e2e',
  redirectUris: ['https://app.example/callback'],
  grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
  responseTypes: ['code'],
  scopes: ['openid', 'profile', 'email'],
  tokenEndpointAuthMethod: 'client_secret_basic',
  contacts: ['ops@example.org'],
};

const UPDATED_SPEC: OidcClientSpec = {
  ...SPEC,
  redirectUris: ['https://app.example/callback', 'https://app.example/other'],
  scopes: ['openid', 'offline_access', 'address'],
};

/** The rejection of `promise`, asserted to be of `type`. */
async function rejection<T extends Error>(
  promise: Promise<unknown>,
  type: new (...args: never[]) => T,
): Promise<T> {
  const outcome = await promise.then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected a ${type.name}, but the call succeeded`);
  expect(outcome.error).toBeInstanceOf(type);
  return outcome.error as T;
}

function scopeSet(scope: unknown): string[] {
  return typeof scope === 'string' ? scope.split(' ').sort() : [];
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** Largest number of [start, end] spans that overlap at any instant. */
function peakOverlap(spans: [number, number][]): number {
  const points = spans.flatMap(([from, to]): [number, number][] => [
    [from, 1],
    [to, -1],
  ]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let peak = 0;
  for (const [, delta] of points) {
    current += delta;
    peak = Math.max(peak, current);
  }
  return peak;
}

function endpointsOf(server: RegistrationServer): ProviderEndpoints {
  return {
    issuer: server.issuer,
    registrationEndpoint: server.registrationEndpoint,
    tokenEndpoint: server.tokenEndpoint,
    source: 'explicit',
  };
}

const MODES: { name: string; opts: RegistrationServerOptions }[] = [
  { name: 'iam', opts: { mode: 'iam' } },
  { name: 'rotating', opts: { mode: 'rotating' } },
  { name: 'initial-access-token', opts: { initialAccessToken: 'iat-for-client-tests' } },
  { name: 'tls (private CA)', opts: { tls: true } },
];

describe.each(MODES)('registration client lifecycle, $name', ({ opts }) => {
  const rotating = opts.mode === 'rotating';
  let server: RegistrationServer;
  let client: RegistrationClient;
  let registered: RegisteredClient;
  let clientSecret: string;
  let rat: string;
  let uri: string;

  beforeAll(async () => {
    server = await startRegistrationServer(opts);
    const endpoints = await discoverEndpoints({
      issuerUrl: server.issuer,
      ...(server.caPem ? { caPem: server.caPem } : {}),
    });
    client = new RegistrationClient({
      endpoints,
      ...(server.caPem ? { caPem: server.caPem } : {}),
      ...(opts.initialAccessToken ? { initialAccessToken: opts.initialAccessToken } : {}),
    });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('discovers the advertised endpoints', () => {
    expect(client.endpoints).toMatchObject({
      issuer: server.issuer,
      registrationEndpoint: server.registrationEndpoint,
      tokenEndpoint: server.tokenEndpoint,
      source: 'discovery',
    });
  });

  if (opts.initialAccessToken) {
    it('is refused without or with a wrong initial access token', async () => {
      for (const initialAccessToken of [undefined, 'wrong-iat']) {
        const other = new RegistrationClient({
          endpoints: client.endpoints,
          ...(initialAccessToken ? { initialAccessToken } : {}),
        });
        try {
          const error = await rejection(other.register(specToMetadata(SPEC)), RegistrationUnauthorizedError);
          expect(error.kind).toBe('RegistrationUnauthorized');
          expect(error.status).toBe(401);
          expect(error.message).not.toContain('wrong-iat');
        } finally {
          await other.close();
        }
      }
      expect(await server.store.list()).toEqual([]);
    });
  }

  if (opts.tls) {
    it('does not trust the provider without its CA, and does not retry a certificate error', async () => {
      const calls: ObservedRequest[] = [];
      const untrusting = new RegistrationClient({
        endpoints: client.endpoints,
        observe: (e) => calls.push(e),
      });
      try {
        const error = await rejection(untrusting.register(specToMetadata(SPEC)), ProviderUnavailableError);
        expect(error.message).toMatch(/certificate/);
        expect(calls.map((c) => c.status)).toEqual(['error']);
      } finally {
        await untrusting.close();
      }
      await rejection(discoverEndpoints({ issuerUrl: server.issuer, retries: 0 }), ProviderUnavailableError);
    });
  }

  it('registers: 201 with credentials, RAT and management URI, as specified', async () => {
    const desired = specToMetadata(SPEC);
    registered = await client.register(desired);
    expect(registered.clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(registered.registrationClientUri).toBe(`${server.registrationEndpoint}/${registered.clientId}`);
    expect(registered.clientSecretExpiresAt).toBe(0);
    expect(diffSpecified(desired, registered.metadata)).toEqual([]);
    clientSecret = registered.clientSecret ?? '';
    rat = registered.registrationAccessToken ?? '';
    uri = registered.registrationClientUri ?? '';
    expect(clientSecret).not.toBe('');
    expect(rat).not.toBe('');
    const stored = await server.store.get(registered.clientId);
    expect(stored?.metadata.client_secret).toBe(clientSecret);
    expect(stored?.metadata.redirect_uris).toEqual(SPEC.redirectUris);
  });

  it(`reads the registration (${rotating ? 'rotated' : 'same'} RAT)`, async () => {
    const read = await client.read(uri, rat, registered.clientId);
    expect(read.clientId).toBe(registered.clientId);
    expect(read.clientSecret).toBe(clientSecret);
    expect(read.registrationClientUri).toBe(uri);
    expect(diffSpecified(specToMetadata(SPEC), read.metadata)).toEqual([]);
    const next = read.registrationAccessToken ?? '';
    if (rotating) {
      expect(next).not.toBe('');
      expect(next).not.toBe(rat);
      const stale = await rejection(client.read(uri, rat, registered.clientId), TokenRejectedError);
      expect(stale.status).toBe(401);
      rat = next;
    } else {
      expect(next).toBe(rat);
    }
    registered = read;
  });

  it(`updates scopes and redirect URIs with PUT (${rotating ? 'rotated' : 'same'} RAT)`, async () => {
    const desired = specToMetadata(UPDATED_SPEC);
    expect(diffSpecified(desired, registered.metadata).map((d) => d.field)).toEqual([
      'redirect_uris',
      'scope',
    ]);
    const body = metadataForUpdate(desired, registered.metadata, registered.clientId);
    const updated = await client.update(uri, rat, registered.clientId, body);
    expect(updated.clientId).toBe(registered.clientId);
    expect(updated.clientSecret).toBe(clientSecret);
    expect(diffSpecified(desired, updated.metadata)).toEqual([]);

    const stored = await server.store.get(registered.clientId);
    expect(stored?.metadata.redirect_uris).toEqual(UPDATED_SPEC.redirectUris);
    expect(scopeSet(stored?.metadata.scope)).toEqual(['address', 'offline_access', 'openid']);
    // Fields the PUT body did not name are kept because metadataForUpdate starts from the server's copy.
    expect(stored?.metadata.contacts).toEqual(SPEC.contacts);
    expect(stored?.metadata.grant_types).toEqual(SPEC.grantTypes);

    const next = updated.registrationAccessToken ?? '';
    if (rotating) {
      expect(next).not.toBe(rat);
      await rejection(client.read(uri, rat, registered.clientId), TokenRejectedError);
      rat = next;
    } else {
      expect(next).toBe(rat);
    }
    const confirmed = await client.read(uri, rat, registered.clientId);
    expect(confirmed.clientId).toBe(registered.clientId);
    if (rotating) rat = confirmed.registrationAccessToken ?? '';
  });

  it('probes the live credentials as valid', async () => {
    expect(await client.probeCredentials(registered.clientId, clientSecret, 'client_secret_basic')).toBe(
      'valid',
    );
  });

  it('deletes: then read is TokenRejected (RFC 7592: 401) and the probe says invalid', async () => {
    if (rotating) rat = (await client.read(uri, rat, registered.clientId)).registrationAccessToken ?? '';
    await client.delete(uri, rat, registered.clientId);
    expect(await server.store.get(registered.clientId)).toBeUndefined();
    const gone = await rejection(client.read(uri, rat, registered.clientId), TokenRejectedError);
    expect(gone.status).toBe(401);
    expect(gone.kind).toBe('TokenRejected');
    expect(gone.message).toContain('invalid_token');
    expect(gone.message).not.toContain(rat);
    expect(await client.probeCredentials(registered.clientId, clientSecret, undefined)).toBe('invalid');
    await rejection(client.delete(uri, rat, registered.clientId), TokenRejectedError);
  });
});

describe('registration client errors, probes and retries', () => {
  let server: RegistrationServer;
  let client: RegistrationClient;
  const events: ObservedRequest[] = [];

  beforeAll(async () => {
    server = await startRegistrationServer();
    client = new RegistrationClient({ endpoints: endpointsOf(server), observe: (e) => events.push(e) });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  /** Requests the server saw from now on. */
  function requestsSince(): () => { method: string; path: string; status: number }[] {
    const start = server.requests.length;
    return () => server.requests.slice(start).map(({ method, path, status }) => ({ method, path, status }));
  }

  function eventsSince(): () => ObservedRequest[] {
    const start = events.length;
    return () => events.slice(start);
  }

  it('surfaces 400 invalid_redirect_uri with its description, and registers nothing', async () => {
    const before = (await server.store.list()).length;
    const error = await rejection(
      client.register(specToMetadata({ ...SPEC, redirectUris: ['https://app.example/cb#fragment'] })),
      InvalidClientMetadataError,
    );
    expect(error.kind).toBe('InvalidMetadata');
    expect(error.status).toBe(400);
    expect(error.error).toBe('invalid_redirect_uri');
    expect(error.errorDescription).toMatch(/^redirect_uris/);
    expect(error.message).toBe(`invalid_redirect_uri: ${error.errorDescription}`);
    expect((await server.store.list()).length).toBe(before);
  });

  it('surfaces invalid_client_metadata on POST and on PUT', async () => {
    const badScope = await rejection(
      client.register({ ...specToMetadata(SPEC), scope: 'openid not-a-scope' }),
      InvalidClientMetadataError,
    );
    expect(badScope.error).toBe('invalid_client_metadata');
    const c = await client.register(specToMetadata(SPEC));
    const body = metadataForUpdate({ scope: 'openid not-a-scope' }, c.metadata, c.clientId);
    const put = await rejection(
      client.update(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId, body),
      InvalidClientMetadataError,
    );
    expect(put.error).toBe('invalid_client_metadata');
  });

  it('tells a revoked RAT (probe valid) from a deleted client (probe invalid)', async () => {
    const revoked = await client.register(specToMetadata(SPEC));
    await server.store.revokeRegistrationAccessToken(revoked.clientId);
    await rejection(
      client.read(
        revoked.registrationClientUri ?? '',
        revoked.registrationAccessToken ?? '',
        revoked.clientId,
      ),
      TokenRejectedError,
    );
    expect(await client.probeCredentials(revoked.clientId, revoked.clientSecret, 'client_secret_basic')).toBe(
      'valid',
    );

    const deleted = await client.register(specToMetadata(SPEC));
    await server.store.delete(deleted.clientId);
    await rejection(
      client.read(
        deleted.registrationClientUri ?? '',
        deleted.registrationAccessToken ?? '',
        deleted.clientId,
      ),
      TokenRejectedError,
    );
    expect(await client.probeCredentials(deleted.clientId, deleted.clientSecret, 'client_secret_basic')).toBe(
      'invalid',
    );
  });

  it('probes: valid without the client_credentials grant, with client_secret_post; invalid with a wrong secret', async () => {
    const noGrant = await client.register(specToMetadata({ ...SPEC, grantTypes: ['authorization_code'] }));
    expect(await client.probeCredentials(noGrant.clientId, noGrant.clientSecret, 'client_secret_basic')).toBe(
      'valid',
    );
    expect(await client.probeCredentials(noGrant.clientId, 'not-the-secret', 'client_secret_basic')).toBe(
      'invalid',
    );
    const post = await client.register(
      specToMetadata({ ...SPEC, tokenEndpointAuthMethod: 'client_secret_post' }),
    );
    expect(post.metadata.token_endpoint_auth_method).toBe('client_secret_post');
    expect(await client.probeCredentials(post.clientId, post.clientSecret, 'client_secret_post')).toBe(
      'valid',
    );
    expect(await client.probeCredentials(post.clientId, 'not-the-secret', 'client_secret_post')).toBe(
      'invalid',
    );
  });

  it('probes: unknown when it cannot tell, without sending anything', async () => {
    const seen = requestsSince();
    const c = await client.register(specToMetadata(SPEC));
    expect(await client.probeCredentials(c.clientId, undefined, 'client_secret_basic')).toBe('unknown');
    for (const method of ['none', 'private_key_jwt', 'client_secret_jwt']) {
      expect(await client.probeCredentials(c.clientId, c.clientSecret, method)).toBe('unknown');
    }
    const noTokenEndpoint = new RegistrationClient({
      endpoints: { ...endpointsOf(server), tokenEndpoint: undefined },
    });
    try {
      expect(await noTokenEndpoint.probeCredentials(c.clientId, c.clientSecret, undefined)).toBe('unknown');
    } finally {
      await noTokenEndpoint.close();
    }
    expect(seen().map((r) => r.method)).toEqual(['POST']);
  });

  it('probes: unknown when the token endpoint is unreachable', async () => {
    const port = await closedPort();
    const unreachable = new RegistrationClient({
      endpoints: { ...endpointsOf(server), tokenEndpoint: `http://127.0.0.1:${port}/token` },
      retries: 1,
      retryMinTimeoutMs: 10,
    });
    try {
      expect(await unreachable.probeCredentials('id', 'secret', undefined)).toBe('unknown');
    } finally {
      await unreachable.close();
    }
  });

  it('maps 404 and 410 with an OAuth error body on management calls to ClientNotFoundError', async () => {
    const c = await client.register(specToMetadata(SPEC));
    for (const status of [404, 410]) {
      server.faults.add({
        method: 'GET',
        pathPattern: /client-registration\//,
        status,
        body: { error: 'not_found' },
      });
      const error = await rejection(
        client.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
        ClientNotFoundError,
      );
      expect(error.status).toBe(status);
    }
    server.faults.add({
      method: 'DELETE',
      pathPattern: /client-registration\//,
      status: 404,
      body: { error: 'invalid_client' },
    });
    await rejection(
      client.delete(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
      ClientNotFoundError,
    );
  });

  it('does not take a 404 without an OAuth error body (an ingress page) for a vanished client', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const page = '<html><body><h1>404 Not Found</h1>maintenance</body></html>';
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 404,
      body: page,
      headers: { 'content-type': 'text/html' },
    });
    const html = await rejection(
      client.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
      UnconfirmedNotFoundError,
    );
    expect(html).not.toBeInstanceOf(ClientNotFoundError);
    expect(html.status).toBe(404);
    expect(html.message).toContain('text/html');
    expect(html.message).not.toContain('maintenance');
    // Spring's default error JSON is not an OAuth error ("Not Found" is not an error code).
    server.faults.add({
      method: 'DELETE',
      pathPattern: /client-registration\//,
      status: 404,
      body: { status: 404, error: 'Not Found', path: '/x' },
    });
    await rejection(
      client.delete(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
      UnconfirmedNotFoundError,
    );
    // The client is still there.
    expect(await server.store.get(c.clientId)).toBeDefined();
  });

  it('honours Retry-After on GET: 503 twice, then success', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const seen = eventsSince();
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 503,
      headers: { 'Retry-After': '1' },
      body: { error: 'temporarily_unavailable' },
      times: 2,
    });
    const started = performance.now();
    const read = await client.read(
      c.registrationClientUri ?? '',
      c.registrationAccessToken ?? '',
      c.clientId,
    );
    const elapsed = performance.now() - started;
    expect(read.clientId).toBe(c.clientId);
    expect(seen().map((e) => e.status)).toEqual([503, 503, 200]);
    // Two waits of at least one second each; the 200 ms backoff alone would take well under one.
    expect(elapsed).toBeGreaterThanOrEqual(1900);
  });

  it('gives up after the configured retries with ProviderUnavailableError and the Retry-After hint', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const impatient = new RegistrationClient({
      endpoints: endpointsOf(server),
      retries: 2,
      retryMinTimeoutMs: 10,
    });
    const seen = requestsSince();
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 503,
      headers: { 'Retry-After': '0' },
      times: Number.POSITIVE_INFINITY,
    });
    try {
      const error = await rejection(
        impatient.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
        ProviderUnavailableError,
      );
      expect(error.status).toBe(503);
      expect(error.retryAfterMs).toBe(0);
      expect(seen().map((r) => r.status)).toEqual([503, 503, 503]);
    } finally {
      server.faults.clear();
      await impatient.close();
    }
  });

  it('does not retry a 500', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const seen = requestsSince();
    server.faults.add({ method: 'GET', pathPattern: /client-registration\//, status: 500 });
    const error = await rejection(
      client.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
      ProviderUnavailableError,
    );
    expect(error.status).toBe(500);
    expect(seen()).toHaveLength(1);
  });

  it('retries a POST answered 503 (not processed): exactly one client is registered', async () => {
    const before = (await server.store.list()).length;
    const seen = requestsSince();
    server.faults.add({ method: 'POST', pathPattern: /client-registration$/, status: 503 });
    const c = await client.register(specToMetadata(SPEC));
    expect(seen().filter((r) => r.method === 'POST')).toEqual([
      { method: 'POST', path: '/iam/api/client-registration', status: 503 },
      { method: 'POST', path: '/iam/api/client-registration', status: 201 },
    ]);
    expect((await server.store.list()).length).toBe(before + 1);
    expect(await server.store.get(c.clientId)).toBeDefined();
  });

  it('does not retry a POST answered 502 (it may have been processed)', async () => {
    const seen = requestsSince();
    server.faults.add({ method: 'POST', pathPattern: /client-registration$/, status: 502 });
    const error = await rejection(client.register(specToMetadata(SPEC)), ProviderUnavailableError);
    expect(error.status).toBe(502);
    expect(seen().filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('does not retry a POST whose connection was dropped', async () => {
    const before = (await server.store.list()).length;
    const seen = requestsSince();
    server.faults.add({ method: 'POST', pathPattern: /client-registration$/, drop: true });
    const error = await rejection(client.register(specToMetadata(SPEC)), ProviderUnavailableError);
    expect(error.message).toMatch(/may have registered/);
    expect(seen().filter((r) => r.method === 'POST')).toEqual([
      { method: 'POST', path: '/iam/api/client-registration', status: 0 },
    ]);
    expect((await server.store.list()).length).toBe(before);
  });

  it('does not retry a POST that timed out, but does retry a GET', async () => {
    const quick = new RegistrationClient({
      endpoints: endpointsOf(server),
      requestTimeoutMs: 300,
      retryMinTimeoutMs: 10,
    });
    try {
      const seen = requestsSince();
      server.faults.add({ method: 'POST', pathPattern: /client-registration$/, delayMs: 1500 });
      const error = await rejection(quick.register(specToMetadata(SPEC)), ProviderUnavailableError);
      expect(error.code).toBe('TIMEOUT');
      expect(seen().filter((r) => r.method === 'POST')).toHaveLength(1);

      const c = await quick.register(specToMetadata(SPEC));
      const reads = requestsSince();
      server.faults.add({ method: 'GET', pathPattern: /client-registration\//, delayMs: 1500 });
      expect(
        (await quick.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId))
          .clientId,
      ).toBe(c.clientId);
      expect(reads().filter((r) => r.method === 'GET')).toHaveLength(2);
    } finally {
      await quick.close();
    }
  });

  it('retries a GET whose connection was dropped', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const seen = requestsSince();
    server.faults.add({ method: 'GET', pathPattern: /client-registration\//, drop: true });
    expect(
      (await client.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId))
        .clientId,
    ).toBe(c.clientId);
    expect(seen().map((r) => r.status)).toEqual([0, 200]);
  });

  it('retries a POST refused before anything was sent, once per attempt observed', async () => {
    const port = await closedPort();
    const calls: ObservedRequest[] = [];
    const refused = new RegistrationClient({
      endpoints: { ...endpointsOf(server), registrationEndpoint: `http://127.0.0.1:${port}/register` },
      retries: 2,
      retryMinTimeoutMs: 10,
      observe: (e) => calls.push(e),
    });
    try {
      const error = await rejection(refused.register(specToMetadata(SPEC)), ProviderUnavailableError);
      expect(error.code).toBe('ECONNREFUSED');
      expect(calls).toEqual(
        Array.from({ length: 3 }, () => ({
          method: 'POST',
          status: 'error',
          durationMs: expect.any(Number),
        })),
      );
    } finally {
      await refused.close();
    }
  });

  it('keeps at most maxConcurrentRequests in flight, the rest wait', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const spans: [number, number][] = [];
    const bounded = new RegistrationClient({
      endpoints: endpointsOf(server),
      maxConcurrentRequests: 2,
      observe: (e) => spans.push([performance.now() - e.durationMs, performance.now()]),
    });
    const seen = requestsSince();
    server.faults.add({ method: 'GET', pathPattern: /client-registration\//, delayMs: 300, times: 6 });
    try {
      const started = performance.now();
      const reads = await Promise.all(
        Array.from({ length: 6 }, () =>
          bounded.read(c.registrationClientUri ?? '', c.registrationAccessToken ?? '', c.clientId),
        ),
      );
      const elapsed = performance.now() - started;
      expect(reads.map((r) => r.clientId)).toEqual(Array(6).fill(c.clientId));
      expect(peakOverlap(spans)).toBe(2);
      // Server side: requests arrive in pairs, 300 ms apart.
      const arrivals = server.requests.slice(-6).map((r) => r.at);
      const first = Math.min(...arrivals);
      expect(arrivals.filter((at) => at - first < 250)).toHaveLength(2);
      expect(seen()).toHaveLength(6);
      expect(elapsed).toBeGreaterThanOrEqual(880);
    } finally {
      await bounded.close();
    }
  });

  it('reports an answer that is not a registration as UnexpectedResponse, without echoing secrets', async () => {
    const c = await client.register(specToMetadata(SPEC));
    const rat = c.registrationAccessToken ?? '';
    const leak = 'leaked-client-secret-value';
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 200,
      body: { client_secret: leak },
    });
    const noId = await rejection(
      client.read(c.registrationClientUri ?? '', rat, c.clientId),
      UnexpectedResponseError,
    );
    expect(noId.message).toMatch(/client_id/);
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 200,
      body: `<html>${leak}`,
    });
    const html = await rejection(
      client.read(c.registrationClientUri ?? '', rat, c.clientId),
      UnexpectedResponseError,
    );
    expect(html.message).toMatch(/not JSON/);
    server.faults.add({
      method: 'GET',
      pathPattern: /client-registration\//,
      status: 418,
      body: { error: 'teapot', client_secret: leak },
    });
    const teapot = await rejection(
      client.read(c.registrationClientUri ?? '', rat, c.clientId),
      UnexpectedResponseError,
    );
    expect(teapot.status).toBe(418);
    expect(teapot.message).toContain('teapot');
    for (const error of [noId, html, teapot]) {
      const serialized = `${error.message} ${JSON.stringify(error)} ${error.stack ?? ''}`;
      expect(serialized).not.toContain(leak);
      expect(serialized).not.toContain(rat);
    }
  });

  it('never hands tokens, paths or hosts to the observer', () => {
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(['durationMs', 'method', 'status']);
    }
  });
});

describe('endpoint discovery', () => {
  let server: RegistrationServer;

  beforeAll(async () => {
    server = await startRegistrationServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('uses the advertised registration_endpoint, with or without a trailing slash on the issuer', async () => {
    for (const issuerUrl of [server.issuer, `${server.issuer}/`]) {
      expect(await discoverEndpoints({ issuerUrl })).toEqual({
        issuer: server.issuer,
        registrationEndpoint: server.registrationEndpoint,
        tokenEndpoint: server.tokenEndpoint,
        source: 'discovery',
        // What Secret templates can use, as the discovery document advertises it.
        discoveryUrl: `${server.issuer}/.well-known/openid-configuration`,
        authorizationEndpoint: expect.stringMatching(/^http/),
        userinfoEndpoint: expect.stringMatching(/^http/),
        jwksUri: expect.stringMatching(/^http/),
        endSessionEndpoint: expect.stringMatching(/^http/),
      });
    }
  });

  it('lets an explicit endpoint win, still reading the token endpoint from discovery', async () => {
    const explicit = `${server.issuer}/custom/register`;
    expect(
      await discoverEndpoints({ issuerUrl: server.issuer, registrationEndpoint: explicit }),
    ).toMatchObject({
      issuer: server.issuer,
      registrationEndpoint: explicit,
      tokenEndpoint: server.tokenEndpoint,
      source: 'explicit',
    });
  });

  it('keeps an explicit endpoint when discovery fails', async () => {
    server.faults.add({ pathPattern: /openid-configuration/, status: 500 });
    expect(
      await discoverEndpoints({
        issuerUrl: server.issuer,
        registrationEndpoint: server.registrationEndpoint,
      }),
    ).toEqual({
      issuer: server.issuer,
      registrationEndpoint: server.registrationEndpoint,
      source: 'explicit',
    });
  });

  it('falls back to the IAM path when discovery does not advertise one, and registration works there', async () => {
    const hidden = await startRegistrationServer({ advertiseRegistrationEndpoint: false });
    try {
      const endpoints = await discoverEndpoints({ issuerUrl: `${hidden.issuer}/` });
      expect(endpoints).toMatchObject({
        issuer: hidden.issuer,
        registrationEndpoint: hidden.registrationEndpoint,
        tokenEndpoint: hidden.tokenEndpoint,
        source: 'iam-default',
      });
      const client = new RegistrationClient({ endpoints });
      try {
        const c = await client.register(specToMetadata(SPEC));
        expect(await hidden.store.get(c.clientId)).toBeDefined();
      } finally {
        await client.close();
      }
    } finally {
      await hidden.close();
    }
  });

  it('retries discovery on 503 and then uses it', async () => {
    const seen = server.requests.length;
    server.faults.add({ pathPattern: /openid-configuration/, status: 503, times: 2 });
    const endpoints = await discoverEndpoints({ issuerUrl: server.issuer, retryMinTimeoutMs: 10 });
    expect(endpoints.source).toBe('discovery');
    expect(server.requests.slice(seen).map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('does not fall back to the IAM path when discovery is missing (404) or unreachable', async () => {
    server.faults.add({ pathPattern: /openid-configuration/, status: 404 });
    const missing = await rejection(discoverEndpoints({ issuerUrl: server.issuer }), UnexpectedResponseError);
    expect(missing.status).toBe(404);
    const port = await closedPort();
    const down = await rejection(
      discoverEndpoints({ issuerUrl: `http://127.0.0.1:${port}`, retries: 1, retryMinTimeoutMs: 10 }),
      ProviderUnavailableError,
    );
    expect(down.code).toBe('ECONNREFUSED');
  });

  it('cannot be aborted into a fallback: an aborted discovery rejects', async () => {
    server.faults.add({ pathPattern: /openid-configuration/, delayMs: 1000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stopping')), 50);
    await expect(
      discoverEndpoints({
        issuerUrl: server.issuer,
        registrationEndpoint: server.registrationEndpoint,
        signal: controller.signal,
      }),
    ).rejects.toThrow('stopping');
  });
});
