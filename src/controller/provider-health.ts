// One health check of an OidcProvider / ClusterOidcProvider: its Secrets, OpenID Connect discovery
// (through the private CA when it names one) and its registration endpoint. The verdict becomes the
// provider's status (provider-health-controller.ts), so a provider no client uses yet still says
// whether it works.
//
// The registration endpoint probe never registers anything: it POSTs a body that is not JSON ("{")
// without credentials. An RFC 7591 endpoint answers 400 (unparsable request) or 401/403 (initial
// access token required); nothing can be created from a request that does not parse. A 404, a 5xx, a
// redirect or no answer at all means clients cannot register there. (A GET is no probe: DCR servers
// route only POST to that path and answer GET with 404, like a missing endpoint.)
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { createProviderAgent } from '../registration/agent.js';
import { discoverEndpoints } from '../registration/discovery.js';
import { ProviderUnavailableError, RegistrationError } from '../registration/errors.js';
import { ManagementOrigins, OriginConfigError } from '../registration/origins.js';
import { isTlsVerificationCode, networkErrorCode } from '../registration/policy.js';
import { describeCall } from '../registration/transport.js';
import type { ProviderEndpoints } from '../registration/types.js';
import { request } from '../registration/undici.js';
import { type AnyProvider, ProviderNotReadyError, readProviderTrust } from './provider-trust.js';

/** Reasons on a provider's Ready condition. Stable API: documented in the README. */
export const ProviderReason = {
  /** Ready=True: discovery (when used), TLS and the registration endpoint answered. */
  Available: 'Available',
  /** Ready=Unknown while the first check of a new generation runs. */
  Checking: 'Checking',
  /** The spec or a Secret it references is wrong: a person must fix it (Stalled). */
  ProviderInvalid: 'ProviderInvalid',
  /** The server's certificate does not verify against the CA (Stalled). */
  TLSError: 'TLSError',
  /** The discovery document could not be fetched or used (transient: Reconciling). */
  DiscoveryFailed: 'DiscoveryFailed',
  /** The registration endpoint is missing, failing or unreachable (transient: Reconciling). */
  RegistrationEndpointUnavailable: 'RegistrationEndpointUnavailable',
} as const;
export type ProviderReasonName = (typeof ProviderReason)[keyof typeof ProviderReason];

export type HealthVerdict =
  | { ready: true; reason: 'Available'; message: string; endpoints: ProviderEndpoints }
  | {
      ready: false;
      reason: Exclude<ProviderReasonName, 'Available' | 'Checking'>;
      message: string;
      /** True when only a person can fix it (kstatus Stalled); else the check retries (Reconciling). */
      stalled: boolean;
      endpoints?: ProviderEndpoints;
    };

export interface HealthCheckOptions {
  rest: KubeRest;
  /** Per request (default 10 s). */
  requestTimeoutMs?: number;
  /** Pause before the one retry of a failed probe (default 1 s). */
  retryDelayMs?: number;
  signal?: AbortSignal;
}

/** The content type and body of the probe: a registration request no server can parse. */
export const PROBE_BODY = '{';

