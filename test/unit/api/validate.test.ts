import { describe, expect, it } from 'vitest';
import { offlineTwin } from '../../../src/api/rules.js';
import { API_GROUP_VERSION, resources } from '../../../src/api/schema.js';
import type { Schema } from '../../../src/api/schema-builder.js';
import {
  STANDARD_CLIENT_METADATA,
  type ValidationIssue,
  validateOidcClientSpec,
  validateProviderSpec,
  validateResource,
} from '../../../src/api/validate.js';

const client = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'web' }) => ({
  apiVersion: API_GROUP_VERSION,
  kind: 'OidcClient',
  metadata,
  spec,
});
const provider = (kind: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) => ({
  apiVersion: API_GROUP_VERSION,
  kind,
  metadata: { name: 'iam', ...metadata },
  spec,
});
const minimalSpec = { providerRef: { name: 'iam' } };

/** path → message, to assert both without depending on issue order. */
const byPath = (issues: ValidationIssue[]): Record<string, string> =>
  Object.fromEntries(issues.map((i) => [i.path, i.message]));

describe('validateResource: valid objects', () => {
  it('accepts a minimal and a complete OidcClient', () => {
    expect(validateResource(client(minimalSpec))).toEqual({ kind: 'OidcClient', checked: true, issues: [] });
    const full = client({
      providerRef: { name: 'iam', kind: 'ClusterOidcProvider' },
      clientName: 'Web',
      redirectUris: ['https://app.example.org/cb', 'com.example.app:/oauth2redirect'],
      postLogoutRedirectUris: ['https://app.example.org/'],
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      scopes: ['openid', 'email'],
      tokenEndpointAuthMethod: 'client_secret_post',
      contacts: ['ops@example.org'],
      clientUri: 'https://app.example.org/',
      logoUri: 'https://app.example.org/logo.png',
      policyUri: 'https://app.example.org/policy',
      tosUri: 'https://app.example.org/tos',
      jwksUri: 'https://app.example.org/jwks.json',
      applicationType: 'native',
      extraMetadata: { reuse_refresh_token: true, nested: { any: ['thing', 1, null] } },
      secretName: 'web-creds',
      managementSecretName: 'web-rat',
      secretTemplate: { labels: { a: 'b' }, annotations: { 'example.org/x': 'y' } },
      deletionPolicy: 'Orphan',
      adoptFrom: { secretRef: { name: 'web-adopt', key: 'client.json' } },
    });
    expect(validateResource(full).issues).toEqual([]);
  });

  it('accepts providers and a status with conditions', () => {
    const spec = {
      issuerUrl: 'https://iam.example.org/',
      initialAccessTokenSecretRef: { name: 'iat', namespace: 'iam-system', key: 'token' },
      maxConcurrentRequests: 8,
    };
    expect(validateResource(provider('OidcProvider', spec)).issues).toEqual([]);
    expect(validateResource(provider('ClusterOidcProvider', spec)).issues).toEqual([]);
    const withStatus = {
      ...client(minimalSpec),
      status: {
        clientId: 'abc',
        conditions: [
          { type: 'Ready', status: 'True', lastTransitionTime: '2025-11-26T01:00:00Z' },
          { type: 'Synced', status: 'False', reason: 'Drift' },
        ],
      },
    };
    expect(validateResource(withStatus).issues).toEqual([]);
  });

  it('prunes nulls of declared fields like the apiserver (an empty YAML value)', () => {
    expect(validateResource(client({ ...minimalSpec, clientName: null, redirectUris: null })).issues).toEqual(
      [],
    );
    expect(byPath(validateResource(client({ providerRef: null })).issues)).toEqual({
      '/spec/providerRef': 'is required',
    });
  });
});

