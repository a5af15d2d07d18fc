// The single source of truth for the operator's API. `npm run generate` turns this file into
// crds/*.yaml, the Helm chart's crds/ copy and src/api/types.generated.ts; the ajv validator compiles
// these same objects at run time. Edit here, then regenerate; `npm run generate:check` fails on drift.
import { int, list, obj, oneOf, type Schema, str, stringMap } from './schema-builder.js';

export const API_GROUP = 'oidc.dcr-operator.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

const secretKeyRef = (what: string, defaultKey: string): Schema =>
  obj(
    'SecretKeySelector',
    `Reference to the key of a Secret in the same namespace that holds ${what}.`,
    {
      name: str('Name of the Secret.', { minLength: 1, maxLength: 253 }),
      key: str(`Key inside the Secret. Defaults to "${defaultKey}".`, { minLength: 1 }),
    },
    ['name'],
  );

const namespacedSecretKeyRef = (what: string, defaultKey: string): Schema =>
  obj(
    'NamespacedSecretKeySelector',
    `Reference to the key of a Secret that holds ${what}. For a ClusterOidcProvider the namespace is required; for an OidcProvider it must be empty or the provider's own namespace.`,
    {
      name: str('Name of the Secret.', { minLength: 1, maxLength: 253 }),
      namespace: str('Namespace of the Secret.', { maxLength: 63 }),
      key: str(`Key inside the Secret. Defaults to "${defaultKey}".`, { minLength: 1 }),
    },
    ['name'],
  );

const providerSpec: Schema = obj(
  'OidcProviderSpec',
  'Where and how to reach an OpenID Connect provider that supports Dynamic Client Registration (RFC 7591) and management (RFC 7592).',
  {
    issuerUrl: str(
      'Issuer URL of the provider, e.g. https://iam.example.org/. Discovery is read from <issuerUrl>/.well-known/openid-configuration.',
      { pattern: '^https?://', minLength: 8 },
    ),
    registrationEndpoint: str(
      "Explicit RFC 7591 registration endpoint. When empty, the operator uses the registration_endpoint advertised by discovery, and falls back to INDIGO IAM's <issuerUrl>/iam/api/client-registration.",
      { pattern: '^https?://' },
    ),
    initialAccessTokenSecretRef: namespacedSecretKeyRef(
      'an initial access token, sent as a Bearer token when registering (POST)',
      'token',
    ),
    caSecretRef: namespacedSecretKeyRef(
      'PEM CA certificates to trust for this provider (in addition to none: only these are trusted when set)',
      'ca.crt',
    ),
    managementOrigins: list(
      str('An origin: scheme://host[:port], no path.', {
        pattern: '^https?://[^/?#@\\s]+/?$',
        maxLength: 263,
      }),
      "Origins besides the registration endpoint's own that may receive RFC 7592 management calls (GET/PUT/DELETE with the registration access token), e.g. https://iam-admin.example.org:8443. A registration_client_uri on any other origin is never called. http origins are refused when the registration endpoint uses https.",
      { maxItems: 16, 'x-kubernetes-list-type': 'set' },
    ),
    maxConcurrentRequests: int('Maximum number of requests the operator sends to this provider at once.', {
      minimum: 1,
      maximum: 64,
      default: 4,
    }),
  },
  ['issuerUrl'],
);

const providerStatus: Schema = obj('OidcProviderStatus', 'Observed state of the provider.', {
  observedGeneration: int('The generation of the spec this status describes.'),
  registrationEndpoint: str('The registration endpoint in use.'),
  tokenEndpoint: str('The token endpoint from discovery.'),
  conditions: conditions(),
});

