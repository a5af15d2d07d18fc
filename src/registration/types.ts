// Shapes shared by the registration client and its callers.

/** RFC 7591 client metadata, snake_case, as sent to and returned by the server. */
export type ClientMetadata = Record<string, unknown>;

export interface RegisteredClient {
  clientId: string;
  clientSecret?: string;
  /** Present when the server returned one; it may differ from the token that was used (rotation). */
  registrationAccessToken?: string;
  registrationClientUri?: string;
  clientSecretExpiresAt?: number;
  /** The full parsed response body. It includes secrets: never log it. */
  metadata: ClientMetadata;
}

export interface ProviderEndpoints {
  issuer: string;
  registrationEndpoint: string;
  tokenEndpoint?: string;
  source: 'explicit' | 'discovery' | 'iam-default';
}

export type CredentialProbeResult = 'valid' | 'invalid' | 'unknown';

/** Called once per HTTP attempt (retries included). Carries no URL path, token or body. */
export type RequestObserver = (e: {
  method: string;
  host: string;
  status: number | 'error';
  durationMs: number;
}) => void;
