// Public types of the test registration server. Kept apart from the implementation so tests and
// scripts can import them without pulling in node-oidc-provider.
import type { TlsMaterial } from './tls.js';

/** 'iam': the RAT stays the same on use (INDIGO IAM default); 'rotating': every GET/PUT answers with a new RAT (Keycloak-like). */
export type RatMode = 'iam' | 'rotating';

/** When the server hands out a new registration access token (and invalidates the one used). */
export type RatRotation = 'never' | 'put' | 'every-call';

/**
 * How a server departs from node-oidc-provider's own RFC 7591/7592 behaviour, one switch per
 * behaviour seen in the wild. Request bodies are rewritten before node-oidc-provider sees them and
 * answers after it answered (dialect.ts); the store holds what node-oidc-provider keeps.
 */
export interface Dialect {
  /** The issuer lives below this path and every route is served under it (Keycloak: /realms/NAME). */
  basePath?: string;
  /** RFC 7591 endpoint below basePath (default IAM's); RFC 7592 management at `${it}/{client_id}`. */
  registrationPath?: string;
  /** Token endpoint below basePath (default /token). */
  tokenPath?: string;
  /** Default from `mode`: 'never' for iam, 'every-call' for rotating. */
  ratRotation?: RatRotation;
  /**
   * Answers carry '' for string metadata and null for lists the client did not send (client_uri,
   * logo_uri, policy_uri, tos_uri, jwks_uri; contacts, response_types, post_logout_redirect_uris).
   * Requests may carry them back: '' and null mean "not set".
   */
  emptyForUnset?: boolean;
  /**
   * Vendor bookkeeping in every answer: created_at, updated_at, owner: '', audience: [], jwks: {},
   * metadata: {}. Requests may carry them back; they are dropped.
   */
  vendorFields?: boolean;
  /** GET answers without client_secret and registration_access_token. */
  readWithoutCredentials?: boolean;
  /** Status of a successful registration (default 201). */
  registrationStatus?: 200 | 201;
  /** Status of a successful DELETE (default 204; 200 comes with an empty body). */
  deleteStatus?: 200 | 204;
  /** A management call for a client that does not exist: 401 (RFC 7592, default) or 404 invalid_client. */
  unknownClientStatus?: 401 | 404;
  /** Values rewritten on POST and PUT before they are stored. */
  normalise?: {
    /** Scopes added to every non-empty scope. */
    scopeDefaults?: string[];
    /** Scope tokens stored sorted in reverse order (any order but the one sent). */
    reorderScope?: boolean;
    /** redirect_uris / post_logout_redirect_uris in URL-serialised form: lower-case host, '/' for an empty path. */
    redirectUris?: boolean;
    /** Grant types added to every registration (to the default authorization_code when none is sent). */
    addGrantTypes?: string[];
  };
  /** client_secret in a PUT body: 'optional' (RFC 7592, default), 'required' or 'forbidden' (else 400). */
  putClientSecret?: 'optional' | 'required' | 'forbidden';
  /** Answers say client_secret_expires_at = client_id_issued_at + this (default 0 = never expires). */
  clientSecretLifetimeSeconds?: number;
}

/** A dialect with its paths and rotation filled in. */
export type ResolvedDialect = Dialect &
  Required<Pick<Dialect, 'basePath' | 'registrationPath' | 'tokenPath' | 'ratRotation'>>;

export interface RegistrationServerOptions {
  /** 'iam' (default): RAT unchanged on use; 'rotating': new RAT on every management call (Keycloak-like). */
  mode?: RatMode;
  /** When set, POST to the registration endpoint requires `Authorization: Bearer <it>`. */
  initialAccessToken?: string;
  /**
   * Serve HTTPS with a certificate from a private CA generated on the fly (its PEM is exposed as
   * caPem), or with given material (to restart a server on the same port with the same CA).
   */
  tls?: boolean | TlsMaterial;
  /** Default 0 = a free loopback port. The server binds 127.0.0.1 only. */
  port?: number;
  /** Default true; false = discovery omits registration_endpoint (some servers do this). */
  advertiseRegistrationEndpoint?: boolean;
  /**
   * Answer registrations without registration_access_token / registration_client_uri (a server
   * without RFC 7592 management). The client is stored and its credentials work.
   */
  omitManagementCredentials?: boolean;
  /** Behaviours of other servers, switched on one by one (see Dialect). */
  dialect?: Dialect;
}

