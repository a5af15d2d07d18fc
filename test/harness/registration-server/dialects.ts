// Named dialects: the behaviours of RFC 7591/7592 servers the operator is tested against, one row
// each (the conformance suite runs the whole lifecycle against every row; `npm run provider --
// --dialect ID` serves one). The README's Compatibility table names servers known to behave so.
import type { RegistrationServerOptions } from './types.js';

export interface DialectPreset {
  /** Short name for the command line. */
  id: string;
  /** What the server does differently, in words. */
  name: string;
  options: RegistrationServerOptions;
  /** Discovery does not name the registration endpoint: the provider resource must. */
  explicitEndpoint?: boolean;
}

/** The initial access token the keycloak preset requires (tests and the local provider only). */
export const PRESET_INITIAL_ACCESS_TOKEN = 'dialect-initial-access-token';

export const DIALECT_PRESETS: readonly DialectPreset[] = [
  { id: 'iam', name: 'baseline: node-oidc-provider as INDIGO IAM', options: {} },
  {
    id: 'empty-values',
    name: 'empty strings and null for unset metadata, vendor fields',
    options: { dialect: { emptyForUnset: true, vendorFields: true } },
  },
  {
    id: 'read-without-credentials',
    name: 'GET without client_secret and token',
    options: { dialect: { readWithoutCredentials: true } },
  },
  { id: 'rotate-on-put', name: 'token rotated on every PUT', options: { dialect: { ratRotation: 'put' } } },
  {
    id: 'no-discovery',
    name: 'no registration_endpoint in discovery',
    options: { advertiseRegistrationEndpoint: false, dialect: { registrationPath: '/connect/register' } },
    explicitEndpoint: true,
  },
  {
    id: 'status-codes',
    name: '200 on registration and delete, 404 for a gone client',
    options: { dialect: { registrationStatus: 200, deleteStatus: 200, unknownClientStatus: 404 } },
  },
  { id: 'no-management', name: 'no RFC 7592 management', options: { omitManagementCredentials: true } },
  {
    id: 'normalising',
    name: 'normalised values',
    options: {
      dialect: {
        normalise: {
          scopeDefaults: ['openid'],
          reorderScope: true,
          redirectUris: true,
          addGrantTypes: ['refresh_token'],
        },
      },
    },
  },
  {
    id: 'put-secret-required',
    name: 'PUT must carry client_secret',
    options: { dialect: { putClientSecret: 'required' } },
  },
  {
    id: 'put-secret-forbidden',
    name: 'PUT must not carry client_secret',
    options: { dialect: { putClientSecret: 'forbidden' } },
  },
  {
    id: 'expiring-secret',
    name: 'client_secret_expires_at in the future',
    options: { dialect: { clientSecretLifetimeSeconds: 30 * 86_400 } },
  },
  {
    id: 'keycloak',
    name: 'Keycloak: realm paths, initial access token, token rotated on every call',
    options: {
      initialAccessToken: PRESET_INITIAL_ACCESS_TOKEN,
      dialect: {
        basePath: '/realms/shop',
        registrationPath: '/clients-registrations/openid-connect',
        tokenPath: '/protocol/openid-connect/token',
        ratRotation: 'every-call',
      },
    },
  },
];
