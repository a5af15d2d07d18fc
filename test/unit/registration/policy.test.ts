import { describe, expect, it } from 'vitest';
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
  UnconfirmedNotFoundError,
  UnexpectedResponseError,
} from '../../../src/registration/errors.js';
import {
  errorForResponse,
  isOAuthErrorBody,
  isRetryableNetworkCode,
  isRetryableStatus,
  networkErrorCode,
  oauthError,
  parseRetryAfter,
  probeOutcome,
} from '../../../src/registration/policy.js';

const WHAT = 'GET idp.example/iam/api/client-registration/abc';

describe('errorForResponse', () => {
  it.each([
    ['manage', 401, TokenRejectedError, 'TokenRejected'],
    ['manage', 403, TokenRejectedError, 'TokenRejected'],
    ['manage', 404, ClientNotFoundError, 'ClientNotFound'],
    ['manage', 410, ClientNotFoundError, 'ClientNotFound'],
    ['register', 401, RegistrationUnauthorizedError, 'RegistrationUnauthorized'],
    ['register', 403, RegistrationUnauthorizedError, 'RegistrationUnauthorized'],
    ['register', 404, UnexpectedResponseError, 'UnexpectedResponse'],
    ['discovery', 404, UnexpectedResponseError, 'UnexpectedResponse'],
    ['discovery', 401, UnexpectedResponseError, 'UnexpectedResponse'],
    ['manage', 405, UnexpectedResponseError, 'UnexpectedResponse'],
    ['manage', 302, UnexpectedResponseError, 'UnexpectedResponse'],
    ['register', 409, UnexpectedResponseError, 'UnexpectedResponse'],
    ['manage', 500, ProviderUnavailableError, 'ProviderUnavailable'],
    ['register', 503, ProviderUnavailableError, 'ProviderUnavailable'],
    ['manage', 429, ProviderUnavailableError, 'ProviderUnavailable'],
  ] as const)('%s HTTP %i → %o', (kind, status, type, kindName) => {
    const error = errorForResponse(kind, status, { error: 'some_error' }, WHAT);
    expect(error).toBeInstanceOf(type);
    expect(error).toBeInstanceOf(RegistrationError);
    expect(error.kind).toBe(kindName);
    expect(error.status).toBe(status);
    expect(error.message).toContain(WHAT);
  });

  it('takes a management 404/410 for "client gone" only with an OAuth error body', () => {
    for (const status of [404, 410]) {
      expect(errorForResponse('manage', status, { error: 'invalid_client' }, WHAT)).toBeInstanceOf(
        ClientNotFoundError,
      );
      for (const body of [undefined, { message: 'no such route' }, { status, error: 'Not Found' }]) {
        const error = errorForResponse('manage', status, body, WHAT, 'text/html; charset=utf-8');
        expect(error).toBeInstanceOf(UnconfirmedNotFoundError);
        expect(error).toBeInstanceOf(UnexpectedResponseError);
        expect(error).not.toBeInstanceOf(ClientNotFoundError);
        expect(error.status).toBe(status);
        expect(error.message).toContain('unexpected answer');
      }
    }
    expect(errorForResponse('manage', 404, undefined, WHAT, 'text/html; charset=utf-8').message).toContain(
      'HTTP 404, text/html',
    );
  });

  it('recognises OAuth error codes by their RFC 6749 syntax', () => {
    expect(isOAuthErrorBody({ error: 'invalid_client_id' })).toBe(true);
    expect(isOAuthErrorBody({ error: 'not_found', error_description: 'no such client' })).toBe(true);
    for (const body of [
      { error: 'Not Found' },
      { error: 'a"b' },
      { error: '' },
      'invalid_client',
      undefined,
    ]) {
      expect(isOAuthErrorBody(body)).toBe(false);
    }
  });

  it('turns 400 with an OAuth error into InvalidClientMetadataError with both fields', () => {
    const error = errorForResponse(
      'register',
      400,
      { error: 'invalid_redirect_uri', error_description: 'redirect_uris must not contain fragments' },
      WHAT,
    );
    expect(error).toBeInstanceOf(InvalidClientMetadataError);
    const invalid = error as InvalidClientMetadataError;
    expect(invalid.kind).toBe('InvalidMetadata');
    expect(invalid.error).toBe('invalid_redirect_uri');
    expect(invalid.errorDescription).toBe('redirect_uris must not contain fragments');
    expect(invalid.message).toBe('invalid_redirect_uri: redirect_uris must not contain fragments');
    expect(invalid.status).toBe(400);
  });

  it('uses the error alone as message when there is no description', () => {
    const error = errorForResponse(
      'manage',
      400,
      { error: 'invalid_request' },
      WHAT,
    ) as InvalidClientMetadataError;
    expect(error.message).toBe('invalid_request');
    expect(error.errorDescription).toBeUndefined();
  });

  it('turns 400 without an OAuth error body into UnexpectedResponseError', () => {
    expect(errorForResponse('register', 400, undefined, WHAT)).toBeInstanceOf(UnexpectedResponseError);
    expect(errorForResponse('register', 400, { message: 'bad' }, WHAT)).toBeInstanceOf(
      UnexpectedResponseError,
    );
  });

  it('quotes only error and error_description from a body, never other fields', () => {
    const body = {
      error: 'invalid_token',
      error_description: 'token expired',
      registration_access_token: 'rat-SECRET-1',
      client_secret: 'client-SECRET-2',
    };
    for (const status of [401, 404, 418, 500]) {
      const error = errorForResponse('manage', status, body, WHAT);
      expect(error.message).toContain('invalid_token');
      expect(error.message).toContain('token expired');
      expect(error.message).not.toMatch(/SECRET/);
      expect(JSON.stringify({ ...error })).not.toMatch(/SECRET/);
    }
  });
});

