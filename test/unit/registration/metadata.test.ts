import { describe, expect, it } from 'vitest';
import type { OidcClientSpec } from '../../../src/api/types.generated.js';
import { UnexpectedResponseError } from '../../../src/registration/errors.js';
import {
  diffSpecified,
  extraMetadataConflicts,
  formatProviderForms,
  judgeWrite,
  metadataForUpdate,
  parseProviderForms,
  parseRegistrationResponse,
  specToMetadata,
} from '../../../src/registration/metadata.js';

const providerRef = { name: 'iam' };

const FULL_SPEC: OidcClientSpec = {
  providerRef: { name: 'iam', kind: 'ClusterOidcProvider' },
  clientName: 'shop',
  redirectUris: ['https://shop.example/cb'],
  postLogoutRedirectUris: ['https://shop.example/bye'],
  grantTypes: ['authorization_code', 'refresh_token'],
  responseTypes: ['code'],
  scopes: ['openid', 'profile', 'offline_access'],
  tokenEndpointAuthMethod: 'client_secret_post',
  contacts: ['ops@shop.example'],
  clientUri: 'https://shop.example',
  logoUri: 'https://shop.example/logo.png',
  policyUri: 'https://shop.example/privacy',
  tosUri: 'https://shop.example/tos',
  jwksUri: 'https://shop.example/jwks.json',
  applicationType: 'web',
  extraMetadata: { reuse_refresh_token: true, require_auth_time: false },
  secretName: 'shop-creds',
  managementSecretName: 'shop-mgmt',
  secretTemplate: { labels: { app: 'shop' } },
  deletionPolicy: 'Orphan',
  adoptFrom: { secretRef: { name: 'old', key: 'client.json' } },
};

