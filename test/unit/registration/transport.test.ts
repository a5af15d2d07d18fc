// The HTTP layer against undici's MockAgent: which failures are retried for which kind of call,
// Retry-After, timeouts, headers, and that the observer sees every attempt without secrets.
import { MockAgent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FencedError } from '../../../src/kube/fence.js';
import { ProviderUnavailableError, UnexpectedResponseError } from '../../../src/registration/errors.js';
import { type HttpRequest, Transport, type TransportOptions } from '../../../src/registration/transport.js';
import type { RequestObserver } from '../../../src/registration/types.js';

const ORIGIN = 'https://idp.example';
const REG = '/iam/api/client-registration';

type Event = Parameters<RequestObserver>[0];

let mock: MockAgent;
let events: Event[];

beforeEach(() => {
  mock = new MockAgent();
  mock.disableNetConnect();
  events = [];
});

afterEach(async () => {
  await mock.close();
});

function transport(overrides: Partial<TransportOptions> = {}): Transport {
  return new Transport({
    dispatcher: mock,
    maxConcurrentRequests: 4,
    retries: 3,
    requestTimeoutMs: 1000,
    retryMinTimeoutMs: 1,
    observe: (e) => events.push(e),
    ...overrides,
  });
}

const post = (extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'POST',
  url: new URL(`${ORIGIN}${REG}`),
  retryClass: 'create',
  json: { client_name: 'x' },
  ...extra,
});
const get = (extra: Partial<HttpRequest> = {}): HttpRequest => ({
  method: 'GET',
  url: new URL(`${ORIGIN}${REG}/abc`),
  retryClass: 'idempotent',
  bearer: 'rat-secret',
  ...extra,
});

const pool = () => mock.get(ORIGIN);
const networkError = (code: string): Error => Object.assign(new Error(`simulated ${code}`), { code });

async function failure(promise: Promise<unknown>): Promise<ProviderUnavailableError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProviderUnavailableError);
  return error as ProviderUnavailableError;
}

describe('create POST', () => {
  it('is retried after 503 and 429 (not processed) and then succeeds', async () => {
    pool().intercept({ path: REG, method: 'POST' }).reply(503, '');
    pool().intercept({ path: REG, method: 'POST' }).reply(429, '');
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
    const res = await transport().send(post());
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ client_id: 'abc' });
    expect(events.map((e) => e.status)).toEqual([503, 429, 201]);
  });

  it.each([500, 502, 504])('is not retried after %i', async (status) => {
    pool().intercept({ path: REG, method: 'POST' }).reply(status, '');
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
    const error = await failure(transport().send(post()));
    expect(error.status).toBe(status);
    expect(events).toHaveLength(1);
  });

  it('is retried when the connection was refused (nothing was sent)', async () => {
    pool().intercept({ path: REG, method: 'POST' }).replyWithError(networkError('ECONNREFUSED'));
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
    expect((await transport().send(post())).status).toBe(201);
    expect(events.map((e) => e.status)).toEqual(['error', 201]);
  });

  it.each(['UND_ERR_SOCKET', 'ECONNRESET'])(
    'is not retried after %s (it may have been processed)',
    async (code) => {
      pool().intercept({ path: REG, method: 'POST' }).replyWithError(networkError(code));
      pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
      const error = await failure(transport().send(post()));
      expect(error.code).toBe(code);
      expect(error.message).toMatch(/may have registered/);
      expect(events).toHaveLength(1);
    },
  );

  it('is not retried after a timeout', async () => {
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' }).delay(500);
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
    const error = await failure(transport({ requestTimeoutMs: 50 }).send(post()));
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('50 ms');
    expect(events).toHaveLength(1);
  });
});

describe('idempotent calls', () => {
  it.each([429, 502, 503, 504])('are retried after %i', async (status) => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(status, '');
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, { client_id: 'abc' });
    expect((await transport().send(get())).status).toBe(200);
    expect(events.map((e) => e.status)).toEqual([status, 200]);
  });

  it('are not retried after 500 or 501', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(500, { error: 'server_error' });
    const error = await failure(transport().send(get()));
    expect(error.status).toBe(500);
    expect(events).toHaveLength(1);
  });

  it('are retried after network errors and timeouts', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .replyWithError(networkError('UND_ERR_SOCKET'));
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, {})
      .delay(500);
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, { client_id: 'abc' });
    expect((await transport({ requestTimeoutMs: 100 }).send(get())).body).toEqual({ client_id: 'abc' });
    expect(events.map((e) => e.status)).toEqual(['error', 'error', 200]);
  });

  it('are not retried after a certificate error', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .replyWithError(networkError('UNABLE_TO_VERIFY_LEAF_SIGNATURE'));
    const error = await failure(transport().send(get()));
    expect(error.message).toMatch(/TLS certificate verification failed/);
    expect(events).toHaveLength(1);
  });

  it('give up after `retries` retries with the last status', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(503, '')
      .times(3);
    const error = await failure(transport({ retries: 2 }).send(get()));
    expect(error.status).toBe(503);
    expect(events).toHaveLength(3);
  });

  it('report a Retry-After beyond the cap to the caller instead of waiting', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(503, '', { headers: { 'retry-after': '120' } });
    const started = performance.now();
    const error = await failure(transport().send(get()));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(error.retryAfterMs).toBe(120_000);
    expect(events).toHaveLength(1);
  });

  it('stop when the caller aborts', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, {})
      .delay(2000);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 30);
    await expect(transport().send(get({ signal: controller.signal }))).rejects.toThrow('shutting down');
    expect(events).toHaveLength(1);
  });
});

