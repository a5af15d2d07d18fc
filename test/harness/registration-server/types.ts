// Public types of the test registration server. Kept apart from the implementation so tests and
// scripts can import them without pulling in node-oidc-provider.
import type { TlsMaterial } from './tls.js';

/** 'iam': the RAT stays the same on use (INDIGO IAM default); 'rotating': every GET/PUT answers with a new RAT (Keycloak-like). */
export type RatMode = 'iam' | 'rotating';

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
  /** e.g. http://127.0.0.1:PORT (or https://). */
  issuer: string;
  /** issuer + '/iam/api/client-registration'. */
  registrationEndpoint: string;
  tokenEndpoint: string;
  /** PEM of the private CA when tls is on. */
  caPem?: string;
  /** The CA, certificate and key served when tls is on (pass it as `tls` to keep the CA). */
  tlsMaterial?: TlsMaterial;
  mode: RatMode;
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
