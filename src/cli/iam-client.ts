// Pure part of `import`: turns the client JSON a provider returns on registration (INDIGO IAM's
// dashboard shows it in the JSON tab) into an OidcClient that adopts the registration, plus the
// Secret the adoption reads. Whatever the provider itself wrote is accepted: '', null, [] and {} mean
// "not set", vendor fields stay out of the spec unless asked for, and a value the spec cannot hold
// is left to the provider. No I/O, and nothing here puts secret values anywhere but the Secret.
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
 * Read-only bookkeeping servers add to their client JSON (INDIGO IAM, Ory Hydra, ...). It is not
 * client metadata: it never goes into extraMetadata, not even with `--extra-metadata all`.
 */
export const SERVER_BOOKKEEPING_FIELDS: readonly string[] = [
  'created_at',
  'updated_at',
  'dynamically_registered',
  'active',
  'status_changed_on',
  'status_changed_by',
];

/** What the operator needs to manage an existing registration (RFC 7592). */
const MANAGEMENT_KEYS = ['registration_access_token', 'registration_client_uri'];

export type ProviderKind = 'OidcProvider' | 'ClusterOidcProvider';

/** Which non-standard fields become spec.extraMetadata: none (default), all, or the named ones. */
export type ExtraMetadataChoice = 'none' | 'all' | readonly string[];

export interface ImportOptions {
  /** metadata.name of the OidcClient; the Secret is named `<name>-oidc-adopt`. */
  name: string;
  namespace?: string;
  provider: string;
  providerKind: ProviderKind;
  /** Default 'none': the provider keeps those fields as they are (every PUT carries them back). */
  extraMetadata?: ExtraMetadataChoice;
}

