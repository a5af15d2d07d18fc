// Typed failures of the registration client. The controller switches on `kind` to pick a condition
// reason and a requeue policy. Messages carry only the HTTP status, the OAuth `error` code and its
// description, never a token, secret or raw response body.

export abstract class RegistrationError extends Error {
  abstract readonly kind: string;
  /** HTTP status of the answer that caused the error, when there was one. */
  status?: number;

  constructor(message: string, status?: number) {
    super(message);
    this.name = new.target.name;
    if (status !== undefined) this.status = status;
  }
}

/** Network error, timeout, 5xx or 429 (after the retries that were safe to make). Transient: requeue. */
export class ProviderUnavailableError extends RegistrationError {
  readonly kind = 'ProviderUnavailable';
  /** The server's Retry-After, when it sent one: the earliest moment worth trying again. */
  retryAfterMs?: number;
  /** Node/undici error code of a network failure (ECONNREFUSED, UND_ERR_SOCKET, TIMEOUT, ...). */
  code?: string;

  constructor(message: string, opts: { status?: number; retryAfterMs?: number; code?: string } = {}) {
    super(message, opts.status);
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (opts.code !== undefined) this.code = opts.code;
  }
}

/** 400 with an OAuth error body (invalid_redirect_uri, invalid_client_metadata, invalid_request, ...). */
export class InvalidClientMetadataError extends RegistrationError {
  readonly kind = 'InvalidMetadata';
  readonly error: string;
  readonly errorDescription?: string;

  constructor(error: string, errorDescription?: string, status = 400) {
    super(errorDescription ? `${error}: ${errorDescription}` : error, status);
    this.error = error;
    if (errorDescription !== undefined) this.errorDescription = errorDescription;
  }
}

/**
 * 401/403 on an RFC 7592 management call. Ambiguous by design of RFC 7592: the token may be revoked
 * or rotated elsewhere, or the client may be gone. `probeCredentials` tells the two apart.
 */
export class TokenRejectedError extends RegistrationError {
  readonly kind = 'TokenRejected';
}

/** 404 or 410 on a management call with an OAuth error body: the provider itself says the client does not exist. */
export class ClientNotFoundError extends RegistrationError {
  readonly kind = 'ClientNotFound';
}

/** Any other answer, or a body that is not what RFC 7591/7592 promise. */
export class UnexpectedResponseError extends RegistrationError {
  readonly kind = 'UnexpectedResponse';
}

/**

 * 404 or 410 on a management call without an OAuth error body (an HTML page, an empty body): an
 * ingress or gateway in maintenance answers like that for a client that still exists. Only a
 * credentials probe can tell whether the client is gone; until then it is an unexpected answer.
 */
export class UnconfirmedNotFoundError extends UnexpectedResponseError {}

/**
 * A management URL (registration_client_uri from a Secret, an adoption source or a provider answer,
 * or a redirect target) is not on an origin of the provider. Raised before anything is sent: a
 * registration access token only ever goes to the provider that issued it.
 */
export class ForeignEndpointError extends RegistrationError {
  readonly kind = 'ForeignEndpoint';
  /** The offending origin (scheme://host[:port]); never a path, query or token. */
  readonly origin: string;

  constructor(message: string, origin: string) {
    super(message);
    this.origin = origin;
  }
}

/**
 * A management URL or answer names another client than the one stored: acting on it could change
 * or delete someone else's registration. Raised before a request, or instead of using the answer.
 */
export class ClientMismatchError extends RegistrationError {
  readonly kind = 'ClientMismatch';
}

/** 401/403 on registration (POST): the initial access token is missing or wrong. */
export class RegistrationUnauthorizedError extends RegistrationError {
  readonly kind = 'RegistrationUnauthorized';
}

export function isRegistrationError(value: unknown): value is RegistrationError {
  return value instanceof RegistrationError;
}
