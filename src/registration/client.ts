// RFC 7591 registration and RFC 7592 management against one provider. Owns one keep-alive Agent
// and one semaphore; turns every answer into a RegisteredClient or a typed RegistrationError.
import type { Dispatcher } from 'undici';
import type { Fence } from '../kube/fence.js';
import { createProviderAgent } from './agent.js';
import {
  ClientMismatchError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  UnexpectedResponseError,
} from './errors.js';
import { parseRegistrationResponse } from './metadata.js';
import { ManagementOrigins } from './origins.js';
import { type CallKind, errorForResponse, probeOutcome } from './policy.js';
import { describeCall, type HttpRequest, type HttpResponse, Transport } from './transport.js';
import type {
  ClientMetadata,
  CredentialProbeResult,
  ProviderEndpoints,
  RegisteredClient,
  RequestObserver,
} from './types.js';

export interface RegistrationClientOptions {
  endpoints: ProviderEndpoints;
  /**
   * Origins (scheme://host[:port]) besides the registration endpoint's own that may receive
   * management calls. Throws OriginConfigError when one is malformed, or http next to https.
   */
  managementOrigins?: readonly string[];
  /** When set, trust ONLY these CAs. */
  caPem?: string;
  /** Sent as Bearer on registration (POST). */
  initialAccessToken?: string;
  /** Default 4: requests in flight to this provider at once; the rest wait in FIFO order. */
  maxConcurrentRequests?: number;
  /** Default 3: retries of failures that are safe to retry (see policy.ts). */
  retries?: number;
  /**
   * Default `retries`: in-call retries of a registration POST (only where policy.ts says nothing
   * was processed). The operator passes 0: its work queue retries registrations with per-client
   * backoff and Retry-After, so an outage costs one POST per backoff period, not several.
   */
  registrationRetries?: number;
  /** Default 10000: per attempt, from sending to the end of the body. */
  requestTimeoutMs?: number;
  /** Default 200: first backoff delay (doubles per retry, randomised ×1–2). */
  retryMinTimeoutMs?: number;
  /** Metrics hook, called once per HTTP attempt. */
  observe?: RequestObserver;
  /** Leadership fence: no request is sent after it closes (requests already sent are let finish). */
  fence?: Fence;
}

/** Keys a server issues itself; node-oidc-provider rejects a PUT that carries any of them. */
const READ_ONLY_KEYS = [
  'registration_access_token',
  'registration_client_uri',
  'client_secret_expires_at',
  'client_id_issued_at',
];

/** Auth methods whose credentials a client_credentials request can test with what we hold. */
const PROBEABLE_AUTH_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

export class RegistrationClient {
  readonly #endpoints: ProviderEndpoints;
  readonly #initialAccessToken: string | undefined;
  readonly #agent: Dispatcher;
  readonly #transport: Transport;
  readonly #origins: ManagementOrigins;
  /** Whether this provider wants client_secret in a PUT body (learnt from its 400 answers). */
  #putCarriesSecret = false;