export interface ImportResult {
  client: OidcClient;
  secret: V1Secret;
  /** Field names (never values) present in the JSON but left out of the spec: issued by the server. */
  dropped: string[];
  /** Non-standard fields with a value that are not in extraMetadata: left as the provider has them. */
  leftToProvider: string[];
  /** Standard fields whose value an OidcClient cannot hold, with the reason (never the value). */
  notRepresentable: { field: string; message: string }[];
  /** Keys named in extraMetadata that the JSON does not set. */
  notFound: string[];
  /** The JSON has no registration access token / URI: the operator cannot update or delete the client. */
  unmanaged: boolean;
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

/** '', null, [] and {}: how servers say "not set" (Hydra: "client_uri": "", "contacts": null). */
const isUnset = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  v === '' ||
  (Array.isArray(v) && v.every((item) => item === null || item === '')) ||
  (isRecord(v) && Object.keys(v).length === 0);

/** Spec lists are sets (the apiserver rejects repeats); empty entries mean nothing. */
const cleanList = (v: unknown): unknown =>
  Array.isArray(v) ? [...new Set(v.filter((item) => item !== null && item !== ''))] : v;

/** The spec fields mirroring the JSON's standard metadata; `scope` (space-separated) becomes a list. */
export function specFromMetadata(metadata: Record<string, unknown>): Partial<OidcClientSpec> {
  const spec: Record<string, unknown> = {};
  for (const [field, wire] of Object.entries(STANDARD_CLIENT_METADATA)) {
    const value = metadata[wire];
    if (isUnset(value)) continue;
    if (wire === 'scope' && typeof value === 'string') {
      const scopes = [...new Set(value.split(/\s+/).filter(Boolean))];
      if (scopes.length > 0) spec[field] = scopes;
      continue;
    }
    spec[field] = cleanList(value);
  }
  return spec as Partial<OidcClientSpec>;
}

/** Non-standard fields with a value, other than what the server issues or keeps for itself. */
function candidateExtras(metadata: Record<string, unknown>): Record<string, unknown> {
  const standard = new Set<string>(Object.values(STANDARD_CLIENT_METADATA));
  const excluded = new Set([...SERVER_MANAGED_CLIENT_METADATA, ...SERVER_BOOKKEEPING_FIELDS]);
  return Object.fromEntries(
    Object.entries(metadata).filter(([k, v]) => !isUnset(v) && !standard.has(k) && !excluded.has(k)),
  );
}

/** The extraMetadata the user asked for: nothing by default, every candidate with 'all', or named keys. */
export function extraMetadataFrom(
  metadata: Record<string, unknown>,
  choice: ExtraMetadataChoice = 'all',
): Record<string, unknown> {
  const candidates = candidateExtras(metadata);
  if (choice === 'none') return {};
  if (choice === 'all') return candidates;
  return Object.fromEntries(Object.entries(candidates).filter(([k]) => choice.includes(k)));
}

function parseClientJson(text: string): Record<string, unknown> {
  const parsed = parseJson(text);
  if (!parsed.ok) throw new ImportError(parsed.error.message);
  if (!isRecord(parsed.value)) throw new ImportError('the client JSON must be an object');
  const value = parsed.value;
  if (typeof value.client_id !== 'string' || value.client_id === '') {
    throw new ImportError(
      "the client JSON lacks client_id. Use the JSON the registration answered with, or the JSON tab of the provider's dashboard.",
    );
  }
  const present = MANAGEMENT_KEYS.filter((k) => typeof value[k] === 'string' && value[k] !== '');
  if (present.length === 1) {
    const missing = MANAGEMENT_KEYS.filter((k) => !present.includes(k));
    throw new ImportError(
      `the client JSON has ${present[0]} but lacks ${missing.join(', ')}: the operator needs both to manage the registration`,
    );
  }
  return value;
}

/** Path of a spec issue → the standard spec field it is about, if any. */
function standardFieldOf(path: string): string | undefined {
  const field = /^\/spec\/([^/]+)/.exec(path)?.[1];
  return field !== undefined && Object.hasOwn(STANDARD_CLIENT_METADATA, field) ? field : undefined;
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
  const choice = opts.extraMetadata ?? 'none';
  const extraMetadata = extraMetadataFrom(metadata, choice);
  const objectMeta = { name: opts.name, ...(opts.namespace ? { namespace: opts.namespace } : {}) };
  const secretName = adoptSecretName(opts.name);

  const spec: Record<string, unknown> = specFromMetadata(metadata);
  const build = (): OidcClient => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'OidcClient',
    metadata: objectMeta,
    spec: {
      providerRef: { name: opts.provider, kind: opts.providerKind },
      ...spec,
      ...(Object.keys(extraMetadata).length > 0 ? { extraMetadata } : {}),
      adoptFrom: { secretRef: { name: secretName, key: ADOPT_SECRET_KEY } },
    } as OidcClientSpec,
  });
  // A value the spec cannot hold (an auth method it does not know, a URI it refuses) stays as the
  // provider has it: the field is left out of the spec, so the operator neither sends nor compares it.
  const notRepresentable: { field: string; message: string }[] = [];
  let client = build();
  // Type errors hide the CEL rules (as on the apiserver): repeat until no standard field is left to drop.
  for (let dropped = true; dropped; ) {
    dropped = false;
    for (const issue of validateResource(client).issues) {
      const field = standardFieldOf(issue.path);
      if (field === undefined || !(field in spec)) continue;
      delete spec[field];
      dropped = true;
      notRepresentable.push({
        field: STANDARD_CLIENT_METADATA[field as keyof typeof STANDARD_CLIENT_METADATA],
        message: `${issue.path}: ${issue.message}`,
      });
    }
    client = build();
  }
  const { issues } = validateResource(client);
  if (issues.length > 0) {
    throw new ImportError('the client JSON does not map to a valid OidcClient', issues);
  }

  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { ...objectMeta, name: secretName },
    type: 'Opaque',
    // Verbatim: the operator reads the same JSON the provider gave, nothing lost in translation.
    stringData: { [ADOPT_SECRET_KEY]: jsonText },
  };
  const dropped = Object.keys(metadata).filter(
    (k) => SERVER_MANAGED_CLIENT_METADATA.includes(k) || SERVER_BOOKKEEPING_FIELDS.includes(k),
  );
  const leftToProvider = Object.keys(candidateExtras(metadata)).filter((k) => !(k in extraMetadata));
  const notFound = Array.isArray(choice) ? choice.filter((k) => !(k in extraMetadata)) : [];
  const unmanaged = MANAGEMENT_KEYS.some((k) => typeof metadata[k] !== 'string' || metadata[k] === '');

  const yaml = [
    // The Secret first: applied together, the OidcClient finds it on its first reconcile.
    render(
      secret,
      [
        ` Secret ${secretName}: the credentials of the registration to adopt, including the client secret`,
        unmanaged
          ? ' (the provider gave no registration access token: the operator cannot change or delete this client).'
          : ' and the registration access token (whoever holds it can change or delete the client).',
        ' DO NOT COMMIT THIS DOCUMENT AS IS: seal it (Sealed Secrets, SOPS, External Secrets) or create it',
        ' out of band, and keep only the OidcClient below in Git.',
      ].join('\n'),
    ),
    render(client, ` OidcClient ${opts.name}: adopts the registration above; safe to commit.`),
  ].join('---\n');
  return { client, secret, dropped, leftToProvider, notRepresentable, notFound, unmanaged, yaml };
}