describe('validateResource: structural errors carry the field path', () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['missing spec', { ...client(minimalSpec), spec: undefined }, '/spec', /is required/],
    ['missing providerRef', client({}), '/spec/providerRef', /is required/],
    ['missing providerRef.name', client({ providerRef: {} }), '/spec/providerRef/name', /is required/],
    [
      'unknown spec field',
      client({ ...minimalSpec, redirectURIs: [] }),
      '/spec/redirectURIs',
      /unknown field/,
    ],
    ['unknown top-level field', { ...client(minimalSpec), specs: {} }, '/specs', /unknown field/],
    ['wrong type', client({ ...minimalSpec, redirectUris: 'https://a/cb' }), '/spec/redirectUris', /array/],
    ['wrong item type', client({ ...minimalSpec, contacts: [42] }), '/spec/contacts/0', /string/],
    ['enum', client({ ...minimalSpec, deletionPolicy: 'Keep' }), '/spec/deletionPolicy', /Delete, Orphan/],
    [
      'enum in a nested object',
      client({ providerRef: { name: 'iam', kind: 'Provider' } }),
      '/spec/providerRef/kind',
      /OidcProvider, ClusterOidcProvider/,
    ],
    ['pattern', client({ ...minimalSpec, scopes: ['openid', 'a b'] }), '/spec/scopes/1', /pattern/],
    [
      'duplicate in a set list',
      client({ ...minimalSpec, grantTypes: ['refresh_token', 'authorization_code', 'refresh_token'] }),
      '/spec/grantTypes/2',
      /duplicate of item 0/,
    ],
    [
      'non-string label value',
      client({ ...minimalSpec, secretTemplate: { labels: { a: 1 } } }),
      '/spec/secretTemplate/labels/a',
      /string/,
    ],
    [
      'key escaped in the pointer',
      client({ ...minimalSpec, secretTemplate: { labels: { 'example.org/a': 1 } } }),
      '/spec/secretTemplate/labels/example.org~1a',
      /string/,
    ],
    [
      'duplicate key in a map list',
      {
        ...client(minimalSpec),
        status: {
          conditions: [
            { type: 'Ready', status: 'True' },
            { type: 'Ready', status: 'False' },
          ],
        },
      },
      '/status/conditions/1',
      /duplicate of item 0/,
    ],
    [
      'date-time format',
      { ...client(minimalSpec), status: { lastSyncTime: 'yesterday' } },
      '/status/lastSyncTime',
      /date-time/,
    ],
    [
      'integer bounds',
      provider('OidcProvider', { issuerUrl: 'https://iam.example.org/', maxConcurrentRequests: 0 }),
      '/spec/maxConcurrentRequests',
      />= 1/,
    ],
    [
      'issuer pattern',
      provider('OidcProvider', { issuerUrl: 'ftp://iam.example.org/' }),
      '/spec/issuerUrl',
      /^must be an http or https URL with a host/,
    ],
  ];
  it.each(cases)('%s', (_name, obj, path, message) => {
    const issues = validateResource(obj).issues;
    expect(issues.map((i) => i.path)).toContain(path);
    expect(byPath(issues)[path]).toMatch(message);
  });
});

