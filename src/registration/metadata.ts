// Pure translation between the OidcClient spec and RFC 7591 client metadata, and the comparisons
// the reconciler needs to decide whether the provider holds what the user asked for.
import {
  SERVER_MANAGED_CLIENT_METADATA,
  STANDARD_CLIENT_METADATA,
  type StandardField,
} from '../api/client-metadata.js';
import type { OidcClientSpec } from '../api/types.generated.js';
import { UnexpectedResponseError } from './errors.js';
import type { ClientMetadata, RegisteredClient } from './types.js';

/** camelCase spec field → snake_case metadata key, in the order they are sent. */
export const STANDARD_FIELDS: Readonly<Record<StandardField, string>> = STANDARD_CLIENT_METADATA;

const STANDARD_KEYS = new Set(Object.values(STANDARD_FIELDS));

/** Keys the server issues; a user must never set them through extraMetadata. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(SERVER_MANAGED_CLIENT_METADATA);

/** What metadataForUpdate drops from the observed registration before sending it back. */
const SERVER_MANAGED_KEYS = [
  'registration_access_token',
  'registration_client_uri',
  'client_secret_expires_at',
  'client_id_issued_at',
  'client_secret',
] as const;

/**
 * The RFC 7591 metadata a spec asks for: only fields the user set, snake_case, `scopes` joined into
 * the space-separated `scope`. extraMetadata is merged as-is except that a standard field set in the
 * spec wins over the same key in extraMetadata and server-issued keys are never sent; such keys are
 * reported by extraMetadataConflicts so the reconciler can refuse the spec.
 */
export function specToMetadata(spec: OidcClientSpec): ClientMetadata {
  const metadata: ClientMetadata = {};
  for (const [field, key] of Object.entries(STANDARD_FIELDS) as [StandardField, string][]) {
    const value = spec[field];
    if (value === undefined) continue;
    metadata[key] = field === 'scopes' && Array.isArray(value) ? value.join(' ') : structuredClone(value);
  }
  for (const [key, value] of Object.entries(spec.extraMetadata ?? {})) {
    if (value === undefined || FORBIDDEN_KEYS.has(key) || key in metadata) continue;
    metadata[key] = structuredClone(value);
  }
  return metadata;
}

/** extraMetadata keys that repeat a standard field or name a server-issued value, sorted. */
export function extraMetadataConflicts(spec: OidcClientSpec): string[] {
  return Object.keys(spec.extraMetadata ?? {})
    .filter((key) => STANDARD_KEYS.has(key) || FORBIDDEN_KEYS.has(key))
    .sort();
}

export interface FieldDifference {
  /** snake_case metadata key. */
  field: string;
  desired: unknown;
  observed: unknown;
}

/**
 * Differences for the keys present in `desired` only: the server may add defaults and fields of its
 * own, which are not drift. Arrays compare as sets, `scope` as a set of tokens, objects regardless
 * of key order; a desired key missing from `observed` is a difference.
 */
export function diffSpecified(desired: ClientMetadata, observed: ClientMetadata): FieldDifference[] {
  const differences: FieldDifference[] = [];
  for (const [field, want] of Object.entries(desired)) {
    if (want === undefined) continue;
    const have = Object.hasOwn(observed, field) ? observed[field] : undefined;
    if (!sameValue(field, want, have)) differences.push({ field, desired: want, observed: have });
  }
  return differences;
}

function sameValue(field: string, want: unknown, have: unknown): boolean {
  if (have === undefined) return false;
  if (field === 'scope' && typeof want === 'string' && typeof have === 'string') {
    return sameSet(scopeTokens(want), scopeTokens(have));
  }
  if (Array.isArray(want)) {
    return Array.isArray(have) && sameSet(want.map(canonical), have.map(canonical));
  }
  return canonical(want) === canonical(have);
}

function scopeTokens(scope: string): string[] {
  return scope.split(/\s+/).filter((token) => token !== '');
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a);
  const right = new Set(b);
  return left.size === right.size && [...left].every((item) => right.has(item));
}

/** JSON with object keys sorted at every level, so key order never makes two values differ. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const record = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((k) => [k, record[k]]),
    );
  });
}

/**
 * The body of an RFC 7592 PUT. Servers such as node-oidc-provider replace the whole registration
 * and reset omitted fields to defaults, so start from what the server holds, drop what it issues
 * itself (it rejects those in a PUT), overlay the desired fields and name the client.
 */
export function metadataForUpdate(
  desired: ClientMetadata,
  observed: ClientMetadata,
  clientId: string,
): ClientMetadata {
  const body: ClientMetadata = structuredClone(observed);
  for (const key of SERVER_MANAGED_KEYS) delete body[key];
  for (const [key, value] of Object.entries(desired)) {
    if (value === undefined || FORBIDDEN_KEYS.has(key)) continue;
    body[key] = structuredClone(value);
  }
  body.client_id = clientId;
  return body;
}

/**
 * A registration or management answer (RFC 7591 §3.2.1 / RFC 7592 §3). Validates the fields the
 * operator relies on; messages name the offending field, never its value.
 */
export function parseRegistrationResponse(body: unknown): RegisteredClient {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new UnexpectedResponseError('registration response is not a JSON object');
  }
  const metadata = body as ClientMetadata;
  const clientId = metadata.client_id;
  if (typeof clientId !== 'string' || clientId === '') {
    throw new UnexpectedResponseError('registration response has no client_id string');
  }
  const client: RegisteredClient = { clientId, metadata };
  const clientSecret = optionalString(metadata, 'client_secret');
  if (clientSecret !== undefined) client.clientSecret = clientSecret;
  const rat = optionalString(metadata, 'registration_access_token');
  if (rat !== undefined) client.registrationAccessToken = rat;
  const uri = optionalString(metadata, 'registration_client_uri');
  if (uri !== undefined) client.registrationClientUri = uri;
  const expiresAt = optionalTimestamp(metadata, 'client_secret_expires_at');
  if (expiresAt !== undefined) client.clientSecretExpiresAt = expiresAt;
  optionalTimestamp(metadata, 'client_id_issued_at');
  return client;
}

function optionalString(metadata: ClientMetadata, key: string): string | undefined {
  const value = metadata[key];
  // Some servers send '' or null for "none" (e.g. no secret for a public client).
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') {
    throw new UnexpectedResponseError(`registration response has an invalid ${key} (expected a string)`);
  }
  return value;
}

function optionalTimestamp(metadata: ClientMetadata, key: string): number | undefined {
  const value = metadata[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new UnexpectedResponseError(
      `registration response has an invalid ${key} (expected seconds since epoch)`,
    );
  }
  return value;
}