  constructor(opts: RegistrationClientOptions) {
    this.#endpoints = opts.endpoints;
    this.#origins = new ManagementOrigins(opts.endpoints.registrationEndpoint, opts.managementOrigins);
    this.#initialAccessToken = opts.initialAccessToken;
    this.#agent = createProviderAgent(opts.caPem);
    this.#transport = new Transport({
      dispatcher: this.#agent,
      maxConcurrentRequests: opts.maxConcurrentRequests ?? 4,
      retries: opts.retries ?? 3,
      createRetries: opts.registrationRetries ?? opts.retries ?? 3,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      retryMinTimeoutMs: opts.retryMinTimeoutMs ?? 200,
      observe: opts.observe,
      fence: opts.fence,
    });
  }

  get endpoints(): ProviderEndpoints {
    return this.#endpoints;
  }

  /** The origins management calls may go to. */
  get managementOrigins(): string[] {
    return this.#origins.origins;
  }

  /**
   * Throws ForeignEndpointError / ClientMismatchError when a stored registration_client_uri must not
   * be used for `clientId`; every management call below runs the same check before sending.
   */
  assertManageable(registrationClientUri: string, clientId: string): void {
    this.#origins.managementUrl(registrationClientUri, clientId);
  }

  /** RFC 7591 §3: POST the metadata; 201 (or 200) with the issued credentials. */
  async register(metadata: ClientMetadata): Promise<RegisteredClient> {
    const url = httpUrl(this.#endpoints.registrationEndpoint, 'registration endpoint');
    const res = await this.#transport.send({
      method: 'POST',
      url,
      retryClass: 'create',
      bearer: this.#initialAccessToken,
      json: metadata,
    });
    return this.#expectClient('register', res, url, 'POST', [200, 201]);
  }

  /**
   * RFC 7592 §2.1: read the registration of `clientId`. Rotating servers return a new RAT here.
   * An answer about another client is refused (ClientMismatchError), its content unused.
   */
  async read(registrationClientUri: string, rat: string, clientId: string): Promise<RegisteredClient> {
    const url = this.#origins.managementUrl(registrationClientUri, clientId);
    const res = await this.#transport.send({ method: 'GET', url, retryClass: 'idempotent', bearer: rat });
    return this.#expectClient('manage', res, url, 'GET', [200], clientId);
  }

  /**
   * RFC 7592 §2.2: replace the registration with `metadata` (see metadataForUpdate for a body a
   * replacing server accepts). Server-issued keys are removed and client_id is set here.
   *
   * RFC 7592 lets the body carry the current client_secret or not; some servers insist on one way.
   * The secret is left out until this provider answers 400 naming client_secret, then the other way
   * is tried once and remembered for this provider (`clientSecret` is the current secret, when known).
   */
  async update(
    registrationClientUri: string,
    rat: string,
    clientId: string,
    metadata: ClientMetadata,
    clientSecret?: string,
  ): Promise<RegisteredClient> {
    const url = this.#origins.managementUrl(registrationClientUri, clientId);
    const first = this.#putCarriesSecret && clientSecret !== undefined;
    try {
      return await this.#put(url, rat, clientId, metadata, first ? clientSecret : undefined);
    } catch (error) {
      const canFlip = first || clientSecret !== undefined;
      if (!canFlip || !(error instanceof InvalidClientMetadataError) || !mentionsClientSecret(error))
        throw error;
      const updated = await this.#put(url, rat, clientId, metadata, first ? undefined : clientSecret);
      this.#putCarriesSecret = !first;
      return updated;
    }
  }

  async #put(
    url: URL,
    rat: string,
    clientId: string,
    metadata: ClientMetadata,
    clientSecret: string | undefined,
  ): Promise<RegisteredClient> {
    const body: ClientMetadata = { ...metadata, client_id: clientId };
    for (const key of READ_ONLY_KEYS) delete body[key];
    delete body.client_secret;
    if (clientSecret !== undefined) body.client_secret = clientSecret;
    const res = await this.#transport.send({
      method: 'PUT',
      url,
      retryClass: 'idempotent',
      bearer: rat,
      json: body,
    });
    return this.#expectClient('manage', res, url, 'PUT', [200], clientId);
  }

  /**
   * RFC 7592 §2.3: deregister `clientId`. 204 (or 200). `signal` bounds the call, retries included.
   * `unfenced` is for undoing a registration whose result was never stored: no one else can know
   * that client, so it may be deleted whoever leads.
   */
  async delete(
    registrationClientUri: string,
    rat: string,
    clientId: string,
    opts: { signal?: AbortSignal; unfenced?: boolean } = {},
  ): Promise<void> {
    const url = this.#origins.managementUrl(registrationClientUri, clientId);
    const res = await this.#transport.send({
      method: 'DELETE',
      url,
      retryClass: 'idempotent',
      bearer: rat,
      signal: opts.signal,
      unfenced: opts.unfenced === true,
    });
    if (res.status === 204 || res.status === 200) return;
    throw unsuccessful('manage', res, describeCall('DELETE', url));
  }

  /**
   * Do these credentials still authenticate at the token endpoint? Disambiguates a 401 on a
   * management call (RFC 7592): 'invalid' = the client is gone or its secret changed; 'valid' = the
   * client exists and only the RAT was rejected; 'unknown' = cannot tell (public or JWT-auth client,
   * no token endpoint, provider unreachable).
   */
  async probeCredentials(
    clientId: string,
    clientSecret: string | undefined,
    authMethod: string | undefined,
  ): Promise<CredentialProbeResult> {
    const method = authMethod ?? 'client_secret_basic';
    const tokenEndpoint = this.#endpoints.tokenEndpoint;
    if (!clientSecret || !tokenEndpoint || !PROBEABLE_AUTH_METHODS.has(method)) return 'unknown';
    let url: URL;
    try {
      url = httpUrl(tokenEndpoint, 'token endpoint');
    } catch {
      return 'unknown';
    }
    const req: HttpRequest = {
      method: 'POST',
      url,
      // A client_credentials request creates nothing that outlives the access token.
      retryClass: 'idempotent',
      form: { grant_type: 'client_credentials' },
    };
    if (method === 'client_secret_post') {
      req.form = { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret };
    } else {
      req.basic = { username: clientId, password: clientSecret };
    }
    try {
      const res = await this.#transport.send(req);
      // The body may hold an access token: only the status and the OAuth error code are read.
      return probeOutcome(res.status, res.body);
    } catch (error) {
      if (error instanceof ProviderUnavailableError) return 'unknown';
      throw error;
    }
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  /**
   * The registration in a successful answer. `expectedClientId` (management calls) must be the
   * client the answer is about. A registration_client_uri the operator may not call (foreign origin,
   * or naming another client) is moved to untrustedRegistrationClientUri and never used.
   */
  #expectClient(
    kind: CallKind,
    res: HttpResponse,
    url: URL,
    method: string,
    ok: number[],
    expectedClientId?: string,
  ): RegisteredClient {
    const what = describeCall(method, url);
    if (!ok.includes(res.status)) throw unsuccessful(kind, res, what);
    if (res.unparsable)
      throw new UnexpectedResponseError(`${what}: HTTP ${res.status} body is not JSON`, res.status);
    const type = headerValue(res.headers['content-type']);
    if (res.body !== undefined && !isJsonMediaType(type)) {
      throw new UnexpectedResponseError(
        `${what}: HTTP ${res.status} answer is ${type ? `"${mediaType(type)}"` : 'untyped'}, not application/json`,
        res.status,
      );
    }
    let client: RegisteredClient;
    try {
      client = parseRegistrationResponse(res.body);
    } catch (error) {
      if (error instanceof UnexpectedResponseError) {
        error.message = `${what}: ${error.message}`;
        error.status = res.status;
      }
      throw error;
    }
    if (expectedClientId !== undefined && client.clientId !== expectedClientId) {
      throw new ClientMismatchError(
        `${what}: the answer is about client ${client.clientId}, not ${expectedClientId}; it was not used`,
        res.status,
      );
    }
    const uri = client.registrationClientUri;
    if (uri !== undefined) {
      try {
        this.#origins.managementUrl(uri, client.clientId);
      } catch {
        delete client.registrationClientUri;
        client.untrustedRegistrationClientUri = uri;
      }
    }
    return client;
  }
}