describe('oauthError', () => {
  it('extracts error and description', () => {
    expect(oauthError({ error: 'invalid_client', error_description: 'no' })).toEqual({
      error: 'invalid_client',
      errorDescription: 'no',
    });
  });

  it('ignores non-objects, non-string and empty errors', () => {
    for (const body of [
      undefined,
      null,
      'text',
      ['x'],
      { error: 42 },
      { error: '' },
      { error_description: 'x' },
    ]) {
      expect(oauthError(body)).toBeUndefined();
    }
  });

  it('flattens control characters and truncates long descriptions', () => {
    const parsed = oauthError({ error: 'bad\nline', error_description: `a\r\n${'x'.repeat(1000)}` });
    expect(parsed?.error).toBe('bad line');
    expect(parsed?.errorDescription?.startsWith('a x')).toBe(true);
    expect(parsed?.errorDescription?.length).toBeLessThanOrEqual(301);
  });
});

describe('retry policy', () => {
  it('retries idempotent calls on 429, 502, 503, 504 only', () => {
    const retryable = [400, 401, 404, 409, 429, 500, 501, 502, 503, 504, 505].filter((s) =>
      isRetryableStatus('idempotent', s),
    );
    expect(retryable).toEqual([429, 502, 503, 504]);
  });

  it('retries a create POST only on 429 and 503 (the server did not process it)', () => {
    const retryable = [400, 429, 500, 502, 503, 504].filter((s) => isRetryableStatus('create', s));
    expect(retryable).toEqual([429, 503]);
  });

  it('retries a create POST on connection refused only', () => {
    expect(isRetryableNetworkCode('create', 'ECONNREFUSED')).toBe(true);
    for (const code of [
      'UND_ERR_SOCKET',
      'ECONNRESET',
      'TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'EPIPE',
      undefined,
    ]) {
      expect(isRetryableNetworkCode('create', code)).toBe(false);
    }
  });

  it('retries idempotent calls on any network error except certificate problems', () => {
    for (const code of ['ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNRESET', 'TIMEOUT', undefined]) {
      expect(isRetryableNetworkCode('idempotent', code)).toBe(true);
    }
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'CERT_HAS_EXPIRED',
    ]) {
      expect(isRetryableNetworkCode('idempotent', code)).toBe(false);
      expect(isRetryableNetworkCode('create', code)).toBe(false);
    }
  });
});

describe('networkErrorCode', () => {
  const withCode = (code: string): Error => Object.assign(new Error('x'), { code });

  it('reads code, looking through cause', () => {
    expect(networkErrorCode(withCode('ECONNREFUSED'))).toBe('ECONNREFUSED');
    expect(networkErrorCode(new Error('wrapped', { cause: withCode('ECONNRESET') }))).toBe('ECONNRESET');
    expect(networkErrorCode(new Error('plain'))).toBeUndefined();
    expect(networkErrorCode('string')).toBeUndefined();
  });

  it('reads an AggregateError (happy eyeballs) only when all attempts agree', () => {
    expect(networkErrorCode(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]))).toBe(
      'ECONNREFUSED',
    );
    expect(
      networkErrorCode(new AggregateError([withCode('ECONNREFUSED'), withCode('ETIMEDOUT')])),
    ).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(['3', '5'], now)).toBe(3000);
  });

  it('reads an HTTP date relative to now, never negative', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
  });

  it('ignores what is neither', () => {
    for (const value of [undefined, '', '-1', '1.5', 'soon', '12abc']) {
      expect(parseRetryAfter(value, now)).toBeUndefined();
    }
  });
});

describe('probeOutcome', () => {
  it('says invalid only for invalid_client on 400/401', () => {
    expect(probeOutcome(401, { error: 'invalid_client' })).toBe('invalid');
    expect(
      probeOutcome(400, { error: 'invalid_client', error_description: 'client authentication failed' }),
    ).toBe('invalid');
  });

  it('says valid for a token and for OAuth errors raised after authentication', () => {
    expect(probeOutcome(200, { access_token: 'x', token_type: 'Bearer' })).toBe('valid');
    for (const error of ['unauthorized_client', 'invalid_scope', 'invalid_grant', 'unsupported_grant_type']) {
      expect(probeOutcome(400, { error })).toBe('valid');
    }
  });

  it('says unknown when the answer does not tell', () => {
    expect(probeOutcome(401, undefined)).toBe('unknown');
    expect(probeOutcome(400, 'html')).toBe('unknown');
    expect(probeOutcome(500, { error: 'server_error' })).toBe('unknown');
    expect(probeOutcome(404, undefined)).toBe('unknown');
    expect(probeOutcome(403, { error: 'invalid_client' })).toBe('unknown');
  });
});

describe('error classes', () => {
  it('carry kind, name and status, and ProviderUnavailable its retry hint and code', () => {
    const error = new ProviderUnavailableError('down', { status: 503, retryAfterMs: 1000 });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ProviderUnavailableError');
    expect(error.kind).toBe('ProviderUnavailable');
    expect(error.status).toBe(503);
    expect(error.retryAfterMs).toBe(1000);
    const network = new ProviderUnavailableError('refused', { code: 'ECONNREFUSED' });
    expect(network.status).toBeUndefined();
    expect(network.code).toBe('ECONNREFUSED');
    expect(new TokenRejectedError('x', 401).name).toBe('TokenRejectedError');
  });
});
