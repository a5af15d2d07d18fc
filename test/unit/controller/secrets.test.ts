import { describe, expect, it } from 'vitest';
import type { OidcClient } from '../../../src/api/types.generated.js';
import { parseAdoptionSecret } from '../../../src/controller/adoption.js';
import { appSecretValues } from '../../../src/controller/app-secret-template.js';
import {
  appSecretMatches,
  desiredAppSecret,
  encodeData,
  isManaged,
  isOwnedBy,
  managementSecretData,
  readRegistration,
} from '../../../src/controller/secrets.js';

const cr: OidcClient = {
  apiVersion: 'oidc.dcr-operator.dev/v1alpha1',
  kind: 'OidcClient',
  metadata: { name: 'web', namespace: 'ns', uid: 'uid-1' },
  spec: {
    providerRef: { name: 'iam' },
    secretTemplate: { labels: { team: 'a' }, annotations: { note: 'x' } },
  },
};

describe('Secrets', () => {
  it('builds the application Secret with template labels, owner and the four keys', () => {
    const s = desiredAppSecret(
      cr,
      'web-oidc-client',
      encodeData(
        appSecretValues(cr, {
          clientId: 'id',
          clientSecret: 's',
          endpoints: { issuer: 'https://i', tokenEndpoint: 'https://i/token' },
        }),
      ),
    );
    expect(Object.keys(s.data ?? {}).sort()).toEqual([
      'client_id',
      'client_secret',
      'issuer',
      'token_endpoint',
    ]);
    expect(s.metadata?.labels).toMatchObject({
      team: 'a',
      'app.kubernetes.io/managed-by': 'oidc-client-operator',
    });
    expect(isOwnedBy(s, cr)).toBe(true);
    expect(isOwnedBy(s, { ...cr, metadata: { ...cr.metadata, uid: 'other' } })).toBe(false);
  });

  it('accepts labels added by others but not changed data', () => {
    const want = desiredAppSecret(
      cr,
      'n',
      encodeData(appSecretValues(cr, { clientId: 'id', endpoints: { issuer: 'i' } })),
    );
    const extra = {
      ...want,
      metadata: { ...want.metadata, labels: { ...want.metadata?.labels, other: 'y' } },
    };
    expect(appSecretMatches(extra, want)).toBe(true);
    expect(appSecretMatches({ ...want, data: { ...want.data, client_id: 'eA==' } }, want)).toBe(false);
    expect(appSecretMatches({ ...want, data: { ...want.data, extra: 'eA==' } }, want)).toBe(false);
  });

  it('reads a stored registration only when all of id, token and URI are there', () => {
    const full = {
      data: encodeData({ client_id: 'a', registration_access_token: 't', registration_client_uri: 'u' }),
    };
    expect(readRegistration(full)).toMatchObject({ clientId: 'a', registrationAccessToken: 't' });
    expect(
      readRegistration({ data: encodeData({ client_id: 'a', registration_client_uri: 'u' }) }),
    ).toBeUndefined();
  });

  it('tells a managed registration (token and URI) from one without RFC 7592 management', () => {
    const managed = { clientId: 'a', registrationAccessToken: 't', registrationClientUri: 'u' };
    expect(isManaged(managed)).toBe(true);
    expect(isManaged({ clientId: 'a', clientSecret: 's' })).toBe(false);
    expect(managementSecretData({ clientId: 'a', clientSecret: 's' })).toEqual(
      encodeData({ client_id: 'a', client_secret: 's' }),
    );
    expect(managementSecretData(managed)).toEqual(
      encodeData({ client_id: 'a', registration_access_token: 't', registration_client_uri: 'u' }),
    );
  });
});

describe('parseAdoptionSecret', () => {
  it('reads the IAM dashboard JSON', () => {
    const json = JSON.stringify({
      client_id: 'c',
      client_secret: 's',
      registration_access_token: 't',
      registration_client_uri: 'u',
      scope: 'openid',
    });
    expect(parseAdoptionSecret({ data: encodeData({ 'client.json': json }) }, 'client.json')).toEqual({
      kind: 'managed',
      clientId: 'c',
      clientSecret: 's',
      registrationAccessToken: 't',
      registrationClientUri: 'u',
    });
  });

  it('reads individual keys', () => {
    const s = {
      data: encodeData({ client_id: 'c', registration_access_token: 't', registration_client_uri: 'u' }),
    };
    expect(parseAdoptionSecret(s, 'client.json')).toMatchObject({ clientId: 'c' });
  });

  it('reads what a server wrote for "not set" (empty strings, null) as absent', () => {
    const json = JSON.stringify({
      client_id: 'c',
      client_secret: '',
      registration_access_token: 't',
      registration_client_uri: 'u',
      client_uri: '',
      contacts: null,
      jwks: {},
    });
    expect(parseAdoptionSecret({ data: encodeData({ 'client.json': json }) }, 'client.json')).toEqual({
      kind: 'managed',
      clientId: 'c',
      registrationAccessToken: 't',
      registrationClientUri: 'u',
    });
  });

  it('takes credentials without token and URI as a registration without RFC 7592 management', () => {
    const json = '{"client_id":"c","client_secret":"hush","registration_access_token":null}';
    expect(parseAdoptionSecret({ data: encodeData({ 'client.json': json }) }, 'client.json')).toEqual({
      kind: 'unmanaged',
      clientId: 'c',
      clientSecret: 'hush',
    });
  });

  it('names what is missing, without quoting values', () => {
    const r = parseAdoptionSecret(
      {
        data: encodeData({
          'client.json': '{"client_id":"c","client_secret":"hush","registration_client_uri":"u"}',
        }),
      },
      'client.json',
    );
    expect(r).toEqual({ error: 'missing registration_access_token' });
    expect(
      parseAdoptionSecret({ data: encodeData({ 'client.json': '{"client_secret":"hush"}' }) }, 'client.json'),
    ).toEqual({ error: 'missing client_id' });
    expect(parseAdoptionSecret({ data: encodeData({ 'client.json': '{nope' }) }, 'client.json')).toEqual({
      error: 'key client.json is not valid JSON',
    });
  });
});