/** A 400 about client_secret: the provider wants it in a PUT body, or wants it left out. */
function mentionsClientSecret(error: InvalidClientMetadataError): boolean {
  return /client_secret|client secret/i.test(`${error.error} ${error.errorDescription ?? ''}`);
}

/** The typed error of an unsuccessful answer; a redirect is never followed and says so. */
function unsuccessful(kind: CallKind, res: HttpResponse, what: string) {
  if (res.status >= 300 && res.status < 400) {
    const target = redirectOrigin(headerValue(res.headers.location));
    return new UnexpectedResponseError(
      `${what}: unexpected answer (HTTP ${res.status} redirect${target ? ` to ${target}` : ''}); redirects are not followed`,
      res.status,
    );
  }
  return errorForResponse(kind, res.status, res.body, what, headerValue(res.headers['content-type']));
}

function redirectOrigin(location: string | undefined): string | undefined {
  if (!location) return undefined;
  try {
    return new URL(location).origin;
  } catch {
    return undefined;
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function mediaType(contentType: string): string {
  return (contentType.split(';', 1)[0] ?? '').trim().toLowerCase().slice(0, 100);
}

/** application/json or any structured-syntax +json type (RFC 6839). */
function isJsonMediaType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = mediaType(contentType);
  return type === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

function httpUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UnexpectedResponseError(`${what} is not a valid URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UnexpectedResponseError(`${what} must be an http(s) URL, got ${url.protocol}`);
  }
  return url;
}
