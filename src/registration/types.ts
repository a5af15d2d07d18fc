// Shapes shared by the registration client and its callers.

/** RFC 7591 client metadata, snake_case, as sent to and returned by the server. */
export type ClientMetadata = Record<string, unknown>;

export interface RegisteredClient {
  clientId: string;
  clientSecret?: string;
  /** Present when the server returned one; it may differ from the token that was used (rotation). */
  registrationAccessToken?: string;
  registrationClientUri?: string;
  /**
   * A registration_client_uri the answer named but the operator must not call (not on a provider
   * origin, or naming another client). Kept apart so no caller uses it by mistake.
   */
  untrustedRegistrationClientUri?: string;
  clientSecretExpiresAt?: number;
  /** The full parsed response body. It includes secrets: never log it. */
  metadata: ClientMetadata;
}

export interface ProviderEndpoints {
  issuer: string;
  registrationEndpoint: string;
  tokenEndpoint?: string;
  /** The discovery document these came from (absent when it could not be read). */
  discoveryUrl?: string;
  /** From the discovery document, for Secret templates. */
  authorizationEndpoint?: string;
  userinfoEndpoint?: string;
  jwksUri?: string;
  endSessionEndpoint?: string;
  source: 'explicit' | 'discovery' | 'iam-default';
}

export type CredentialProbeResult = 'valid' | 'invalid' | 'unknown';

/**
 * Called once per HTTP attempt (retries included). Carries no URL, host, token or body: whoever
 * labels metrics with it knows which provider the client belongs to.
 */
export type RequestObserver = (e: { method: string; status: number | 'error'; durationMs: number }) => void;