describe('validateResource: semantic errors', () => {
  it('rejects extraMetadata keys that repeat a standard field or are issued by the server', () => {
    const issues = validateResource(
      client({
        ...minimalSpec,
        extraMetadata: { scope: 'openid', client_secret: 'x', registration_access_token: 'y', ok_field: 1 },
      }),
    ).issues;
    expect(byPath(issues)).toEqual({
      '/spec/extraMetadata/scope': 'repeats a standard field: set spec.scopes instead',
      '/spec/extraMetadata/client_secret': 'is issued by the provider and cannot be set by the client',
      '/spec/extraMetadata/registration_access_token':
        'is issued by the provider and cannot be set by the client',
    });
    // Messages never echo values: a misplaced secret must not end up in logs or conditions.
    expect(JSON.stringify(issues)).not.toMatch(/"x"|"y"/);
  });

  it('checks every standard and forbidden extraMetadata key', () => {
    const forbidden = [
      ...Object.values(STANDARD_CLIENT_METADATA),
      'client_id',
      'client_secret',
      'registration_access_token',
      'registration_client_uri',
      'client_id_issued_at',
      'client_secret_expires_at',
    ];
    // Each key is declared with its wire type (CEL needs one): a value of that type reaches the rule.
    const value = (k: string) =>
      k.endsWith('_at') ? 1 : k.endsWith('uris') || k.endsWith('types') || k === 'contacts' ? ['v'] : 'v';
    const extraMetadata = Object.fromEntries(forbidden.map((k) => [k, value(k)]));
    const paths = validateResource(client({ ...minimalSpec, extraMetadata })).issues.map((i) => i.path);
    expect(paths.sort()).toEqual(forbidden.map((k) => `/spec/extraMetadata/${k}`).sort());
  });

  it('requires DNS-1123 names', () => {
    const issues = validateResource(
      client(
        {
          providerRef: { name: 'IAM' },
          secretName: 'web_secret',
          adoptFrom: { secretRef: { name: '-adopt' } },
        },
        { name: 'Web.App', namespace: 'not.a.label' },
      ),
    ).issues;
    expect(Object.keys(byPath(issues)).sort()).toEqual([
      '/metadata/name',
      '/metadata/namespace',
      '/spec/adoptFrom/secretRef/name',
      '/spec/providerRef/name',
      '/spec/secretName',
    ]);
    expect(byPath(issues)['/metadata/name']).toMatch(/DNS-1123 subdomain/);
    expect(byPath(issues)['/metadata/namespace']).toMatch(/DNS-1123 label/);
    expect(
      validateResource(client(minimalSpec, { name: 'a'.repeat(254) })).issues.map((i) => i.path),
    ).toContain('/metadata/name');
    expect(validateResource(client(minimalSpec, { name: 'web.example-1' })).issues).toEqual([]);
  });

  it('requires absolute URIs and fragment-free redirect URIs', () => {
    const issues = validateResource(
      client({
        ...minimalSpec,
        redirectUris: ['/relative/cb', 'https://app.example.org/cb#frag'],
        postLogoutRedirectUris: ['https://app.example.org/#ok-here'],
        logoUri: 'logo.png',
      }),
    ).issues;
    const absolute = expect.stringMatching(/^must be an absolute URI/);
    expect(byPath(issues)).toEqual({
      '/spec/redirectUris/0': absolute,
      '/spec/redirectUris/1': 'must not contain a fragment (#)',
      '/spec/logoUri': absolute,
    });
    // Native apps' private-use schemes are absolute URIs; http(s) needs a host; no spaces or non-ASCII.
    // User information is legal (a provider's clientPolicy refuses it).
    expect(
      validateResource(client({ ...minimalSpec, redirectUris: ['https://u@app.example.org/cb'] })).issues,
    ).toEqual([]);
    const uris = [
      'com.example.app:/cb',
      'http://localhost:8080/cb',
      'https:/x',
      'https://a b/',
      'https://ä.example/',
    ];
    expect(
      Object.keys(byPath(validateResource(client({ ...minimalSpec, redirectUris: uris })).issues)),
    ).toEqual(['/spec/redirectUris/2', '/spec/redirectUris/3', '/spec/redirectUris/4']);
  });

  it('rejects one name for the application and the management Secret, defaults included', () => {
    const explicit = validateResource(client({ ...minimalSpec, secretName: 's', managementSecretName: 's' }));
    expect(byPath(explicit.issues)).toEqual({
      '/spec/managementSecretName':
        'the application Secret and the management Secret must have different names',
    });
    const viaDefault = validateResource(client({ ...minimalSpec, secretName: 'web-oidc-registration' }));
    expect(Object.keys(byPath(viaDefault.issues))).toEqual(['/spec/secretName']);
  });

  it('requires explicit Secret names when the defaults would exceed 253 characters (CRD CEL rules)', () => {
    expect(validateResource(client(minimalSpec, { name: 'a'.repeat(235) })).issues).toEqual([]);
    expect(byPath(validateResource(client(minimalSpec, { name: 'a'.repeat(236) })).issues)).toEqual({
      '/spec/managementSecretName': expect.stringMatching(/^metadata.name is longer than 235 characters/),
    });
    expect(
      Object.keys(byPath(validateResource(client(minimalSpec, { name: 'a'.repeat(242) })).issues)),
    ).toEqual(['/spec/secretName', '/spec/managementSecretName']);
    const named = { ...minimalSpec, secretName: 'app', managementSecretName: 'app-rat' };
    expect(validateResource(client(named, { name: 'a'.repeat(253) })).issues).toEqual([]);
  });

  it('checks ClusterOidcProvider conditions and clientPolicy patterns (CRD CEL rules, offline)', () => {
    const spec = {
      issuerUrl: 'https://i/',
      conditions: [
        { namespaces: ['team-a'] },
        {},
        { namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'In' }] } },
        { namespaceSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists', values: ['x'] }] } },
      ],
      clientPolicy: { redirectUris: { allowedPatterns: ['https://ok\\.example/.*', '(unclosed'] } },
    };
    expect(byPath(validateResource(provider('ClusterOidcProvider', spec)).issues)).toEqual({
      '/spec/conditions/1': 'a condition needs namespaces or a namespaceSelector',
      '/spec/conditions/2/namespaceSelector/matchExpressions/0':
        'In and NotIn need at least one value; Exists and DoesNotExist take no values',
      '/spec/conditions/3/namespaceSelector/matchExpressions/0':
        'In and NotIn need at least one value; Exists and DoesNotExist take no values',
      '/spec/clientPolicy': expect.stringMatching(/allowedPatterns\[1\] is not a valid regular expression/),
    });
    // conditions exist only on the cluster kind; an OidcProvider still gets its clientPolicy checked.
    expect(Object.keys(byPath(validateResource(provider('OidcProvider', spec)).issues))).toEqual([
      '/spec/conditions',
      '/spec/clientPolicy',
    ]);
    expect(
      validateResource(provider('ClusterOidcProvider', { issuerUrl: 'https://i/', conditions: [] })).issues,
    ).toEqual([{ path: '/spec/conditions', message: 'must NOT have fewer than 1 items' }]);
  });

  it('checks provider Secret namespaces by scope', () => {
    const ref = { name: 'ca' };
    expect(
      byPath(
        validateResource(provider('ClusterOidcProvider', { issuerUrl: 'https://i/', caSecretRef: ref }))
          .issues,
      ),
    ).toEqual({ '/spec/caSecretRef/namespace': 'is required for a ClusterOidcProvider' });
    const foreign = {
      issuerUrl: 'https://i/',
      initialAccessTokenSecretRef: { name: 't', namespace: 'other' },
    };
    expect(byPath(validateResource(provider('OidcProvider', foreign, { namespace: 'mine' })).issues)).toEqual(
      {
        '/spec/initialAccessTokenSecretRef/namespace': "must be empty or the OidcProvider's own namespace",
      },
    );
    expect(validateResource(provider('OidcProvider', foreign)).issues).toEqual([]);
    const own = { issuerUrl: 'https://i/', caSecretRef: { name: 'ca', namespace: '' } };
    expect(validateResource(provider('OidcProvider', own, { namespace: 'mine' })).issues).toEqual([]);
    expect(
      validateProviderSpec({ issuerUrl: 'https://i/', caSecretRef: ref }, { clusterScoped: true }),
    ).toHaveLength(1);
  });
});

