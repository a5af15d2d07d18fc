// The single source of truth for the operator's API. `npm run generate` turns this file into
// crds/*.yaml, the Helm chart's crds/ copy and src/api/types.generated.ts; the ajv validator compiles
// these same objects at run time. Edit here, then regenerate; `npm run generate:check` fails on drift.
import { SERVER_MANAGED_CLIENT_METADATA, STANDARD_CLIENT_METADATA } from './client-metadata.js';
import { controlProperties, controlStatusProperties } from './control-schema.js';
import { DURATION_PATTERN } from './duration.js';
import {
  ABSOLUTE_URI,
  type CelValidation,
  CLUSTER_REF_NAMESPACE,
  CONDITION_NOT_EMPTY,
  cel,
  DISTINCT_SECRETS_DEFAULT,
  DISTINCT_SECRETS_EXPLICIT,
  DNS1123_SUBDOMAIN,
  forbiddenKey,
  HTTP_URL,
  HTTPS_ORIGINS,
  LABEL_REQUIREMENT,
  MANAGEMENT_SECRET_NAME_FITS,
  NAMESPACE_OR_EMPTY,
  NO_FRAGMENT,
  ORIGIN,
  PROVIDER_REF_IMMUTABLE,
  ROTATION_LONGER_THAN_OVERLAP,
  SECRET_NAME_FITS,
} from './rules.js';
import { int, list, obj, oneOf, type Schema, str, stringMap } from './schema-builder.js';
import { TEMPLATE_HELP, TEMPLATE_VALUE_PATTERN } from './secret-template.js';

export const API_GROUP = 'oidc.dcr-operator.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

// Sizes. Every list and string that a CEL rule reads is bounded: the apiserver estimates each rule's
// worst-case cost from maxItems/maxLength and refuses a CRD whose rules could cost too much.
const MAX_URI = 2048;
const MAX_URIS = 64;
const MAX_VALUES = 64;
const MAX_TOKEN = 256;

/** A Kubernetes object name that must be a DNS-1123 subdomain (Secrets, providers). */
const objectName = (description: string): Schema =>
  str(description, { minLength: 1, maxLength: 253, 'x-kubernetes-validations': [DNS1123_SUBDOMAIN] });
const uri = (description: string, extra: Schema['x-kubernetes-validations'] = []): Schema =>
  str(description, { maxLength: MAX_URI, 'x-kubernetes-validations': [ABSOLUTE_URI, ...extra] });
const httpUrl = (description: string): Schema =>
  str(description, { minLength: 8, maxLength: MAX_URI, 'x-kubernetes-validations': [HTTP_URL] });

export { DURATION_PATTERN } from './duration.js';

/** spec.secretTemplate rules; validate.ts prints the same messages (with the detail CEL cannot give). */
export const TEMPLATE_KEYS_RULE = "self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))";
export const TEMPLATE_KEYS_MESSAGE =
  'Secret keys must be at most 253 characters of letters, digits, "-", "_" and "."';
export const TEMPLATE_VALUES_RULE = `self.all(k, self[k].matches('${TEMPLATE_VALUE_PATTERN.replaceAll('\\', '\\\\')}'))`;
export const TEMPLATE_VALUES_MESSAGE = `invalid template: ${TEMPLATE_HELP}`;
export const TEMPLATE_TYPE_RULE =
  "!has(self.type) || self.type in ['Opaque', 'kubernetes.io/basic-auth'] || !self.type.contains('kubernetes.io/')";
export const TEMPLATE_TYPE_MESSAGE =
  'type must be Opaque, kubernetes.io/basic-auth or a type outside kubernetes.io (the operator cannot fill the keys other built-in types need)';
export const TEMPLATE_BASIC_AUTH_RULE =
  "!has(self.type) || self.type != 'kubernetes.io/basic-auth' || (has(self.data) && ('username' in self.data || 'password' in self.data))";
export const TEMPLATE_BASIC_AUTH_MESSAGE =
  'type kubernetes.io/basic-auth needs a username or password key in data';
export const TEMPLATE_REPLACE_RULE =
  "!has(self.mergePolicy) || self.mergePolicy != 'Replace' || (has(self.data) && size(self.data) > 0)";
export const TEMPLATE_REPLACE_MESSAGE = 'mergePolicy Replace needs at least one key in data';