describe('specToMetadata', () => {
  it('maps every standard field to its snake_case key and joins scopes', () => {
    expect(specToMetadata(FULL_SPEC)).toEqual({
      client_name: 'shop',
      redirect_uris: ['https://shop.example/cb'],
      post_logout_redirect_uris: ['https://shop.example/bye'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: 'openid profile offline_access',
      token_endpoint_auth_method: 'client_secret_post',
      contacts: ['ops@shop.example'],
      client_uri: 'https://shop.example',
      logo_uri: 'https://shop.example/logo.png',
      policy_uri: 'https://shop.example/privacy',
      tos_uri: 'https://shop.example/tos',
      jwks_uri: 'https://shop.example/jwks.json',
      application_type: 'web',
      reuse_refresh_token: true,
      require_auth_time: false,
    });
  });

  it('emits only the fields the user set', () => {
    expect(specToMetadata({ providerRef, redirectUris: ['https://a/cb'] })).toEqual({
      redirect_uris: ['https://a/cb'],
    });
    expect(specToMetadata({ providerRef })).toEqual({});
  });

  it('never emits operator-only fields', () => {
    const keys = Object.keys(specToMetadata(FULL_SPEC));
    for (const operatorOnly of [
      'providerRef',
      'provider_ref',
      'secretName',
      'secret_name',
      'managementSecretName',
      'secretTemplate',
      'deletionPolicy',
      'deletion_policy',
      'adoptFrom',
      'extraMetadata',
    ]) {
      expect(keys).not.toContain(operatorOnly);
    }
  });

  it('keeps empty lists (an explicit "none") and an empty scope', () => {
    expect(specToMetadata({ providerRef, contacts: [], scopes: [] })).toEqual({ contacts: [], scope: '' });
  });

  it('lets a standard field win over the same key in extraMetadata and never sends issued keys', () => {
    const metadata = specToMetadata({
      providerRef,
      clientName: 'from-spec',
      extraMetadata: {
        client_name: 'from-extra',
        client_id: 'hijack',
        client_secret: 's3cr3t',
        registration_access_token: 'rat',
        custom: { nested: [1, 2] },
      },
    });
    expect(metadata).toEqual({ client_name: 'from-spec', custom: { nested: [1, 2] } });
  });

  it('does not share arrays or objects with the spec', () => {
    const spec: OidcClientSpec = {
      providerRef,
      redirectUris: ['https://a/cb'],
      extraMetadata: { o: { a: 1 } },
    };
    const metadata = specToMetadata(spec);
    (metadata.redirect_uris as string[]).push('https://evil/cb');
    (metadata.o as Record<string, number>).a = 2;
    expect(spec.redirectUris).toEqual(['https://a/cb']);
    expect(spec.extraMetadata).toEqual({ o: { a: 1 } });
  });
});

describe('extraMetadataConflicts', () => {
  it('reports keys that repeat a standard field or name a server-issued value', () => {
    const spec: OidcClientSpec = {
      providerRef,
      extraMetadata: {
        scope: 'openid',
        redirect_uris: [],
        client_secret_expires_at: 0,
        client_id: 'x',
        registration_client_uri: 'https://x',
        client_id_issued_at: 1,
        client_secret: 'x',
        registration_access_token: 'x',
        reuse_refresh_token: true,
      },
    };
    expect(extraMetadataConflicts(spec)).toEqual([
      'client_id',
      'client_id_issued_at',
      'client_secret',
      'client_secret_expires_at',
      'redirect_uris',
      'registration_access_token',
      'registration_client_uri',
      'scope',
    ]);
  });

  it('is empty for server-specific keys and without extraMetadata', () => {
    expect(extraMetadataConflicts({ providerRef, extraMetadata: { reuse_refresh_token: true } })).toEqual([]);
    expect(extraMetadataConflicts({ providerRef })).toEqual([]);
  });

  it('does not treat camelCase spec names as conflicts (they are not metadata keys)', () => {
    expect(extraMetadataConflicts({ providerRef, extraMetadata: { clientName: 'x' } })).toEqual([]);
  });
});

describe('diffSpecified', () => {
  it('is empty when the observed registration holds every desired value', () => {
    const desired = { client_name: 'a', redirect_uris: ['https://a/cb'] };
    const observed = { ...desired, client_id: 'id', grant_types: ['authorization_code'], extra: 1 };
    expect(diffSpecified(desired, observed)).toEqual([]);
  });

  it('compares arrays as sets: order and duplicates do not matter, content does', () => {
    expect(diffSpecified({ grant_types: ['a', 'b'] }, { grant_types: ['b', 'a', 'a'] })).toEqual([]);
    expect(diffSpecified({ grant_types: ['a', 'b'] }, { grant_types: ['a'] })).toEqual([
      { field: 'grant_types', desired: ['a', 'b'], observed: ['a'] },
    ]);
    expect(diffSpecified({ grant_types: ['a'] }, { grant_types: ['a', 'c'] })).toHaveLength(1);
    expect(diffSpecified({ grant_types: ['a'] }, { grant_types: 'a' })).toHaveLength(1);
    expect(diffSpecified({ contacts: [] }, { contacts: [] })).toEqual([]);
  });

  it('compares scope as a set of space-separated tokens', () => {
    expect(diffSpecified({ scope: 'openid profile email' }, { scope: 'email  openid profile' })).toEqual([]);
    expect(diffSpecified({ scope: 'openid profile' }, { scope: 'openid' })).toEqual([
      { field: 'scope', desired: 'openid profile', observed: 'openid' },
    ]);
    expect(diffSpecified({ scope: 'openid' }, { scope: 'openid profile' })).toHaveLength(1);
  });

  it('compares other strings exactly', () => {
    expect(diffSpecified({ client_name: 'Shop' }, { client_name: 'shop' })).toHaveLength(1);
    expect(diffSpecified({ client_name: 'a b' }, { client_name: 'b a' })).toHaveLength(1);
    expect(diffSpecified({ client_name: 'https://A' }, { client_name: 'https://a/' })).toHaveLength(1);
  });

  it('compares URIs in their serialised form: host case, default port and an empty path do not matter', () => {
    expect(diffSpecified({ client_uri: 'https://a/' }, { client_uri: 'https://a' })).toEqual([]);
    expect(
      diffSpecified(
        { logo_uri: 'https://Shop.Example:443/l.png' },
        { logo_uri: 'https://shop.example/l.png' },
      ),
    ).toEqual([]);
    expect(
      diffSpecified(
        { redirect_uris: ['https://Shop.Example', 'https://b/cb'] },
        { redirect_uris: ['https://b/cb', 'https://shop.example/'] },
      ),
    ).toEqual([]);
    // A different path (even one slash more) or case in the path is another URI.
    expect(
      diffSpecified({ redirect_uris: ['https://b/cb'] }, { redirect_uris: ['https://b/cb/'] }),
    ).toHaveLength(1);
    expect(
      diffSpecified({ redirect_uris: ['https://b/cb'] }, { redirect_uris: ['https://b/CB'] }),
    ).toHaveLength(1);
    expect(diffSpecified({ redirect_uris: ['not a uri'] }, { redirect_uris: ['not a uri'] })).toEqual([]);
  });

  it('accepts a value in the form the provider was seen to keep it, and only that value', () => {
    const desired = { scope: 'email profile', grant_types: ['authorization_code'] };
    const answer = { scope: 'profile openid email', grant_types: ['authorization_code', 'refresh_token'] };
    const verdict = judgeWrite(desired, answer);
    expect(verdict.notKept).toEqual([]);
    expect(Object.keys(verdict.forms)).toEqual(['grant_types', 'scope']);
    expect(diffSpecified(desired, answer)).toHaveLength(2);
    expect(diffSpecified(desired, answer, verdict.forms)).toEqual([]);
    // Order does not matter; someone else's extra value does.
    expect(diffSpecified(desired, { ...answer, scope: 'email openid profile' }, verdict.forms)).toEqual([]);
    expect(
      diffSpecified(desired, { ...answer, scope: 'profile openid email admin' }, verdict.forms).map(
        (d) => d.field,
      ),
    ).toEqual(['scope']);
    // Learnt for one desired value only: a spec change compares afresh.
    expect(diffSpecified({ ...desired, scope: 'email' }, answer, verdict.forms).map((d) => d.field)).toEqual([
      'scope',
    ]);
  });
});

describe('judgeWrite', () => {
  it('tells kept, kept with additions and not kept apart', () => {
    expect(
      judgeWrite(
        {
          client_name: 'a',
          redirect_uris: ['https://A/cb'],
          scope: 'openid email',
          contacts: ['x@y'],
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          client_name: 'a',
          redirect_uris: ['https://a/cb'],
          scope: 'openid',
          contacts: ['x@y', 'z@y'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ),
    ).toEqual({
      forms: { contacts: expect.stringMatching(/^[0-9a-f]{12}\.[0-9a-f]{12}$/) },
      notKept: ['scope', 'token_endpoint_auth_method'],
    });
    expect(judgeWrite({ client_name: 'a' }, {})).toEqual({ forms: {}, notKept: ['client_name'] });
  });

  it('round-trips forms through their annotation text; unreadable text is none', () => {
    const { forms } = judgeWrite({ scope: 'a' }, { scope: 'a b' });
    expect(parseProviderForms(formatProviderForms(forms))).toEqual(forms);
    expect(formatProviderForms({})).toBe('');
    expect(parseProviderForms('')).toEqual({});
    expect(parseProviderForms('{nope')).toEqual({});
    expect(parseProviderForms('[1]')).toEqual({});
    expect(parseProviderForms('{"scope":1,"x":"a.b"}')).toEqual({ x: 'a.b' });
  });

  it('compares objects deeply regardless of key order', () => {
    const desired = { jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] } };
    expect(diffSpecified(desired, { jwks: { keys: [{ e: 'AQAB', n: 'x', kty: 'RSA' }] } })).toEqual([]);
    expect(diffSpecified(desired, { jwks: { keys: [{ e: 'AQAB', n: 'y', kty: 'RSA' }] } })).toHaveLength(1);
  });

  it('compares set elements that are objects by value', () => {
    expect(diffSpecified({ list: [{ a: 1, b: 2 }, { c: 3 }] }, { list: [{ c: 3 }, { b: 2, a: 1 }] })).toEqual(
      [],
    );
    expect(diffSpecified({ list: [{ a: 1 }] }, { list: [{ a: 2 }] })).toHaveLength(1);
  });

  it('distinguishes types: booleans, numbers and their string forms differ', () => {
    expect(diffSpecified({ reuse_refresh_token: true }, { reuse_refresh_token: true })).toEqual([]);
    expect(diffSpecified({ reuse_refresh_token: true }, { reuse_refresh_token: 'true' })).toHaveLength(1);
    expect(diffSpecified({ n: 1 }, { n: '1' })).toHaveLength(1);
  });

  it('reports a desired key missing from observed, and ignores keys only observed has', () => {
    expect(diffSpecified({ contacts: ['a@b'] }, { client_name: 'x' })).toEqual([
      { field: 'contacts', desired: ['a@b'], observed: undefined },
    ]);
    expect(diffSpecified({}, { client_name: 'x' })).toEqual([]);
  });

  it('treats an explicit null as a value (missing observed differs)', () => {
    expect(diffSpecified({ logo_uri: null }, { logo_uri: null })).toEqual([]);
    expect(diffSpecified({ logo_uri: null }, {})).toHaveLength(1);
  });

  it('does not read inherited properties as observed values', () => {
    expect(diffSpecified({ toString: 'x' }, {})).toHaveLength(1);
  });

  it('lists differences in desired key order', () => {
    const diffs = diffSpecified({ b: 1, a: 2, c: 3 }, { c: 3 });
    expect(diffs.map((d) => d.field)).toEqual(['b', 'a']);
  });
});

describe('metadataForUpdate', () => {
  const observed = {
    client_id: 'abc',
    client_secret: 'secret',
    registration_access_token: 'rat',
    registration_client_uri: 'https://idp/reg/abc',
    client_secret_expires_at: 0,
    client_id_issued_at: 1_700_000_000,
    client_name: 'old',
    redirect_uris: ['https://old/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    id_token_signed_response_alg: 'RS256',
  };

  it('keeps what the server holds, drops issued keys, overlays desired and names the client', () => {
    const body = metadataForUpdate({ client_name: 'new', scope: 'openid' }, observed, 'abc');
    expect(body).toEqual({
      client_id: 'abc',
      client_name: 'new',
      redirect_uris: ['https://old/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'RS256',
      scope: 'openid',
    });
  });

  it('never carries a secret, RAT or issued timestamps, even when desired names them', () => {
    const body = metadataForUpdate(
      { client_secret: 'x', registration_access_token: 'y', client_id_issued_at: 2 },
      observed,
      'abc',
    );
    for (const key of [
      'client_secret',
      'registration_access_token',
      'registration_client_uri',
      'client_secret_expires_at',
      'client_id_issued_at',
    ]) {
      expect(body).not.toHaveProperty(key);
    }
  });

  it('sets client_id from the argument, not from observed or desired', () => {
    expect(
      metadataForUpdate({ client_id: 'evil' }, { ...observed, client_id: 'other' }, 'abc').client_id,
    ).toBe('abc');
  });

  it('replaces arrays instead of merging them and leaves inputs untouched', () => {
    const desired = { redirect_uris: ['https://new/cb'] };
    const body = metadataForUpdate(desired, observed, 'abc');
    expect(body.redirect_uris).toEqual(['https://new/cb']);
    (body.redirect_uris as string[]).push('x');
    expect(desired.redirect_uris).toEqual(['https://new/cb']);
    expect(observed.redirect_uris).toEqual(['https://old/cb']);
    expect(observed.client_secret).toBe('secret');
  });

  it('leaves out what the server holds as "not set" (empty strings, null, {}), never what is desired', () => {
    const body = metadataForUpdate(
      { contacts: [], client_name: 'x' },
      {
        ...observed,
        client_uri: '',
        contacts: null,
        response_types: null,
        audience: [],
        jwks: {},
        owner: '',
        flag: false,
        n: 0,
      },
      'abc',
    );
    expect(body).toEqual({
      client_id: 'abc',
      client_name: 'x',
      redirect_uris: ['https://old/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'RS256',
      contacts: [],
      // An empty list is a value (leaving it out would bring back a default such as ["code"]).
      audience: [],
      flag: false,
      n: 0,
    });
  });
});

describe('parseRegistrationResponse', () => {
  it('maps the credentials and keeps every field (unknown ones too) in metadata', () => {
    const body = {
      client_id: 'abc',
      client_secret: 'secret',
      registration_access_token: 'rat',
      registration_client_uri: 'https://idp/reg/abc',
      client_secret_expires_at: 1_900_000_000,
      client_id_issued_at: 1_700_000_000,
      reuse_refresh_token: true,
    };
    expect(parseRegistrationResponse(body)).toEqual({
      clientId: 'abc',
      clientSecret: 'secret',
      registrationAccessToken: 'rat',
      registrationClientUri: 'https://idp/reg/abc',
      clientSecretExpiresAt: 1_900_000_000,
      metadata: body,
    });
  });

  it('leaves optional credentials out when absent, null or empty', () => {
    const parsed = parseRegistrationResponse({
      client_id: 'abc',
      client_secret: '',
      registration_access_token: null,
    });
    expect(parsed).toEqual({
      clientId: 'abc',
      metadata: { client_id: 'abc', client_secret: '', registration_access_token: null },
    });
    expect(parsed).not.toHaveProperty('clientSecret');
    expect(parsed).not.toHaveProperty('registrationAccessToken');
  });

  it('maps client_secret_expires_at 0 (never expires)', () => {
    expect(
      parseRegistrationResponse({ client_id: 'a', client_secret_expires_at: 0 }).clientSecretExpiresAt,
    ).toBe(0);
  });

  it.each([
    ['a string', 'x'],
    ['null', null],
    ['an array', [{ client_id: 'a' }]],
    ['no client_id', { client_secret: 'x' }],
    ['an empty client_id', { client_id: '' }],
    ['a numeric client_id', { client_id: 42 }],
    ['a non-string secret', { client_id: 'a', client_secret: 42 }],
    ['a non-string RAT', { client_id: 'a', registration_access_token: {} }],
    ['a string expiry', { client_id: 'a', client_secret_expires_at: '0' }],
    ['a negative issued-at', { client_id: 'a', client_id_issued_at: -1 }],
  ])('rejects %s with UnexpectedResponseError', (_name, body) => {
    expect(() => parseRegistrationResponse(body)).toThrow(UnexpectedResponseError);
  });

  it('names the bad field but never echoes values (they may be secrets)', () => {
    const secret = 'very-secret-value-123';
    try {
      parseRegistrationResponse({ client_secret: secret });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain('client_id');
      expect(JSON.stringify(error)).not.toContain(secret);
      expect((error as Error).message).not.toContain(secret);
    }
    try {
      parseRegistrationResponse({ client_id: 'a', registration_access_token: 12345678 });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain('registration_access_token');
      expect((error as Error).message).not.toContain('12345678');
    }
  });
});
