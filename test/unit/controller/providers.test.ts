import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_GROUP_VERSION } from '../../../src/api/schema.js';
import type { ClusterOidcProvider, OidcClient, OidcProvider } from '../../../src/api/types.generated.js';
import {
  isStaleTrust,
  ProviderRegistry,
  parseProviderKey,
  providerKeyOf,
} from '../../../src/controller/providers.js';
import type { CacheReader } from '../../../src/kube/informer.js';
import type { KubeRest } from '../../../src/kube/rest.js';
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
} from '../../../src/registration/errors.js';

describe('isStaleTrust: which failures drop the cached provider client and re-read its Secrets', () => {
  it('a certificate that does not verify, or a refused initial access token', () => {
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'CERT_HAS_EXPIRED']) {
      expect(isStaleTrust(new ProviderUnavailableError('tls', { code })), code).toBe(true);
    }
    expect(isStaleTrust(new RegistrationUnauthorizedError('401', 401))).toBe(true);
  });

  it("not outages, a rejected registration access token (the client's own) or metadata errors", () => {
    expect(isStaleTrust(new ProviderUnavailableError('down', { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isStaleTrust(new ProviderUnavailableError('503', { status: 503 }))).toBe(false);
    expect(isStaleTrust(new TokenRejectedError('401', 401))).toBe(false);
    expect(isStaleTrust(new ClientNotFoundError('404', 404))).toBe(false);
    expect(isStaleTrust(new InvalidClientMetadataError('invalid_redirect_uri'))).toBe(false);
    expect(isStaleTrust(new Error('x'))).toBe(false);
  });
});

describe('provider keys: a ClusterOidcProvider never shares one with an OidcProvider', () => {
  // A ClusterOidcProvider "iam", and an OidcProvider "iam" in a namespace called "cluster".
  const clientOf = (
    ns: string,
    kind: 'OidcProvider' | 'ClusterOidcProvider',
    origin: string,
  ): OidcClient => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'OidcClient',
    metadata: { name: 'app', namespace: ns },
    spec: { providerRef: { name: 'iam', kind } },
    status: { registrationClientUri: `${origin}/reg/c1` },
  });
  const ofCluster = clientOf('team', 'ClusterOidcProvider', 'https://a.example');
  const ofNamespace = clientOf('cluster', 'OidcProvider', 'https://b.example');

  it('keys both apart, and each key names its own provider back', () => {
    const a = providerKeyOf(ofCluster);
    const b = providerKeyOf(ofNamespace);
    expect(a.key).not.toBe(b.key);
    expect(b.key).toBe('cluster/iam'); // the OidcProvider informer's cache key
    expect(parseProviderKey(a.key)).toEqual({ kind: 'ClusterOidcProvider', namespace: '', name: 'iam' });
    expect(parseProviderKey(b.key)).toEqual({ kind: 'OidcProvider', namespace: 'cluster', name: 'iam' });
  });

  describe('the registry keeps one client for each', () => {
    let server: Server;
    let base: string;
    const discoveries: string[] = [];

    beforeAll(async () => {
      server = createServer((req, res) => {
        discoveries.push(req.url ?? '');
        const issuer = `${base}${(req.url ?? '').replace('/.well-known/openid-configuration', '')}`;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer, registration_endpoint: `${issuer}/register` }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    const cache = <T>(entries: Record<string, T>): CacheReader<T> => ({
      get: (key) => entries[key],
      list: () => Object.values(entries),
    });
    const registry = (
      providers: Record<string, OidcProvider>,
      cluster: Record<string, ClusterOidcProvider>,
    ) =>
      new ProviderRegistry({
        rest: {} as KubeRest,
        providers: cache(providers),
        clusterProviders: cache(cluster),
        log: pino({ level: 'silent' }),
        retries: 0,
      });

    it('resolves both providers side by side, without one replacing the other', async () => {
      const clusterIam: ClusterOidcProvider = {
        apiVersion: API_GROUP_VERSION,
        kind: 'ClusterOidcProvider',
        metadata: { name: 'iam', uid: 'u-cluster', generation: 1 },
        spec: { issuerUrl: `${base}/a` },
      };
      const namespacedIam: OidcProvider = {
        apiVersion: API_GROUP_VERSION,
        kind: 'OidcProvider',
        metadata: { name: 'iam', namespace: 'cluster', uid: 'u-ns', generation: 1 },
        spec: { issuerUrl: `${base}/b` },
      };
      const r = registry({ 'cluster/iam': namespacedIam }, { iam: clusterIam });
      try {
        const a = await r.resolve(ofCluster);
        const b = await r.resolve(ofNamespace);
        expect(a.endpoints.issuer).toBe(`${base}/a`);
        expect(b.endpoints.issuer).toBe(`${base}/b`);
        // Both stay cached: resolving again builds nothing and discovers nothing.
        expect(await r.resolve(ofCluster)).toBe(a);
        expect(await r.resolve(ofNamespace)).toBe(b);
        expect(discoveries).toEqual([
          '/a/.well-known/openid-configuration',
          '/b/.well-known/openid-configuration',
        ]);
      } finally {
        await r.close();
      }
    });

    it('for deletion after both providers are gone, each client keeps its own origin', async () => {
      const r = registry({}, {});
      try {
        const a = await r.resolveForDeletion(ofCluster, 'https://a.example');
        const b = await r.resolveForDeletion(ofNamespace, 'https://b.example');
        expect(a).not.toBe(b);
        expect(await r.resolveForDeletion(ofCluster, 'https://a.example')).toBe(a);
        expect(() => a.client.assertManageable('https://a.example/reg/c1', 'c1')).not.toThrow();
        expect(() => b.client.assertManageable('https://a.example/reg/c1', 'c1')).toThrow();
      } finally {
        await r.close();
      }
    });
  });
});