function conditions(): Schema {
  return list(
    obj(
      'Condition',
      'A Kubernetes-style condition.',
      {
        type: str('Type of condition: Ready, Reconciling, Stalled, Synced.'),
        status: oneOf(['True', 'False', 'Unknown'], 'Status of the condition.'),
        reason: str('One-word CamelCase reason for the last transition; stable, meant for tooling.'),
        message: str('Human readable details.'),
        lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
        observedGeneration: int('The generation the condition was computed for.'),
      },
      ['type', 'status'],
    ),
    'Current conditions (kstatus conventions: Ready, Reconciling, Stalled; plus Synced for drift).',
    { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  );
}

const clientSpec: Schema = obj(
  'OidcClientSpec',
  'Desired OpenID Connect client, registered with the provider through RFC 7591 and kept in sync through RFC 7592.',
  {
    providerRef: obj(
      'ProviderRef',
      'The OidcProvider (same namespace) or ClusterOidcProvider that registers this client.',
      {
        name: str('Name of the provider resource.', { minLength: 1 }),
        kind: oneOf(['OidcProvider', 'ClusterOidcProvider'], 'Kind of the provider resource.', {
          default: 'OidcProvider',
        }),
      },
      ['name'],
      {
        'x-kubernetes-validations': [
          {
            rule: 'self == oldSelf',
            message: 'providerRef is immutable: create a new OidcClient to move to another provider',
          },
        ],
      },
    ),
    clientName: str('Human-readable client name (client_name).'),
    redirectUris: list(str('A redirect URI.'), 'Redirection URIs (redirect_uris).', {
      'x-kubernetes-list-type': 'set',
    }),
    postLogoutRedirectUris: list(str('A URI.'), 'Post-logout redirect URIs (post_logout_redirect_uris).', {
      'x-kubernetes-list-type': 'set',
    }),
    grantTypes: list(
      str('An OAuth 2.0 grant type.'),
      'Grant types (grant_types), e.g. authorization_code, refresh_token, client_credentials.',
      {
        'x-kubernetes-list-type': 'set',
      },
    ),
    responseTypes: list(str('A response type.'), 'Response types (response_types), e.g. code.', {
      'x-kubernetes-list-type': 'set',
    }),
    scopes: list(
      str('A scope value.', { pattern: '^[^\\s]+$' }),
      'Scopes the client may request; sent as the space-separated scope parameter.',
      {
        'x-kubernetes-list-type': 'set',
      },
    ),
    tokenEndpointAuthMethod: oneOf(
      ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
      'Token endpoint authentication method (token_endpoint_auth_method).',
    ),
    contacts: list(str('An e-mail address.'), 'Contacts for the client (contacts).', {
      'x-kubernetes-list-type': 'set',
    }),
    clientUri: str('Home page of the client (client_uri).'),
    logoUri: str('Logo URL (logo_uri).'),
    policyUri: str('Privacy policy URL (policy_uri).'),
    tosUri: str('Terms of service URL (tos_uri).'),
    jwksUri: str("URL of the client's JSON Web Key Set (jwks_uri)."),
    applicationType: oneOf(['web', 'native'], 'Application type (application_type).'),
    extraMetadata: {
      type: 'object',
      description:
        "Server-specific client metadata sent as-is with the standard fields (for example IAM's reuse_refresh_token). Keys must not repeat a field above.",
      'x-kubernetes-preserve-unknown-fields': true,
    },
    secretName: str(
      'Name of the application Secret that receives client_id, client_secret, issuer and endpoint URLs. Defaults to <metadata.name>-oidc-client.',
      { maxLength: 253 },
    ),
    managementSecretName: str(
      'Name of the management Secret that holds the registration access token and registration_client_uri. Defaults to <metadata.name>-oidc-registration. Grant access to it sparingly: it can change or delete the client.',
      { maxLength: 253 },
    ),
    secretTemplate: obj('SecretTemplate', 'Labels and annotations copied onto the application Secret.', {
      labels: stringMap('Labels to set.'),
      annotations: stringMap('Annotations to set.'),
    }),
    deletionPolicy: oneOf(
      ['Delete', 'Orphan'],
      'What happens at the provider when this resource is deleted: Delete removes the client (RFC 7592 DELETE), Orphan leaves it registered.',
      { default: 'Delete' },
    ),
    adoptFrom: obj(
      'AdoptFrom',
      'Take over an existing registration instead of registering a new client. The referenced Secret holds the client JSON saved from the IAM dashboard (key client.json) or the keys client_id, client_secret, registration_access_token and registration_client_uri. The operator verifies it with RFC 7592 GET before managing it.',
      {
        secretRef: secretKeyRef('the registration to adopt', 'client.json'),
      },
      ['secretRef'],
    ),
  },
  ['providerRef'],
);

const clientStatus: Schema = obj('OidcClientStatus', 'Observed state of the client.', {
  observedGeneration: int('The generation of the spec this status describes.'),
  clientId: str('client_id issued by the provider.'),
  registrationClientUri: str('registration_client_uri of the client (RFC 7592 management URL).'),
  secretName: str('Name of the application Secret in use.'),
  managementSecretName: str('Name of the management Secret in use.'),
  clientSecretExpiresAt: int('client_secret_expires_at reported by the provider (0 = never).'),
  lastSyncTime: str('When the client was last confirmed in sync with the provider.', { format: 'date-time' }),
  ignoredFields: list(
    str('A client metadata field name.'),
    'Fields whose desired value the provider does not keep (it normalises or rejects them); the operator stops re-sending them until the spec changes.',
  ),
  conditions: conditions(),
});

export interface ResourceDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: Schema;
  status: Schema;
  printerColumns: { name: string; type: string; jsonPath: string; description: string; priority?: number }[];
}