const secretKeyRef = (what: string, defaultKey: string): Schema =>
  obj(
    'SecretKeySelector',
    `Reference to the key of a Secret in the same namespace that holds ${what}.`,
    {
      name: objectName('Name of the Secret.'),
      key: str(`Key inside the Secret. Defaults to "${defaultKey}".`, { minLength: 1, maxLength: 253 }),
    },
    ['name'],
  );

const namespacedSecretKeyRef = (what: string, defaultKey: string, clusterScoped: boolean): Schema =>
  obj(
    'NamespacedSecretKeySelector',
    `Reference to the key of a Secret that holds ${what}. For a ClusterOidcProvider the namespace is required; for an OidcProvider it must be empty or the provider's own namespace.`,
    {
      name: objectName('Name of the Secret.'),
      namespace: str('Namespace of the Secret.', {
        maxLength: 63,
        'x-kubernetes-validations': [NAMESPACE_OR_EMPTY],
      }),
      key: str(`Key inside the Secret. Defaults to "${defaultKey}".`, { minLength: 1, maxLength: 253 }),
    },
    ['name'],
    clusterScoped ? { 'x-kubernetes-validations': [CLUSTER_REF_NAMESPACE] } : {},
  );

const labelSelector: Schema = obj(
  'LabelSelector',
  'A Kubernetes label selector: every matchLabels pair and every matchExpressions requirement must hold. An empty selector ({}) matches every namespace.',
  {
    matchLabels: {
      ...stringMap('Labels the namespace must carry with exactly these values.'),
      maxProperties: MAX_VALUES,
    },
    matchExpressions: list(
      obj(
        'LabelSelectorRequirement',
        'A requirement on one label key.',
        {
          key: str('The label key.', { minLength: 1, maxLength: 317 }),
          operator: oneOf(['In', 'NotIn', 'Exists', 'DoesNotExist'], 'How the key relates to the values.'),
          values: list(
            str('A label value.', { maxLength: 63 }),
            'Values for In and NotIn (at least one); must be empty for Exists and DoesNotExist.',
            { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'atomic' },
          ),
        },
        ['key', 'operator'],
        { 'x-kubernetes-validations': [LABEL_REQUIREMENT] },
      ),
      'Set-based requirements on the namespace labels.',
      { maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
    ),
  },
  [],
  { 'x-kubernetes-map-type': 'atomic' },
);

const namespaceConditions: Schema = list(
  obj(
    'ClusterProviderCondition',
    'Namespaces whose OidcClients may use this provider: those named in namespaces, and those whose labels match namespaceSelector.',
    {
      namespaces: list(
        str('A namespace name.', { minLength: 1, maxLength: 63 }),
        'Namespaces allowed by name.',
        { maxItems: 256, 'x-kubernetes-list-type': 'set' },
      ),
      namespaceSelector: labelSelector,
    },
    [],
    { 'x-kubernetes-validations': [CONDITION_NOT_EMPTY] },
  ),
  "Which namespaces may use this ClusterOidcProvider (as in External Secrets' ClusterSecretStore): a namespace is allowed when ANY condition allows it. Without conditions EVERY namespace may use it, with its initial access token; on a cluster shared by tenants, set conditions (or use namespaced OidcProviders). OidcClients elsewhere get Ready=False with reason NotAllowed, and nothing is sent to the provider for them.",
  { minItems: 1, maxItems: 32, 'x-kubernetes-list-type': 'atomic' },
);

const clientPolicy: Schema = obj(
  'ClientPolicy',
  'Limits on what OidcClients may ask this provider for, checked before anything is sent. A client asking for more gets Ready=False with reason PolicyViolation. A list left out does not limit; an empty list allows nothing.',
  {
    allowedGrantTypes: list(
      str('A grant type.', { minLength: 1, maxLength: MAX_TOKEN }),
      'Grant types clients may request. A client without spec.grantTypes asks for authorization_code (the RFC 7591 default).',
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    allowedResponseTypes: list(
      str('A response type.', { minLength: 1, maxLength: MAX_TOKEN }),
      'Response types clients may request. A client without spec.responseTypes asks for code (the RFC 7591 default).',
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    allowedScopes: list(
      str('A scope value.', { pattern: '^[^\\s]+$', maxLength: MAX_TOKEN }),
      "Scopes clients may request. A client without spec.scopes gets the provider's own default scopes.",
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    allowedTokenEndpointAuthMethods: list(
      oneOf(
        ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
        'A token endpoint authentication method.',
      ),
      'Token endpoint authentication methods clients may use. A client without spec.tokenEndpointAuthMethod uses client_secret_basic (the RFC 7591 default).',
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    allowedExtraMetadataKeys: list(
      str('A client metadata field name.', { minLength: 1, maxLength: MAX_TOKEN }),
      'Keys clients may send in spec.extraMetadata (server-specific fields such as token lifetimes). Set [] to allow none.',
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    redirectUris: obj(
      'RedirectUriPolicy',
      'Rules for spec.redirectUris and spec.postLogoutRedirectUris. When this is set, every such URI must use an allowed scheme (https unless allowedSchemes says otherwise), must not carry user information or characters outside RFC 3986, and, when allowedHosts or allowedPatterns is set, must have an allowed host or match an allowed pattern.',
      {
        allowedSchemes: list(
          str('A URI scheme, lowercase.', { pattern: '^[a-z][a-z0-9+.-]*$', maxLength: 64 }),
          'URI schemes allowed. Default: [https]. Add http (with allowedHosts such as localhost) or a private-use scheme for native apps (RFC 8252).',
          { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
        ),
        allowedHosts: list(
          str('A host name, or *.suffix for any name below suffix (not suffix itself).', {
            pattern: '^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
            maxLength: 253,
          }),
          'Hosts the URIs may point to: exact names (app.example.org, 127.0.0.1) or wildcards (*.apps.example.org). The port is not compared.',
          { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
        ),
        allowedPatterns: list(
          str('An ECMAScript regular expression, matched against the whole URI.', {
            minLength: 1,
            maxLength: 1024,
          }),
          'Regular expressions for whole URIs (anchored at both ends): a URI matching one is allowed even when its host is not in allowedHosts (useful for private-use schemes of native apps).',
          { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
        ),
      },
    ),
  },
);

const providerProperties = (clusterScoped: boolean): Record<string, Schema> => ({
  issuerUrl: httpUrl(
    'Issuer URL of the provider, e.g. https://iam.example.org/. Discovery is read from <issuerUrl>/.well-known/openid-configuration.',
  ),
  registrationEndpoint: httpUrl(
    "Explicit RFC 7591 registration endpoint. When empty, the operator uses the registration_endpoint advertised by discovery, and falls back to INDIGO IAM's <issuerUrl>/iam/api/client-registration.",
  ),
  initialAccessTokenSecretRef: namespacedSecretKeyRef(
    'an initial access token, sent as a Bearer token when registering (POST). A changed token is picked up within 30 s, or at once after the provider refuses the old one',
    'token',
    clusterScoped,
  ),
  caSecretRef: namespacedSecretKeyRef(
    'PEM CA certificates to trust for this provider (only these are trusted when set). A changed bundle is picked up within 30 s, or at once after a certificate check fails',
    'ca.crt',
    clusterScoped,
  ),
  managementOrigins: list(
    str('An origin: scheme://host[:port], no path.', {
      maxLength: 263,
      'x-kubernetes-validations': [ORIGIN],
    }),
    "Origins besides the registration endpoint's own that may receive RFC 7592 management calls (GET/PUT/DELETE with the registration access token), e.g. https://iam-admin.example.org:8443. A registration_client_uri on any other origin is never called. http origins are refused when the registration endpoint uses https.",
    { maxItems: 16, 'x-kubernetes-list-type': 'set' },
  ),
  maxConcurrentRequests: int(
    'Maximum number of requests the operator sends to this provider at once; also the most of its OidcClients reconciled at once, so a slow provider cannot hold every worker.',
    {
      minimum: 1,
      maximum: 64,
      default: 4,
    },
  ),
  clientPolicy,
});

const providerDescription =
  'Where and how to reach an OpenID Connect provider that supports Dynamic Client Registration (RFC 7591) and management (RFC 7592).';

const providerSpec: Schema = obj(
  'OidcProviderSpec',
  providerDescription,
  providerProperties(false),
  ['issuerUrl'],
  {
    'x-kubernetes-validations': [HTTPS_ORIGINS],
  },
);

const clusterProviderSpec: Schema = obj(
  'ClusterOidcProviderSpec',
  `${providerDescription} Usable from the namespaces that spec.conditions allows.`,
  { ...providerProperties(true), conditions: namespaceConditions },
  ['issuerUrl'],
  { 'x-kubernetes-validations': [HTTPS_ORIGINS] },
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

/**
 * extraMetadata keys that name a standard field (set it in the spec instead) or one the provider
 * issues: declared with their wire types because CEL reads only declared fields of a schemaless
 * object, and refused by one rule each on extraMetadata.
 */
function forbiddenExtraMetadata(): Pick<Schema, 'properties' | 'x-kubernetes-validations'> {
  const lists = new Set([
    'redirect_uris',
    'post_logout_redirect_uris',
    'grant_types',
    'response_types',
    'contacts',
  ]);
  const integers = new Set(['client_id_issued_at', 'client_secret_expires_at']);
  const properties: Record<string, Schema> = {};
  const rules: CelValidation[] = [];
  const forbid = (wire: string, description: string, message: string): void => {
    properties[wire] = lists.has(wire)
      ? list(str('A value.'), description)
      : integers.has(wire)
        ? int(description)
        : str(description);
    rules.push(forbiddenKey(wire, message));
  };
  for (const [field, wire] of Object.entries(STANDARD_CLIENT_METADATA)) {
    forbid(wire, `Not allowed: set spec.${field}.`, `repeats a standard field: set spec.${field} instead`);
  }
  for (const wire of SERVER_MANAGED_CLIENT_METADATA) {
    forbid(
      wire,
      'Not allowed: issued by the provider.',
      'is issued by the provider and cannot be set by the client',
    );
  }
  return { properties, 'x-kubernetes-validations': rules };
}

const clientSpec: Schema = obj(
  'OidcClientSpec',
  'Desired OpenID Connect client, registered with the provider through RFC 7591 and kept in sync through RFC 7592.',
  {
    providerRef: obj(
      'ProviderRef',
      'The OidcProvider (same namespace) or ClusterOidcProvider that registers this client.',
      {
        name: objectName('Name of the provider resource.'),
        kind: oneOf(['OidcProvider', 'ClusterOidcProvider'], 'Kind of the provider resource.', {
          default: 'OidcProvider',
        }),
      },
      ['name'],
      { 'x-kubernetes-validations': [PROVIDER_REF_IMMUTABLE] },
    ),
    clientName: str('Human-readable client name (client_name).', { minLength: 1, maxLength: 1024 }),
    redirectUris: list(uri('A redirect URI.', [NO_FRAGMENT]), 'Redirection URIs (redirect_uris).', {
      maxItems: MAX_URIS,
      'x-kubernetes-list-type': 'set',
    }),
    postLogoutRedirectUris: list(uri('A URI.'), 'Post-logout redirect URIs (post_logout_redirect_uris).', {
      maxItems: MAX_URIS,
      'x-kubernetes-list-type': 'set',
    }),
    grantTypes: list(
      str('An OAuth 2.0 grant type.', { maxLength: MAX_TOKEN }),
      'Grant types (grant_types), e.g. authorization_code, refresh_token, client_credentials.',
      { maxItems: 16, 'x-kubernetes-list-type': 'set' },
    ),
    responseTypes: list(
      str('A response type.', { maxLength: MAX_TOKEN }),
      'Response types (response_types), e.g. code.',
      { maxItems: 16, 'x-kubernetes-list-type': 'set' },
    ),
    scopes: list(
      str('A scope value.', { pattern: '^[^\\s]+$', maxLength: MAX_TOKEN }),
      'Scopes the client may request; sent as the space-separated scope parameter.',
      { maxItems: MAX_VALUES, 'x-kubernetes-list-type': 'set' },
    ),
    tokenEndpointAuthMethod: oneOf(
      ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
      'Token endpoint authentication method (token_endpoint_auth_method).',
    ),
    contacts: list(str('An e-mail address.', { maxLength: 320 }), 'Contacts for the client (contacts).', {
      maxItems: 16,
      'x-kubernetes-list-type': 'set',
    }),
    clientUri: uri('Home page of the client (client_uri).'),
    logoUri: uri('Logo URL (logo_uri).'),
    policyUri: uri('Privacy policy URL (policy_uri).'),
    tosUri: uri('Terms of service URL (tos_uri).'),
    jwksUri: uri("URL of the client's JSON Web Key Set (jwks_uri)."),
    applicationType: oneOf(['web', 'native'], 'Application type (application_type).'),
    extraMetadata: {
      type: 'object',
      description:
        "Server-specific client metadata sent as-is with the standard fields (for example IAM's reuse_refresh_token). Keys must not repeat a field above, nor name one the provider issues (client_id, client_secret, registration_access_token...).",
      'x-kubernetes-preserve-unknown-fields': true,
      ...forbiddenExtraMetadata(),
    },
    secretName: objectName(
      'Name of the application Secret that receives client_id, client_secret, issuer and endpoint URLs. Defaults to <metadata.name>-oidc-client.',
    ),
    managementSecretName: objectName(
      'Name of the management Secret that holds the registration access token and registration_client_uri. Defaults to <metadata.name>-oidc-registration. Grant access to it sparingly: it can change or delete the client.',
    ),
    secretTemplate: obj(
      'SecretTemplate',
      'Shapes the application Secret: its type, labels, annotations and extra keys rendered from what the operator knows (client credentials, issuer, endpoints from discovery). Labels, annotations and keys removed from the template are removed from the Secret; labels and annotations others add stay.',
      {
        type: str(
          'Secret type. Defaults to Opaque. kubernetes.io/basic-auth needs a username or password key in data; other kubernetes.io types are refused. Changing it replaces the Secret (the type of a Secret cannot change).',
          { maxLength: 253, pattern: '^[A-Za-z0-9][-A-Za-z0-9_./]*$' },
        ),
        labels: stringMap('Labels to set.'),
        annotations: stringMap('Annotations to set.'),
        mergePolicy: oneOf(
          ['Merge', 'Replace'],
          'Merge (default): the keys in data are added to client_id, client_secret, issuer and token_endpoint (a key in data wins). Replace: the Secret holds the keys in data only.',
        ),
        data: {
          type: 'object',
          description: `Secret keys and their values: literal text with placeholders, e.g. "{{ .clientId }}". ${TEMPLATE_HELP}. A placeholder without a value (e.g. an endpoint the discovery document does not name) is an error unless it has | default.`,
          maxProperties: 64,
          additionalProperties: { type: 'string', maxLength: 4096 },
          'x-kubernetes-validations': [
            cel(TEMPLATE_KEYS_RULE, TEMPLATE_KEYS_MESSAGE, 'semantic'),
            cel(TEMPLATE_VALUES_RULE, TEMPLATE_VALUES_MESSAGE, 'semantic'),
          ],
        },
      },
      [],
      {
        'x-kubernetes-validations': [
          cel(TEMPLATE_TYPE_RULE, TEMPLATE_TYPE_MESSAGE, 'semantic'),
          cel(TEMPLATE_BASIC_AUTH_RULE, TEMPLATE_BASIC_AUTH_MESSAGE, 'semantic'),
          cel(TEMPLATE_REPLACE_RULE, TEMPLATE_REPLACE_MESSAGE, 'semantic'),
        ],
      },
    ),
    deletionPolicy: oneOf(
      ['Delete', 'Orphan'],
      'What happens at the provider when this resource is deleted: Delete removes the client (RFC 7592 DELETE), Orphan leaves it registered.',
      { default: 'Delete' },
    ),
    rotation: obj(
      'RotationSpec',
      'Credential rotation: a new client replaces the current one (register, switch the application Secret, keep the previous client for the overlap, then delete it at the provider). Also on request (annotation oidc.dcr-operator.dev/rotate with a new value) and before client_secret_expires_at.',
      {
        every: str(
          'Rotate on a schedule: how long a client is used before a new one replaces it, as a duration (2160h, 90d, 1h30m). Unset: no scheduled rotation. Must be longer than the overlap.',
          { pattern: DURATION_PATTERN, maxLength: 32 },
        ),
        overlap: str(
          'How long the previous client stays registered after the application Secret switched to the new one, so running pods can pick up the new Secret (10m by default; 0s deletes it at once).',
          { pattern: DURATION_PATTERN, maxLength: 32 },
        ),
      },
      [],
      { 'x-kubernetes-validations': [ROTATION_LONGER_THAN_OVERLAP] },
    ),
    adoptFrom: obj(
      'AdoptFrom',
      'Take over an existing registration instead of registering a new client. The referenced Secret holds the client JSON saved from the IAM dashboard (key client.json) or the keys client_id, client_secret, registration_access_token and registration_client_uri. The operator verifies it with RFC 7592 GET before managing it.',
      {
        secretRef: secretKeyRef('the registration to adopt', 'client.json'),
      },
      ['secretRef'],
    ),
    ...controlProperties,
  },
  ['providerRef'],
);

const clientStatus: Schema = obj(
  'OidcClientStatus',
  'Observed state of the client.',
  {
    observedGeneration: int('The generation of the spec this status describes.'),
    clientId: str('client_id issued by the provider.'),
    registrationClientUri: str('registration_client_uri of the client (RFC 7592 management URL).'),
    secretName: str('Name of the application Secret in use.'),
    managementSecretName: str('Name of the management Secret in use.'),
    clientSecretExpiresAt: int('client_secret_expires_at reported by the provider (0 = never).'),
    lastSyncTime: str('When the client was last confirmed in sync with the provider.', {
      format: 'date-time',
    }),
    rotation: obj(
      'RotationStatus',
      'Credential rotation: the previous client while it is kept, and the schedule.',
      {
        previousClientId: str(
          'client_id of the previous client, kept registered until previousDeletionTime.',
        ),
        previousDeletionTime: str('When the previous client is deleted at the provider.', {
          format: 'date-time',
        }),
        lastRotationTime: str('When the current client replaced the previous one.', { format: 'date-time' }),
        nextRotationTime: str(
          'When the next rotation is due (spec.rotation.every, or before client_secret_expires_at).',
          {
            format: 'date-time',
          },
        ),
        lastRequest: str(
          'The last value of the oidc.dcr-operator.dev/rotate annotation that was carried out.',
        ),
      },
    ),
    ignoredFields: list(
      str('A client metadata field name.'),
      'Fields whose desired value the provider does not keep (it normalises or rejects them); the operator stops re-sending them until the spec changes.',
    ),
    ...controlStatusProperties,
    conditions: conditions(),
  },
  [],
  {
    // Applied by the apiserver to every object read without a status, i.e. from the first read after
    // `kubectl apply` until the operator's first status write: kstatus (Flux `wait`) sees
    // observedGeneration 0 != generation and Reconciling=True, Argo CD's health check sees the same,
    // so a brand-new client is never taken for healthy. It costs no write.
    default: {
      observedGeneration: 0,
      conditions: [
        {
          type: 'Ready',
          status: 'Unknown',
          reason: 'Pending',
          message: 'not reconciled by the operator yet',
        },
        {
          type: 'Reconciling',
          status: 'True',
          reason: 'Pending',
          message: 'not reconciled by the operator yet',
        },
      ],
    },
  },
);

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
  /** CEL rules on the whole object (they may read metadata.name). */
  validations?: { rule: string; message: string }[];
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

// A provider's reason is what a reader needs first (TLSError, DiscoveryFailed...): shown by default.
const providerColumns = [
  ...readyColumns.map(({ priority: _, ...column }) => column),
  { name: 'Issuer', type: 'string', jsonPath: '.spec.issuerUrl', description: 'Issuer URL.' },
  ageColumn,
];

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
    validations: [
      SECRET_NAME_FITS,
      MANAGEMENT_SECRET_NAME_FITS,
      DISTINCT_SECRETS_EXPLICIT,
      DISTINCT_SECRETS_DEFAULT,
    ],
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
    printerColumns: providerColumns,
  },
  {
    kind: 'ClusterOidcProvider',
    plural: 'clusteroidcproviders',
    singular: 'clusteroidcprovider',
    shortNames: ['coidcp'],
    scope: 'Cluster',
    description:
      'ClusterOidcProvider describes an OpenID Connect provider that OidcClients in the namespaces allowed by spec.conditions (all when unset) register with.',
    spec: clusterProviderSpec,
    status: providerStatus,
    printerColumns: providerColumns,
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
    ...(def.validations ? { 'x-kubernetes-validations': def.validations } : {}),
  };
}