describe('requests and answers', () => {
  it('sends Accept, JSON and the Bearer token', async () => {
    pool()
      .intercept({
        path: REG,
        method: 'POST',
        headers: {
          accept: 'application/json',
          'content-type': 'application/json',
          authorization: 'Bearer iat-1',
        },
        body: JSON.stringify({ client_name: 'x' }),
      })
      .reply(201, { client_id: 'abc' });
    expect((await transport().send(post({ bearer: 'iat-1' }))).status).toBe(201);
  });

  it('form-urlencodes client credentials before Basic encoding (RFC 6749 §2.3.1)', async () => {
    const expected = `Basic ${Buffer.from('my+id:p%40ss+w%3Ard').toString('base64')}`;
    pool()
      .intercept({
        path: '/token',
        method: 'POST',
        headers: { authorization: expected, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      })
      .reply(200, { access_token: 'x' });
    const res = await transport().send({
      method: 'POST',
      url: new URL(`${ORIGIN}/token`),
      retryClass: 'idempotent',
      basic: { username: 'my id', password: 'p@ss w:rd' },
      form: { grant_type: 'client_credentials' },
    });
    expect(res.status).toBe(200);
  });

  it('marks a non-JSON body as unparsable and an empty one as no body', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, '<html>');
    pool()
      .intercept({ path: `${REG}/abc`, method: 'DELETE' })
      .reply(204, '');
    const html = await transport().send(get());
    expect(html).toMatchObject({ status: 200, body: undefined, unparsable: true });
    const empty = await transport().send(get({ method: 'DELETE' }));
    expect(empty).toMatchObject({ status: 204, body: undefined, unparsable: false });
  });

  it('refuses a body larger than 1 MiB', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, 'x'.repeat(1024 * 1024 + 1));
    await expect(transport().send(get())).rejects.toBeInstanceOf(UnexpectedResponseError);
    expect(events).toHaveLength(1);
  });

  it('tells the observer method, status and duration, never the host, path or token', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, { client_id: 'abc' });
    await transport().send(get());
    expect(events).toEqual([{ method: 'GET', status: 200, durationMs: expect.any(Number) }]);
    expect(JSON.stringify(events)).not.toContain('rat-secret');
  });

  it('survives an observer that throws', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, { client_id: 'abc' });
    const t = transport({
      observe: () => {
        throw new Error('metrics broke');
      },
    });
    expect((await t.send(get())).status).toBe(200);
  });

  it('bounds requests in flight with the semaphore', async () => {
    pool()
      .intercept({ path: `${REG}/abc` })
      .reply(200, {})
      .delay(60)
      .times(6);
    const spans: [number, number][] = [];
    const t = transport({
      maxConcurrentRequests: 2,
      observe: (e) => spans.push([performance.now() - e.durationMs, performance.now()]),
    });
    const started = performance.now();
    await Promise.all(Array.from({ length: 6 }, () => t.send(get())));
    // 6 requests, 2 at a time, 60 ms each: three rounds.
    expect(performance.now() - started).toBeGreaterThanOrEqual(170);
    expect(spans).toHaveLength(6);
    expect(peakOverlap(spans)).toBe(2);
  });
});

function peakOverlap(spans: [number, number][]): number {
  // Ends sort before starts at the same instant: a slot handed over is not an overlap.
  const points = spans.flatMap(([from, to]) => [
    [from, 1],
    [to, -1],
  ]);
  points.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0));
  let current = 0;
  let peak = 0;
  for (const [, delta] of points) {
    current += delta ?? 0;
    peak = Math.max(peak, current);
  }
  return peak;
}

describe('leadership fence', () => {
  const closed = () => {
    const c = new AbortController();
    c.abort(new FencedError('term over'));
    return { signal: c.signal };
  };

  it('sends nothing once the fence is closed', async () => {
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' });
    await expect(transport({ fence: closed() }).send(post())).rejects.toBeInstanceOf(FencedError);
    expect(events).toEqual([]);
  });

  it('lets a request already sent finish: its answer (a new client) is not dropped', async () => {
    const fence = new AbortController();
    pool().intercept({ path: REG, method: 'POST' }).reply(201, { client_id: 'abc' }).delay(100);
    const sending = transport({ fence }).send(post());
    setTimeout(() => fence.abort(new FencedError('term over')), 20);
    const res = await sending;
    expect(res.status).toBe(201);
    expect(fence.signal.aborted).toBe(true);
  });

  it('does not retry once the fence closed', async () => {
    const fence = new AbortController();
    pool()
      .intercept({ path: `${REG}/abc`, method: 'GET' })
      .reply(503, '')
      .delay(100);
    pool()
      .intercept({ path: `${REG}/abc`, method: 'GET' })
      .reply(200, { client_id: 'abc' });
    const sending = transport({ fence }).send(get());
    setTimeout(() => fence.abort(new FencedError('term over')), 20);
    await expect(sending).rejects.toBeInstanceOf(FencedError);
    expect(events.map((e) => e.status)).toEqual([503]);
  });

  it('an undo of an unstored registration goes out even after the fence closed', async () => {
    pool()
      .intercept({ path: `${REG}/abc`, method: 'DELETE' })
      .reply(204, '');
    const res = await transport({ fence: closed() }).send({ ...get(), method: 'DELETE', unfenced: true });
    expect(res.status).toBe(204);
  });
});
