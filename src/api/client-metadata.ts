// How OidcClient spec fields map to RFC 7591 client metadata, and which metadata only the provider
// issues. One table, used by the validator, the registration client and the CLI importer.
import type { OidcClientSpec } from './types.generated.js';

/** Spec fields that configure the operator, not the client at the provider. */
type OperatorField =
  | 'providerRef'
  | 'secretName'
  | 'managementSecretName'
  | 'secretTemplate'
  | 'deletionPolicy'
  | 'adoptFrom'
  | 'rotation'
  | 'extraMetadata'
  // client-control: how often and how far the operator acts on this client
  | 'refreshInterval'
  | 'managementPolicy';
export type StandardField = Exclude<keyof OidcClientSpec, OperatorField>;

/** Spec field → RFC 7591 metadata name, in the order they are sent. Every standard field is listed. */
export const STANDARD_CLIENT_METADATA = {
  clientName: 'client_name',
  redirectUris: 'redirect_uris',
  postLogoutRedirectUris: 'post_logout_redirect_uris',
  grantTypes: 'grant_types',
  responseTypes: 'response_types',
  scopes: 'scope',
  tokenEndpointAuthMethod: 'token_endpoint_auth_method',
  contacts: 'contacts',
  clientUri: 'client_uri',
  logoUri: 'logo_uri',
  policyUri: 'policy_uri',
  tosUri: 'tos_uri',
  jwksUri: 'jwks_uri',
  applicationType: 'application_type',
} as const satisfies Record<StandardField, string>;

/** Metadata the provider issues (RFC 7591 §3.2.1, RFC 7592 §3): a client may never send it as its own. */
export const SERVER_MANAGED_CLIENT_METADATA: readonly string[] = [
  'client_id',
  'client_secret',
  'registration_access_token',
  'registration_client_uri',
  'client_id_issued_at',
  'client_secret_expires_at',
];