describe('validateProviderSpec: managementOrigins', () => {
  it('accepts origins, refuses paths and http next to an https provider', () => {
    const check = (spec: Record<string, unknown>) => validateProviderSpec(spec, { clusterScoped: false });
    expect(
      check({ issuerUrl: 'https://iam.example.org/', managementOrigins: ['https://admin.example.org:8443'] }),
    ).toEqual([]);
    expect(
      check({
        issuerUrl: 'https://iam.example.org/',
        managementOrigins: ['https://a.example.org/x', 'http://b.example.org'],
      }),
    ).toEqual([
      { path: '/spec/managementOrigins', message: expect.stringMatching(/^http origins are refused/) },
      { path: '/spec/managementOrigins/0', message: expect.stringMatching(/origin only/) },
    ]);
    expect(check({ issuerUrl: 'http://iam.local/', managementOrigins: ['http://admin.local'] })).toEqual([]);
  });
});

describe('validateResource: dispatch', () => {
  it('skips other API groups but names their kind', () => {
    expect(validateResource({ apiVersion: 'v1', kind: 'Secret', spec: 42 })).toEqual({
      kind: 'Secret',
      checked: false,
      issues: [],
    });
    expect(validateResource({ apiVersion: 'example.org/v1', kind: 'OidcClient' }).checked).toBe(false);
  });

  it('reports an unknown version or kind of our group, and a missing apiVersion on our kind', () => {
    expect(
      validateResource({ ...client(minimalSpec), apiVersion: 'oidc.dcr-operator.dev/v1' }).issues,
    ).toEqual([{ path: '/apiVersion', message: 'unsupported version: this release serves v1alpha1' }]);
    const unknownKind = validateResource({ ...client(minimalSpec), kind: 'OidcClients' });
    expect(unknownKind).toMatchObject({ kind: 'OidcClients', checked: true });
    expect(byPath(unknownKind.issues)['/kind']).toMatch(/unknown kind: one of OidcClient, OidcProvider/);
    expect(byPath(validateResource({ ...client(minimalSpec), apiVersion: undefined }).issues)).toEqual({
      '/apiVersion': 'is required (oidc.dcr-operator.dev/v1alpha1)',
    });
    expect(validateResource('nope').issues).toEqual([{ path: '/', message: 'must be an object' }]);
  });
});

