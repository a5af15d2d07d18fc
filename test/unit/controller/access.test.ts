// The tenancy gate decides from informer caches alone; these fakes are those caches.
import type { V1Namespace } from '@kubernetes/client-node';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ClusterOidcProvider, OidcClient, OidcProvider } from '../../../src/api/types.generated.js';
import { ClientAccess } from '../../../src/controller/access.js';
import { EventRecorder } from '../../../src/kube/events.js';
import type { CacheReader } from '../../../src/kube/informer.js';
import type { KubeRest } from '../../../src/kube/rest.js';

const cache = <T>(entries: Record<string, T>): CacheReader<T> => ({
  get: (k) => entries[k],
  list: () => Object.values(entries),
});

function setup(opts: {
  cluster?: ClusterOidcProvider['spec'];
  namespaced?: OidcProvider['spec'];
  namespaces?: Record<string, Record<string, string>>;
}) {
  const events: { reason: string; message: string; type: string }[] = [];
  const rest = {
    create: async (_path: string, body: { reason: string; message: string; type: string }) => {
      events.push({ reason: body.reason, message: body.message, type: body.type });
      return body;
    },
  } as unknown as KubeRest;
  const access = new ClientAccess({
    providers: cache<OidcProvider>(
      opts.namespaced
        ? {
            'team-a/local': {
              apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
              kind: 'OidcProvider',
              metadata: { name: 'local', namespace: 'team-a' },
              spec: opts.namespaced,
            },
          }
        : {},
    ),
    clusterProviders: cache<ClusterOidcProvider>(
      opts.cluster
        ? {
            shared: {
              apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
              kind: 'ClusterOidcProvider',
              metadata: { name: 'shared' },
              spec: opts.cluster,
            },
          }
        : {},
    ),
    namespaces: cache<V1Namespace>(
      Object.fromEntries(
        Object.entries(opts.namespaces ?? {}).map(([name, labels]) => [name, { metadata: { name, labels } }]),
      ),
    ),
    events: new EventRecorder(rest, 'test', pino({ level: 'silent' })),
  });
  return { access, events };
}

const client = (
  namespace: string,
  spec: Partial<OidcClient['spec']> = {},
  status?: OidcClient['status'],
): OidcClient => ({
  apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
  kind: 'OidcClient',
  metadata: { name: 'app', namespace, uid: `uid-${namespace}` },
  spec: { providerRef: { name: 'shared', kind: 'ClusterOidcProvider' }, ...spec },
  ...(status ? { status } : {}),
});

describe('ClientAccess', () => {
  it('lets everything through when the provider is missing (ProviderNotFound is reported later) or unrestricted', () => {
    expect(setup({}).access.check(client('team-a'))).toBeUndefined();
    expect(setup({ cluster: { issuerUrl: 'https://i' } }).access.check(client('team-a'))).toBeUndefined();
  });

  it('refuses a namespace outside spec.conditions: stalled NotAllowed with a Warning Event', async () => {
    const { access, events } = setup({
      cluster: { issuerUrl: 'https://i', conditions: [{ namespaces: ['team-a'] }] },
      namespaces: { 'team-a': {}, 'team-b': {} },
    });
    expect(access.check(client('team-a'))).toBeUndefined();
    const refused = access.check(client('team-b'));
    expect(refused).toEqual({
      kind: 'stalled',
      reason: 'NotAllowed',
      message:
        'namespace team-b is not allowed to use ClusterOidcProvider shared (see its spec.conditions); nothing was sent to the provider.',
    });
    await Promise.resolve();
    expect(events).toEqual([{ reason: 'NotAllowed', message: refused?.message, type: 'Warning' }]);
  });

  it('says what happens to a client registered before its namespace lost access', () => {
    const { access } = setup({
      cluster: { issuerUrl: 'https://i', conditions: [{ namespaces: ['team-a'] }] },
      namespaces: { 'team-b': {} },
    });
    const refused = access.check(client('team-b', {}, { clientId: 'c-1' }));
    expect(refused?.message).toMatch(
      /Client c-1, registered before, is left as it is at the provider and its Secrets are kept/,
    );
  });

  it('matches namespace labels from the cache; unknown labels mean "look again", not "allowed"', () => {
    const { access } = setup({
      cluster: {
        issuerUrl: 'https://i',
        conditions: [{ namespaceSelector: { matchLabels: { oidc: 'yes' } } }],
      },
      namespaces: { yes: { oidc: 'yes' }, no: { oidc: 'no' } },
    });
    expect(access.check(client('yes'))).toBeUndefined();
    expect(access.check(client('no'))?.reason).toBe('NotAllowed');
    expect(access.check(client('fresh'))).toMatchObject({ kind: 'retry', reason: 'Progressing' });
  });

  it('applies clientPolicy on both kinds, naming field and value', () => {
    const clientPolicy = {
      allowedGrantTypes: ['authorization_code'],
      redirectUris: { allowedHosts: ['app.example.org'] },
    };
    const { access } = setup({
      cluster: { issuerUrl: 'https://i', clientPolicy },
      namespaced: { issuerUrl: 'https://i', clientPolicy },
    });
    const bad = { grantTypes: ['client_credentials'], redirectUris: ['https://evil.example/cb'] };
    const cluster = access.check(client('team-a', bad));
    expect(cluster).toMatchObject({ kind: 'stalled', reason: 'PolicyViolation' });
    expect(cluster?.message).toBe(
      'not allowed by the clientPolicy of ClusterOidcProvider shared: spec.grantTypes[0]: "client_credentials" is not allowed (allowed: authorization_code); spec.redirectUris[0]: "https://evil.example/cb" is not allowed: host "evil.example" is not in allowedHosts (app.example.org); nothing was sent to the provider',
    );
    const local = access.check(client('team-a', { ...bad, providerRef: { name: 'local' } }));
    expect(local?.message).toMatch(/^not allowed by the clientPolicy of OidcProvider local: /);
    expect(access.check(client('team-a', { redirectUris: ['https://app.example.org/cb'] }))).toBeUndefined();
  });

  it('a policy that does not compile refuses every client (fail closed)', () => {
    const { access } = setup({
      cluster: { issuerUrl: 'https://i', clientPolicy: { redirectUris: { allowedPatterns: ['(x'] } } },
    });
    expect(access.check(client('team-a'))).toMatchObject({
      reason: 'PolicyViolation',
      message: expect.stringMatching(/has an invalid clientPolicy/),
    });
  });
});