const readyColumns = [
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'Whether the resource is ready.',
  },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    description: 'Reason of the Ready condition.',
    priority: 1,
  },
];
const ageColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Age.' };

export const resources: ResourceDefinition[] = [
  {
    kind: 'OidcClient',
    plural: 'oidcclients',
    singular: 'oidcclient',
    shortNames: ['oidcc'],
    scope: 'Namespaced',
    description:
      'OidcClient is an OpenID Connect client registered and managed through Dynamic Client Registration (RFC 7591/7592). Its credentials land in a Secret.',
    spec: clientSpec,
    status: clientStatus,
    printerColumns: [
      ...readyColumns,
      {
        name: 'Client ID',
        type: 'string',
        jsonPath: '.status.clientId',
        description: 'client_id at the provider.',
      },
      {
        name: 'Provider',
        type: 'string',
        jsonPath: '.spec.providerRef.name',
        description: 'Provider resource.',
      },
      {
        name: 'Secret',
        type: 'string',
        jsonPath: '.status.secretName',
        description: 'Application Secret.',
        priority: 1,
      },
      ageColumn,
    ],
  },
  {
    kind: 'OidcProvider',
    plural: 'oidcproviders',
    singular: 'oidcprovider',
    shortNames: ['oidcp'],
    scope: 'Namespaced',
    description:
      'OidcProvider describes an OpenID Connect provider that OidcClients in the same namespace register with.',
    spec: providerSpec,
    status: providerStatus,
    printerColumns: [
      { name: 'Issuer', type: 'string', jsonPath: '.spec.issuerUrl', description: 'Issuer URL.' },
      ageColumn,
    ],
  },
  {
    kind: 'ClusterOidcProvider',
    plural: 'clusteroidcproviders',
    singular: 'clusteroidcprovider',
    shortNames: ['coidcp'],
    scope: 'Cluster',
    description:
      'ClusterOidcProvider describes an OpenID Connect provider that OidcClients in any namespace register with.',
    spec: providerSpec,
    status: providerStatus,
    printerColumns: [
      { name: 'Issuer', type: 'string', jsonPath: '.spec.issuerUrl', description: 'Issuer URL.' },
      ageColumn,
    ],
  },
];

/** The full object schema (apiVersion/kind/metadata/spec/status) of one resource. */
export function objectSchema(def: ResourceDefinition): Schema {
  return {
    type: 'object',
    description: def.description,
    properties: {
      apiVersion: str('APIVersion defines the versioned schema of this representation of an object.'),
      kind: str('Kind is a string value representing the REST resource this object represents.'),
      metadata: { type: 'object' },
      spec: def.spec,
      status: def.status,
    },
    required: ['spec'],
  };
}