export interface FaultRule {
  /** Match on the HTTP method (case-insensitive); default any. */
  method?: string;
  /** Match on the path without the query string; default any. */
  pathPattern?: RegExp;
  /** Respond with this status (and body/headers) instead of the real handler. */
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Add latency; then pass through to the real handler unless status or drop is set. */
  delayMs?: number;
  /** Destroy the socket without answering. */
  drop?: boolean;
  /** With status: send the head at once, then the body chunkBytes (default 1) per intervalMs. */
  trickle?: { intervalMs: number; chunkBytes?: number };
  /** Without status: the real handler answers, and its JSON object body is replaced by rewrite(body). */
  rewrite?: (body: Record<string, unknown>) => unknown;
  /** How many matching requests the rule applies to (default 1; Infinity allowed). */
  times?: number;
  /** Close the connection with a TCP reset (RST) instead of answering. */
  reset?: boolean;
  /**
   * Let the real handler run (so the request takes effect, e.g. a client is registered), then never
   * deliver its answer: 'drop' destroys the socket, 'hang' keeps it open until the client gives up.
   */
  swallow?: 'drop' | 'hang';
  /** Share (0..1) of matching requests the rule applies to; the others pass and do not consume it. Default 1. */
  probability?: number;
  /** Called once the real handler's answer has been handed to the socket (e.g. to kill the caller). */
  onAnswered?: (request: RecordedRequest) => void;
  /** Recorded on the request as `fault`; default a description of what the rule did. */
  label?: string;
}

/** One served request. Tokens and bodies are never recorded. status is 0 while pending and stays 0 when the socket was dropped. */
export interface RecordedRequest {
  method: string;
  path: string;
  status: number;
  at: number;
  /** When the answer was handed to the socket; unset while pending or when none was delivered. */
  answeredAt?: number;
  /** The fault rule that applied (its label, or e.g. 'status 503', 'drop', 'swallow-drop'). */
  fault?: string;
  /** Registration POSTs: the client_id the server issued (also when the answer was swallowed). */
  clientId?: string;
  /** Registration POSTs: client_name from the answer, or from the request when a fault answered. */
  clientName?: string;
}

/** A client as the server stores it (metadata includes client_secret). */
export interface StoredClient {
  clientId: string;
  metadata: Record<string, unknown>;
}

export interface RegistrationServer {
  /** e.g. http://127.0.0.1:PORT (or https://), plus dialect.basePath. */
  issuer: string;
  /** issuer + '/iam/api/client-registration' (or dialect.registrationPath). */
  registrationEndpoint: string;
  tokenEndpoint: string;
  /** PEM of the private CA when tls is on. */
  caPem?: string;
  /** The CA, certificate and key served when tls is on (pass it as `tls` to keep the CA). */
  tlsMaterial?: TlsMaterial;
  mode: RatMode;
  /** The dialect with its defaults filled in. */
  dialect: ResolvedDialect;
  /** Every HTTP request served, in arrival order. */
  requests: RecordedRequest[];
  faults: { add(rule: FaultRule): void; clear(): void };
  store: {
    list(): Promise<StoredClient[]>;
    get(clientId: string): Promise<StoredClient | undefined>;
    /** Out-of-band change (drift tests): shallow merge; a key set to undefined is removed. Throws for an unknown client. */
    update(clientId: string, patch: Record<string, unknown>): Promise<void>;
    /** Out-of-band deletion; also removes the client's RATs. No-op for an unknown client. */
    delete(clientId: string): Promise<void>;
    /** Removes the client's RATs while the client stays (management calls then answer 401). */
    revokeRegistrationAccessToken(clientId: string): Promise<void>;
    /** A new RAT for the client (what an IAM admin hands out after a token was lost). */
    issueRegistrationAccessToken(clientId: string): Promise<string>;
  };
  close(): Promise<void>;
}
