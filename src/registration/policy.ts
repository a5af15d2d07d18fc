// Pure decisions of the HTTP layer: what may be retried, how long Retry-After asks us to wait, and
// which typed error an answer becomes. Kept free of I/O so every rule has a unit test.
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  type RegistrationError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
  UnconfirmedNotFoundError,
  UnexpectedResponseError,
} from './errors.js';
import type { CredentialProbeResult } from './types.js';

/**
 * 'idempotent': repeating the request cannot create anything twice (GET, PUT, DELETE, token probes).
 * 'create': a POST that registers a client; repeating it after the server may have processed it
 * would leave an orphaned client behind.
 */
export type RetryClass = 'idempotent' | 'create';

/** Longest Retry-After we wait for inside one call; beyond it the caller should requeue instead. */
export const MAX_RETRY_AFTER_MS = 30_000;

/** Statuses that say "not processed, try again": a create POST only trusts 429 and 503. */
export function isRetryableStatus(retryClass: RetryClass, status: number): boolean {
  if (status === 429 || status === 503) return true;
  return retryClass === 'idempotent' && (status === 502 || status === 504);
}

/** Certificate problems do not heal by retrying; they need a CA or URL fix. */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function isTlsVerificationCode(code: string | undefined): boolean {
  return code !== undefined && TLS_VERIFY_CODES.has(code);
}

/**
 * Network failures: anything goes for idempotent requests (except certificate errors); a create
 * POST only when the connection was refused, i.e. nothing was sent. A reset or timeout after
 * sending is not retried because the server may already have registered the client.
 */
export function isRetryableNetworkCode(retryClass: RetryClass, code: string | undefined): boolean {
  if (isTlsVerificationCode(code)) return false;
  if (retryClass === 'create') return code === 'ECONNREFUSED';
  return true;
}

/** The error code of a network failure, looking through `cause` and AggregateError (happy eyeballs). */
export function networkErrorCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (typeof current !== 'object') return undefined;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (current instanceof AggregateError) {
      const codes = new Set(current.errors.map((e) => networkErrorCode(e)));
      return codes.size === 1 ? [...codes][0] : undefined;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Retry-After as delta-seconds or HTTP-date, in milliseconds (never negative). Undefined when the
 * header is absent or unparsable.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[a-z]/i.test(text)) return undefined; // e.g. "-1" or "1.5": neither form
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface OAuthError {
  error: string;
  errorDescription?: string;
}

const MAX_DESCRIPTION = 300;

/** The OAuth `error` / `error_description` of a response body, cleaned for messages; nothing else. */
export function oauthError(body: unknown): OAuthError | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const { error, error_description: description } = body as Record<string, unknown>;
  if (typeof error !== 'string' || error.trim() === '') return undefined;
  const result: OAuthError = { error: clean(error, 100) };
  if (typeof description === 'string' && description.trim() !== '') {
    result.errorDescription = clean(description, MAX_DESCRIPTION);
  }
  return result;
}

function clean(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/**
 * RFC 6749 §5.2: an error code is one or more printable ASCII characters other than space, '"' and
 * '\\'. Spring's default error page JSON ({"error": "Not Found"}) is therefore not an OAuth error.
 */
const OAUTH_ERROR_CODE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** The body is an OAuth error answer (an `error` code of RFC 6749 syntax), i.e. the provider's own words. */
export function isOAuthErrorBody(body: unknown): boolean {
  const oauth = oauthError(body);
  return oauth !== undefined && OAUTH_ERROR_CODE.test(oauth.error);
}

function describe(status: number, body: unknown, contentType?: string): string {
  const oauth = oauthError(body);
  if (!oauth) return contentType ? `HTTP ${status}, ${contentType.split(';')[0]?.trim()}` : `HTTP ${status}`;
  return `HTTP ${status} ${oauth.error}${oauth.errorDescription ? `: ${oauth.errorDescription}` : ''}`;
}

/** Which call produced an unsuccessful answer; decides what 401/403/404 mean. */
export type CallKind = 'register' | 'manage' | 'discovery';

/**
 * The typed error for an answer that is not a success. `what` names the call for the message,
 * e.g. "GET 127.0.0.1:8443" (never a URL with a token or a query).
 */
export function errorForResponse(
  kind: CallKind,
  status: number,
  body: unknown,
  what: string,
  contentType?: string,
): RegistrationError {
  const detail = describe(status, body, contentType);
  if (status === 429 || status >= 500) {
    return new ProviderUnavailableError(`${what}: provider unavailable (${detail})`, { status });
  }
  if (status === 400) {
    const oauth = oauthError(body);
    if (oauth) return new InvalidClientMetadataError(oauth.error, oauth.errorDescription, status);
  }
  if (kind === 'register' && (status === 401 || status === 403)) {
    return new RegistrationUnauthorizedError(
      `${what}: registration refused, the initial access token is missing or not accepted (${detail})`,
      status,
    );
  }
  if (kind === 'manage' && (status === 401 || status === 403)) {
    return new TokenRejectedError(
      `${what}: registration access token rejected; the token was revoked or rotated, or the client is gone (${detail})`,
      status,
    );
  }
  if (kind === 'manage' && (status === 404 || status === 410)) {
    // Gone means gone only in the provider's own words; a bare 404 may come from a proxy in front of it.
    if (isOAuthErrorBody(body)) {
      return new ClientNotFoundError(`${what}: client not found at the provider (${detail})`, status);
    }
    return new UnconfirmedNotFoundError(
      `${what}: unexpected answer (${detail}) without an OAuth error body; not taken as "client gone"`,
      status,
    );
  }
  return new UnexpectedResponseError(`${what}: unexpected answer (${detail})`, status);
}

/**
 * RFC 6749 §5.2 answers to a client_credentials request, read as "do these credentials still
 * authenticate?". Only invalid_client says no; any other OAuth error is issued after the client
 * authenticated (unauthorized_client, invalid_scope, ...), so the client exists.
 */
export function probeOutcome(status: number, body: unknown): CredentialProbeResult {
  if (status >= 200 && status < 300) return 'valid';
  const oauth = oauthError(body);
  if (status === 400 || status === 401) {
    if (oauth?.error === 'invalid_client') return 'invalid';
    if (oauth) return 'valid';
    return 'unknown';
  }
  if (status === 403 && oauth && oauth.error !== 'invalid_client') return 'valid';
  return 'unknown';
}
