// Where to register: an explicit endpoint, the one OpenID Connect discovery advertises, or INDIGO
// IAM's fixed path when discovery answers without one (IAM does not always advertise it).
import type { Dispatcher } from 'undici';
import { createProviderAgent } from './agent.js';
import { RegistrationError, UnexpectedResponseError } from './errors.js';
import { errorForResponse } from './policy.js';
import { describeCall, Transport } from './transport.js';
import type { ProviderEndpoints } from './types.js';

/** INDIGO IAM's RFC 7591 endpoint, relative to its issuer. */
export const IAM_REGISTRATION_PATH = '/iam/api/client-registration';

export interface DiscoverOptions {
  issuerUrl: string;
  registrationEndpoint?: string;
  /** Reuse a provider's Agent; otherwise a short-lived one is made (trusting `caPem` when given). */
  dispatcher?: Dispatcher;
  caPem?: string;
  signal?: AbortSignal;
  /** Default 3 (explicit endpoint: 0, discovery is then only a source of the token endpoint). */
  retries?: number;
  /** Default 10000. */
  requestTimeoutMs?: number;
  /** Default 200. */
  retryMinTimeoutMs?: number;
}

/**
 * Resolves the provider's endpoints. Discovery that cannot be reached rejects with
 * ProviderUnavailableError; the IAM fallback is used only when discovery answered 200 without a
 * registration_endpoint, so an outage never silently changes the endpoint. With an explicit
 * endpoint, discovery is only consulted for the token endpoint and issuer, and its failure is ignored.
 */
export async function discoverEndpoints(opts: DiscoverOptions): Promise<ProviderEndpoints> {
  const base = opts.issuerUrl.replace(/\/+$/, '');
  const discoveryUrl = parseUrl(`${base}/.well-known/openid-configuration`, 'issuerUrl');
  const explicit = opts.registrationEndpoint?.trim() || undefined;
  if (explicit) parseUrl(explicit, 'registrationEndpoint');

  const agent = opts.dispatcher ?? createProviderAgent(opts.caPem);
  const transport = new Transport({
    dispatcher: agent,
    maxConcurrentRequests: 1,
    retries: opts.retries ?? (explicit ? 0 : 3),
    requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
    retryMinTimeoutMs: opts.retryMinTimeoutMs ?? 200,
  });
  try {
    let document: Record<string, unknown>;
    try {
      document = await fetchDiscovery(transport, discoveryUrl, opts.signal);
    } catch (error) {
      if (!explicit || opts.signal?.aborted || !(error instanceof RegistrationError)) throw error;
      return { issuer: opts.issuerUrl, registrationEndpoint: explicit, source: 'explicit' };
    }
    const issuer = httpString(document.issuer) ?? opts.issuerUrl;
    const tokenEndpoint = httpString(document.token_endpoint);
    const advertised = httpString(document.registration_endpoint);
    const endpoints: ProviderEndpoints = explicit
      ? { issuer, registrationEndpoint: explicit, source: 'explicit' }
      : advertised
        ? { issuer, registrationEndpoint: advertised, source: 'discovery' }
        : { issuer, registrationEndpoint: `${base}${IAM_REGISTRATION_PATH}`, source: 'iam-default' };
    if (tokenEndpoint) endpoints.tokenEndpoint = tokenEndpoint;
    endpoints.discoveryUrl = discoveryUrl.href;
    // Only read by Secret templates: a missing one is an error there, not here.
    const optional = {
      authorizationEndpoint: httpString(document.authorization_endpoint),
      userinfoEndpoint: httpString(document.userinfo_endpoint),
      jwksUri: httpString(document.jwks_uri),
      endSessionEndpoint: httpString(document.end_session_endpoint),
    };
    for (const [k, v] of Object.entries(optional)) if (v) endpoints[k as keyof typeof optional] = v;
    return endpoints;
  } finally {
    if (!opts.dispatcher) await agent.close();
  }
}

async function fetchDiscovery(
  transport: Transport,
  url: URL,
  signal: AbortSignal | undefined,
): Promise<Record<string, unknown>> {
  const res = await transport.send({ method: 'GET', url, retryClass: 'idempotent', signal });
  const what = describeCall('GET', url);
  if (res.status !== 200) throw errorForResponse('discovery', res.status, res.body, what);
  if (typeof res.body !== 'object' || res.body === null || Array.isArray(res.body)) {
    throw new UnexpectedResponseError(`${what}: discovery document is not a JSON object`, res.status);
  }
  return res.body as Record<string, unknown>;
}

function httpString(value: unknown): string | undefined {
  return typeof value === 'string' && /^https?:\/\//i.test(value) ? value : undefined;
}

function parseUrl(value: string, what: string): URL {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  throw new UnexpectedResponseError(`${what} is not an http(s) URL`);
}
