// Pure part of `import`: turns the client JSON that INDIGO IAM returns on registration (and that its
// dashboard shows in the JSON tab) into an OidcClient that adopts the registration, plus the Secret
// the adoption reads. No I/O, and nothing here puts secret values anywhere but the Secret object.
import type { V1Secret } from '@kubernetes/client-node';
import { Document } from 'yaml';
import { API_GROUP_VERSION } from '../api/schema.js';
import type { OidcClient, OidcClientSpec } from '../api/types.generated.js';
import {
  isDns1123Subdomain,
  SERVER_MANAGED_CLIENT_METADATA,
  STANDARD_CLIENT_METADATA,
  type ValidationIssue,
  validateResource,
} from '../api/validate.js';
import { parseJson } from './safe-json.js';

/** Key of the adoption Secret, the default of spec.adoptFrom.secretRef.key. */
export const ADOPT_SECRET_KEY = 'client.json';

/**
 * Read-only bookkeeping IAM adds to its client JSON. It is not client metadata: sending it back on
 * RFC 7592 PUT would at best be ignored, so it stays out of extraMetadata.
 */
export const IAM_SERVER_FIELDS: readonly string[] = [
  'created_at',
  'dynamically_registered',
  'active',
  'status_changed_on',
  'status_changed_by',
];

/** What the operator needs to manage an existing registration (RFC 7592). */
const REQUIRED_FOR_ADOPTION = ['client_id', 'registration_access_token', 'registration_client_uri'];

export type ProviderKind = 'OidcProvider' | 'ClusterOidcProvider';

export interface ImportOptions {
  /** metadata.name of the OidcClient; the Secret is named `<name>-oidc-adopt`. */
  name: string;
  namespace?: string;
  provider: string;
  providerKind: ProviderKind;
}

export interface ImportResult {
  client: OidcClient;
  secret: V1Secret;
  /** Field names (never values) present in the JSON but left out of the spec: issued by the server. */
  dropped: string[];
  /** Multi-document YAML: the Secret, then the OidcClient. */
  yaml: string;
}

export class ImportError extends Error {
  override name = 'ImportError';
  constructor(
    message: string,
    readonly issues: ValidationIssue[] = [],
  ) {
    super(message);
  }
}

export const adoptSecretName = (name: string): string => `${name}-oidc-adopt`;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Spec lists are sets (the apiserver rejects repeats); IAM never repeats, but hand-edited JSON might. */
const dedupe = (v: unknown): unknown => (Array.isArray(v) ? [...new Set(v)] : v);

/** The spec fields mirroring the JSON's standard metadata; `scope` (space-separated) becomes a list. */
export function specFromMetadata(metadata: Record<string, unknown>): Partial<OidcClientSpec> {
  const spec: Record<string, unknown> = {};
  for (const [field, wire] of Object.entries(STANDARD_CLIENT_METADATA)) {
    const value = metadata[wire];
    if (value === null || value === undefined) continue;
    if (wire === 'scope' && typeof value === 'string') {
      const scopes = [...new Set(value.split(/\s+/).filter(Boolean))];
      if (scopes.length > 0) spec[field] = scopes;
      continue;
    }
    spec[field] = dedupe(value);
  }
  return spec as Partial<OidcClientSpec>;
}

/** Everything else a client chose (e.g. IAM's reuse_refresh_token), so PUT does not reset it. */
export function extraMetadataFrom(metadata: Record<string, unknown>): Record<string, unknown> {
  const standard = new Set<string>(Object.values(STANDARD_CLIENT_METADATA));
  const excluded = new Set([...SERVER_MANAGED_CLIENT_METADATA, ...IAM_SERVER_FIELDS]);
  return Object.fromEntries(
    Object.entries(metadata).filter(([k, v]) => v !== null && !standard.has(k) && !excluded.has(k)),
  );
}

function parseClientJson(text: string): Record<string, unknown> {
  const parsed = parseJson(text);
  if (!parsed.ok) throw new ImportError(parsed.error.message);
  if (!isRecord(parsed.value)) throw new ImportError('the client JSON must be an object');
  const missing = REQUIRED_FOR_ADOPTION.filter((k) => {
    const v = (parsed.value as Record<string, unknown>)[k];
    return typeof v !== 'string' || v === '';
  });
  if (missing.length > 0) {
    throw new ImportError(
      `the client JSON lacks ${missing.join(', ')}: the operator needs them to take over the registration. ` +
        "Use the JSON the registration answered with, or the IAM dashboard's JSON tab.",
    );
  }
  return parsed.value;
}

function render(obj: unknown, comment?: string): string {
  const doc = new Document(obj);
  if (comment) doc.commentBefore = comment;
  return doc.toString({ lineWidth: 0 });
}

export function importIamClient(jsonText: string, opts: ImportOptions): ImportResult {
  if (!isDns1123Subdomain(adoptSecretName(opts.name))) {
    throw new ImportError(
      `name ${JSON.stringify(opts.name)} must be a DNS-1123 subdomain (at most 241 characters)`,
    );
  }
  const metadata = parseClientJson(jsonText);
  const extraMetadata = extraMetadataFrom(metadata);
  const objectMeta = { name: opts.name, ...(opts.namespace ? { namespace: opts.namespace } : {}) };
  const secretName = adoptSecretName(opts.name);

  const client: OidcClient = {
    apiVersion: API_GROUP_VERSION,
    kind: 'OidcClient',
    metadata: objectMeta,
    spec: {
      providerRef: { name: opts.provider, kind: opts.providerKind },
      ...specFromMetadata(metadata),
      ...(Object.keys(extraMetadata).length > 0 ? { extraMetadata } : {}),
      adoptFrom: { secretRef: { name: secretName, key: ADOPT_SECRET_KEY } },
    },
  };
  const { issues } = validateResource(client);
  if (issues.length > 0) {
    throw new ImportError('the client JSON does not map to a valid OidcClient', issues);
  }

  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { ...objectMeta, name: secretName },
    type: 'Opaque',
    // Verbatim: the operator reads the same JSON the dashboard showed, nothing lost in translation.
    stringData: { [ADOPT_SECRET_KEY]: jsonText },
  };
  const dropped = Object.keys(metadata).filter(
    (k) => SERVER_MANAGED_CLIENT_METADATA.includes(k) || IAM_SERVER_FIELDS.includes(k),
  );

  const yaml = [
    // The Secret first: applied together, the OidcClient finds it on its first reconcile.
    render(
      secret,
      [
        ` Secret ${secretName}: the credentials of the registration to adopt, including the client secret`,
        ' and the registration access token (whoever holds it can change or delete the client).',
        ' DO NOT COMMIT THIS DOCUMENT AS IS: seal it (Sealed Secrets, SOPS, External Secrets) or create it',
        ' out of band, and keep only the OidcClient below in Git.',
      ].join('\n'),
    ),
    render(client, ` OidcClient ${opts.name}: adopts the registration above; safe to commit.`),
  ].join('---\n');
  return { client, secret, dropped, yaml };
}