describe('validateOidcClientSpec', () => {
  it('runs structural and semantic checks with paths under /spec', () => {
    expect(validateOidcClientSpec(minimalSpec)).toEqual([]);
    expect(
      byPath(
        validateOidcClientSpec({
          providerRef: { name: 'iam' },
          applicationType: 'desktop',
          extraMetadata: { client_id: 'x' },
        }),
      ),
    ).toEqual({
      '/spec/applicationType': 'must be one of: web, native',
      '/spec/extraMetadata/client_id': 'is issued by the provider and cannot be set by the client',
    });
    expect(validateOidcClientSpec(undefined)).toEqual([{ path: '/spec', message: 'must be object' }]);
  });

  it('resolves default Secret names when given the object name', () => {
    const spec = { ...minimalSpec, managementSecretName: 'app-oidc-client' };
    expect(validateOidcClientSpec(spec)).toEqual([]);
    expect(validateOidcClientSpec(spec, { name: 'app' }).map((i) => i.path)).toEqual([
      '/spec/managementSecretName',
    ]);
  });
});

describe('schema coverage', () => {
  function celRules(schema: Schema, out: string[] = []): string[] {
    for (const v of schema['x-kubernetes-validations'] ?? []) out.push(v.rule);
    for (const child of Object.values(schema.properties ?? {})) celRules(child, out);
    if (schema.items) celRules(schema.items, out);
    return out;
  }

  it('every CEL rule of the schema has an offline twin (or is a transition rule, server only)', () => {
    const rules = resources.flatMap((r) => [
      ...celRules(r.spec),
      ...(r.validations ?? []).map((v) => v.rule),
    ]);
    expect(rules.length).toBeGreaterThan(10);
    for (const rule of rules) {
      const twin = offlineTwin(rule);
      expect(twin, rule).toBeDefined();
      if (twin === 'server-only') expect(rule).toContain('oldSelf');
      // Reported by validate.ts's own checks (the Secret template parser's detailed messages).
      if (twin === 'semantic')
        expect(rule).toMatch(/self\.(all|type|mergePolicy)|has\(self\.type\)|has\(self\.mergePolicy\)/);
    }
  });

  it('STANDARD_CLIENT_METADATA matches the spec fields that name an RFC 7591 field', () => {
    const spec = resources.find((r) => r.kind === 'OidcClient')?.spec.properties ?? {};
    for (const field of Object.keys(STANDARD_CLIENT_METADATA)) expect(spec, field).toHaveProperty(field);
    const described = Object.entries(spec)
      .map(([field, s]) => [field, /\(([a-z_]+)\)/.exec(s.description ?? '')?.[1]] as const)
      .filter(([, wire]) => wire !== undefined);
    expect(described.length).toBeGreaterThan(10);
    for (const [field, wire] of described) {
      expect(STANDARD_CLIENT_METADATA, field).toHaveProperty(field, wire);
    }
  });
});

describe('validateOidcClientSpec: secretTemplate and clientName', () => {
  it('refuses label and annotation keys and label values the apiserver would refuse on the Secret', () => {
    const issues = byPath(
      validateOidcClientSpec({
        ...minimalSpec,
        secretTemplate: {
          labels: { 'team/app': 'shop', 'bad key': 'x', ok: 'has space', 'Upper.Example/x': 'y' },
          annotations: { 'example.org/note': 'any value at all', '-x': 'y' },
        },
      }),
    );
    expect(Object.keys(issues).sort()).toEqual([
      '/spec/secretTemplate/annotations/-x',
      '/spec/secretTemplate/labels/Upper.Example~1x',
      '/spec/secretTemplate/labels/bad key',
      '/spec/secretTemplate/labels/ok',
    ]);
    expect(issues['/spec/secretTemplate/labels/ok']).toMatch(/invalid label value/);
    expect(issues['/spec/secretTemplate/labels/Upper.Example~1x']).toMatch(/prefix/);
  });

  it("refuses the operator's own label keys (they map Secrets back to their OidcClient)", () => {
    const issues = byPath(
      validateOidcClientSpec({
        ...minimalSpec,
        secretTemplate: {
          labels: { 'oidc.dcr-operator.dev/client': 'other', 'app.kubernetes.io/managed-by': 'me' },
        },
      }),
    );
    expect(Object.values(issues)).toEqual([
      'invalid key: is reserved for the operator',
      'invalid key: is reserved for the operator',
    ]);
  });

  it('refuses an empty clientName at the schema (before the provider would)', () => {
    expect(byPath(validateOidcClientSpec({ ...minimalSpec, clientName: '' }))).toHaveProperty(
      '/spec/clientName',
    );
  });
});
