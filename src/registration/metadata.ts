// Pure translation between the OidcClient spec and RFC 7591 client metadata, and the comparisons
// the reconciler needs to decide whether the provider holds what the user asked for.
import { createHash } from 'node:crypto';
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
 * What a provider stores for a specified value when it keeps every value sent and adds its own
 * (scope extended with default scopes, grant types added): per field, fingerprints of the value
 * sent and of the value kept. Learnt from the provider's answer to our own POST or PUT, so only a
 * change it made by itself is accepted, never someone else's edit.
 */
export type ProviderForms = Readonly<Record<string, string>>;

/**
 * Differences for the keys present in `desired` only: the server may add defaults and fields of its
 * own, which are not drift. Arrays compare as sets, `scope` as a set of tokens, URIs (`*_uri`,
 * `*_uris`) in their WHATWG-serialised form (host case, default port, '/' for an empty path),
 * objects regardless of key order; a desired key missing from `observed` is a difference. A value
 * the provider keeps in a learnt form (`forms`) is not a difference.
 */
export function diffSpecified(
  desired: ClientMetadata,
  observed: ClientMetadata,
  forms: ProviderForms = {},
): FieldDifference[] {
  const differences: FieldDifference[] = [];
  for (const [field, want] of Object.entries(desired)) {
    if (want === undefined) continue;
    const have = Object.hasOwn(observed, field) ? observed[field] : undefined;
    if (sameValue(field, want, have)) continue;
    if (have !== undefined && Object.hasOwn(forms, field) && forms[field] === formOf(field, want, have))
      continue;
    differences.push({ field, desired: want, observed: have });
  }
  return differences;
}

/** How a provider answered a write of `desired`, field by field. */
export interface WriteVerdict {
  /** Fields kept with additions of the provider's own, as ProviderForms (sorted keys). */
  forms: Record<string, string>;
  /** Fields not kept: a value sent is missing or was changed. */
  notKept: string[];
}

/**
 * Judges the provider's answer to a POST or PUT of `desired`: a field is kept (the same value, or
 * an equivalent spelling), kept with additions (every value sent is there, plus some of the
 * provider's: its form is learnt), or not kept.
 */
export function judgeWrite(desired: ClientMetadata, answer: ClientMetadata): WriteVerdict {
  const forms: Record<string, string> = {};
  const notKept: string[] = [];
  for (const [field, want] of Object.entries(desired)) {
    if (want === undefined) continue;
    const have = Object.hasOwn(answer, field) ? answer[field] : undefined;
    if (sameValue(field, want, have)) continue;
    if (contains(field, have, want)) forms[field] = formOf(field, want, have);
    else notKept.push(field);
  }
  return { forms: Object.fromEntries(Object.entries(forms).sort(([a], [b]) => a.localeCompare(b))), notKept };
}

/** Forms as stored (a JSON object with sorted keys); '' for none. */
export function formatProviderForms(forms: ProviderForms): string {
  const keys = Object.keys(forms).sort();
  return keys.length === 0 ? '' : JSON.stringify(Object.fromEntries(keys.map((k) => [k, forms[k]])));
}

/** Stored forms; anything unreadable counts as none (costs at most one PUT to learn them again). */
export function parseProviderForms(text: string | undefined): ProviderForms {
  if (!text) return {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(
      Object.entries(parsed as Record<string, unknown>).filter(
        (entry): entry is [string, string] => typeof entry[1] === 'string',
      ),
    );
  } catch {
    return {};
  }
}

function formOf(field: string, want: unknown, have: unknown): string {
  return `${fingerprint(field, want)}.${fingerprint(field, have)}`;
}

/** A short hash of a value in its compared form (set order and URI spelling do not matter). */
function fingerprint(field: string, value: unknown): string {
  return createHash('sha256').update(comparable(field, value)).digest('hex').slice(0, 12);
}

function comparable(field: string, value: unknown): string {
  if (field === 'scope' && typeof value === 'string')
    return JSON.stringify([...new Set(scopeTokens(value))].sort());
  if (Array.isArray(value)) return JSON.stringify([...new Set(value.map((v) => element(field, v)))].sort());
  return element(field, value);
}

function element(field: string, value: unknown): string {
  return isUriField(field) && typeof value === 'string'
    ? JSON.stringify(normaliseUri(value))
    : canonical(value);
}

function sameValue(field: string, want: unknown, have: unknown): boolean {
  if (have === undefined) return false;
  if (field === 'scope' && typeof want === 'string' && typeof have === 'string') {
    return sameSet(scopeTokens(want), scopeTokens(have));
  }
  if (Array.isArray(want)) {
    return (
      Array.isArray(have) &&
      sameSet(
        want.map((v) => element(field, v)),
        have.map((v) => element(field, v)),
      )
    );
  }
  return element(field, want) === element(field, have);
}

/** Every value of `want` is in `have` (lists and scope only). */
function contains(field: string, have: unknown, want: unknown): boolean {
  if (field === 'scope' && typeof want === 'string' && typeof have === 'string') {
    const kept = new Set(scopeTokens(have));
    return scopeTokens(want).every((token) => kept.has(token));
  }
  if (!Array.isArray(want) || !Array.isArray(have)) return false;
  const kept = new Set(have.map((v) => element(field, v)));
  return want.every((v) => kept.has(element(field, v)));
}

/** `*_uri` and `*_uris` metadata (RFC 7591 and OpenID Connect Registration name them so). */
function isUriField(field: string): boolean {
  return /_uris?$/.test(field);
}

/** The WHATWG serialisation (lower-case host, default port dropped, '/' for an empty path); else as is. */
function normaliseUri(uri: string): string {
  return URL.canParse(uri) ? new URL(uri).href : uri;
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
 * '', null and {}: how servers say "not set" for a string, a list or an object. An empty list is
 * kept: on a server that replaces the registration, leaving it out brings back the default (say
 * response_types ["code"] for a client that has none on purpose).
 */
export function isUnsetValue(value: unknown): boolean {
  if (value === '' || value === null) return true;
  return typeof value === 'object' && !Array.isArray(value) && Object.keys(value as object).length === 0;
}

/**
 * The body of an RFC 7592 PUT. Servers such as node-oidc-provider replace the whole registration
 * and reset omitted fields to defaults, so start from what the server holds, drop what it issues
 * itself (it rejects those in a PUT) and what it holds as "not set" ('', null, {}: a server that
 * writes them need not take them back, and leaving them out means the same), overlay the desired
 * fields and name the client.
 */
export function metadataForUpdate(
  desired: ClientMetadata,
  observed: ClientMetadata,
  clientId: string,
): ClientMetadata {
  const body: ClientMetadata = structuredClone(observed);
  for (const key of SERVER_MANAGED_KEYS) delete body[key];
  for (const [key, value] of Object.entries(body)) if (isUnsetValue(value)) delete body[key];
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
