// The registration endpoint probe against a plain local HTTP server: which answers count as "a
// DCR endpoint answers", which do not, and that a transient failure is tried once more.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROBE_BODY, probeRegistrationEndpoint } from '../../../src/controller/provider-health.js';
import { ProviderHealthController } from '../../../src/controller/provider-health-controller.js';
import { createProviderAgent } from '../../../src/registration/agent.js';

describe('registration endpoint probe', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; path: string; body: string; auth?: string }[] = [];
  const answers: number[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', path: req.url ?? '', body, auth: req.headers.authorization });
        const status = answers.shift() ?? 400;
        res.writeHead(status, status === 302 ? { location: '/login' } : {}).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const probe = async (...statuses: number[]) => {
    answers.splice(0, answers.length, ...statuses);
    seen.length = 0;
    const agent = createProviderAgent();
    try {
      return await probeRegistrationEndpoint(`${base}/reg`, agent, {
        requestTimeoutMs: 2_000,
        retryDelayMs: 10,
      });
    } finally {
      await agent.close();
    }
  };

  it.each([400, 401, 403, 405, 415])(
    '%i: the endpoint answers (one unauthenticated, unparsable POST)',
    async (status) => {
      expect(await probe(status)).toEqual({ ok: true });
      expect(seen).toEqual([{ method: 'POST', path: '/reg', body: PROBE_BODY, auth: undefined }]);
    },
  );

  it.each([
    [404, 'answered 404: no registration endpoint at this URL'],
    [410, 'answered 410: no registration endpoint at this URL'],
    [302, 'answered 302 to an unparsable registration request'],
    [201, 'answered 201 to an unparsable registration request'],
  ])('%i: not a registration endpoint, not retried', async (status, message) => {
    const result = await probe(status);
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.message).toContain(message);
    expect(seen).toHaveLength(1);
  });

  it('5xx and 429 are retried once: a blip does not flip Ready', async () => {
    expect(await probe(503, 400)).toEqual({ ok: true });
    expect(seen).toHaveLength(2);
    const down = await probe(500, 429);
    expect(down).toEqual({ ok: false, message: `POST 127.0.0.1:${new URL(base).port}/reg answered 429` });
    expect(seen).toHaveLength(2);
  });
});

describe('which provider statuses a process writes (sharding)', () => {
  const mk = (checkClusterProviders: boolean | ((n: string) => boolean)) =>
    new ProviderHealthController({
      rest: {} as never,
      log: {} as never,
      providers: { get: () => undefined, list: () => [] },
      clusterProviders: { get: () => undefined, list: () => [] },
      checkClusterProviders,
      intervalMs: 60_000,
    });
  const cluster = { metadata: { name: 'c' }, spec: { issuerUrl: 'https://x' } } as never;
  const namespaced = { metadata: { name: 'p', namespace: 'ns' }, spec: { issuerUrl: 'https://x' } } as never;

  it('ClusterOidcProviders only where allowed (shard 0); namespaced ones always (the informers hold only this shard’s)', () => {
    expect(mk(true).owns(cluster)).toBe(true);
    expect(mk(false).owns(cluster)).toBe(false);
    expect(mk((n) => n === 'c').owns(cluster)).toBe(true);
    expect(mk(false).owns(namespaced)).toBe(true);
  });
});