export async function checkProviderHealth(
  provider: AnyProvider,
  opts: HealthCheckOptions,
): Promise<HealthVerdict> {
  const spec = provider.spec;
  const invalid = (message: string): HealthVerdict => ({
    ready: false,
    reason: 'ProviderInvalid',
    message,
    stalled: true,
  });
  for (const [field, value] of [
    ['spec.issuerUrl', spec.issuerUrl],
    ['spec.registrationEndpoint', spec.registrationEndpoint],
  ] as const) {
    if (value && !isHttpUrl(value)) return invalid(`${field} is not an http(s) URL`);
  }
  try {
    new ManagementOrigins(spec.registrationEndpoint || spec.issuerUrl, spec.managementOrigins ?? []);
  } catch (error) {
    if (error instanceof OriginConfigError) return invalid(`spec.managementOrigins: ${error.message}`);
    throw error;
  }
  let caPem: string | undefined;
  let caSource: string | undefined;
  try {
    // The initial access token is read too, so a missing one shows here; it is never sent.
    ({ caPem, caSource } = await readProviderTrust(opts.rest, provider));
  } catch (error) {
    if (error instanceof ProviderNotReadyError) return invalid(error.message);
    throw error;
  }
  if (caPem !== undefined) {
    try {
      new X509Certificate(caPem);
    } catch {
      return invalid(`Secret ${caSource} is not a PEM certificate`);
    }
  }
  const trustedBy = caSource ? `the CA in Secret ${caSource}` : 'the system trust store';
  const agent = createProviderAgent(caPem);
  try {
    let endpoints: ProviderEndpoints;
    try {
      endpoints = await discoverEndpoints({
        issuerUrl: spec.issuerUrl,
        registrationEndpoint: spec.registrationEndpoint,
        dispatcher: agent,
        retries: 1,
        requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
        retryMinTimeoutMs: opts.retryDelayMs ?? 1_000,
        signal: opts.signal,
      });
    } catch (error) {
      if (error instanceof ProviderUnavailableError && isTlsVerificationCode(error.code)) {
        return {
          ready: false,
          reason: 'TLSError',
          stalled: true,
          message: `${hostOf(spec.issuerUrl)}: certificate not trusted by ${trustedBy} (${error.code})`,
        };
      }
      if (error instanceof RegistrationError) {
        return { ready: false, reason: 'DiscoveryFailed', stalled: false, message: error.message };
      }
      throw error;
    }
    const probe = await probeRegistrationEndpoint(endpoints.registrationEndpoint, agent, opts);
    if (probe.ok) {
      return {
        ready: true,
        reason: 'Available',
        endpoints,
        message: `registration endpoint ${endpoints.registrationEndpoint} (${endpoints.source}) answers`,
      };
    }
    if (probe.tls) {
      return {
        ready: false,
        reason: 'TLSError',
        stalled: true,
        endpoints,
        message: `${hostOf(endpoints.registrationEndpoint)}: certificate not trusted by ${trustedBy} (${probe.tls})`,
      };
    }
    return {
      ready: false,
      reason: 'RegistrationEndpointUnavailable',
      stalled: false,
      endpoints,
      message: probe.message,
    };
  } finally {
    await agent.close().catch(() => undefined);
  }
}

type ProbeResult = { ok: true } | { ok: false; tls?: string; message: string };

/**
 * One unauthenticated POST of an unparsable body, retried once after a failure that may be
 * transient (no answer, 429, 5xx). Messages are stable for the same failure, so repeated checks
 * write nothing.
 */
export async function probeRegistrationEndpoint(
  endpoint: string,
  agent: ReturnType<typeof createProviderAgent>,
  opts: Pick<HealthCheckOptions, 'requestTimeoutMs' | 'retryDelayMs' | 'signal'>,
): Promise<ProbeResult> {
  const url = new URL(endpoint);
  const what = describeCall('POST', url);
  let result: ProbeResult & { transient?: boolean } = { ok: false, message: `${what}: not tried` };
  for (let attempt = 0; attempt < 2; attempt++) {
    if (attempt > 0) await sleep(opts.retryDelayMs ?? 1_000, undefined, { signal: opts.signal });
    result = await probeOnce(url, what, agent, opts);
    if (result.ok || !result.transient) break;
  }
  const { transient: _, ...out } = result;
  return out;
}

async function probeOnce(
  url: URL,
  what: string,
  agent: ReturnType<typeof createProviderAgent>,
  opts: Pick<HealthCheckOptions, 'requestTimeoutMs' | 'signal'>,
): Promise<ProbeResult & { transient?: boolean }> {
  const timeoutMs = opts.requestTimeoutMs ?? 10_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  let status: number;
  try {
    const res = await request(url, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: PROBE_BODY,
      signal: opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout,
    });
    status = res.statusCode;
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
  } catch (error) {
    if (opts.signal?.aborted) throw error;
    if (timeout.aborted)
      return { ok: false, transient: true, message: `${what}: no answer within ${timeoutMs} ms` };
    const code = networkErrorCode(error);
    if (isTlsVerificationCode(code)) return { ok: false, tls: code, message: `${what}: TLS (${code})` };
    return {
      ok: false,
      transient: true,
      message: `${what}: no answer (${code ?? errorMessage(error)})`,
    };
  }
  if (status === 404 || status === 410)
    return { ok: false, message: `${what} answered ${status}: no registration endpoint at this URL` };
  if (status === 429 || status >= 500)
    return { ok: false, transient: true, message: `${what} answered ${status}` };
  if (status < 400) {
    return {
      ok: false,
      message: `${what} answered ${status} to an unparsable registration request; an RFC 7591 endpoint answers 400 or 401`,
    };
  }
  return { ok: true };
}

function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
