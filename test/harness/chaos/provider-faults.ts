// The registration server's fault repertoire for chaos runs, as FaultRules.
import { REGISTRATION_PATH } from '../registration-server/provider-config.js';
import type { FaultRule } from '../registration-server/types.js';
import type { Rng } from './random.js';

export const PROVIDER_FAULTS = [
  'http-5xx',
  'http-429',
  'reset',
  'latency',
  'timeout',
  'html-404',
  'post-created-then-lost',
] as const;
export type ProviderFault = (typeof PROVIDER_FAULTS)[number];

const ESCAPED = REGISTRATION_PATH.replace(/[/.]/g, '\\$&');
const REGISTRATION = new RegExp(`^${ESCAPED}$`);
const MANAGEMENT = new RegExp(`^${ESCAPED}/[^/]+$`);
const ANY_DCR = new RegExp(`^${ESCAPED}(/[^/]+)?$`);

const HTML_404 =
  '<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p><hr><address>nginx</address></body></html>';

/**
 * One rule for `times` requests. `providerTimeoutMs` is the operator's per-request timeout: a
 * 'timeout' delays past it (nothing is created: the server drops a request whose caller left).
 */
export function faultRule(
  kind: ProviderFault,
  times: number,
  rng: Rng,
  providerTimeoutMs: number,
): FaultRule {
  switch (kind) {
    case 'http-5xx': {
      const status = rng.pick([500, 502, 503, 504]);
      return {
        pathPattern: ANY_DCR,
        status,
        body: { error: 'server_error', error_description: 'chaos' },
        times,
        label: `status ${status}`,
      };
    }
    case 'http-429':
      return {
        pathPattern: ANY_DCR,
        status: 429,
        headers: { 'retry-after': String(rng.int(1, 3)) },
        body: { error: 'too_many_requests' },
        times,
        label: 'status 429',
      };
    case 'reset':
      return { pathPattern: ANY_DCR, reset: true, times, label: 'reset' };
    case 'latency':
      return {
        pathPattern: ANY_DCR,
        delayMs: rng.int(200, Math.min(2_000, providerTimeoutMs / 2)),
        times,
        label: 'latency',
      };
    case 'timeout':
      return { pathPattern: ANY_DCR, delayMs: providerTimeoutMs + 2_000, times, label: 'timeout' };
    case 'html-404':
      // What a misconfigured ingress answers: not the provider saying "this client is gone".
      return {
        method: rng.pick(['GET', 'PUT', 'DELETE']),
        pathPattern: MANAGEMENT,
        status: 404,
        body: HTML_404,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        times,
        label: 'html-404',
      };
    case 'post-created-then-lost':
      return {
        method: 'POST',
        pathPattern: REGISTRATION,
        swallow: rng.pick(['drop', 'hang'] as const),
        times,
      };
  }
}

/** A registration POST answered with 201, after which `onAnswered` runs (e.g. to SIGKILL the caller). */
export function afterPostRule(onAnswered: () => void): FaultRule {
  return { method: 'POST', pathPattern: REGISTRATION, onAnswered, label: 'sigkill-after-answer' };
}

export const isRegistrationPost = (method: string, path: string): boolean =>
  method === 'POST' && REGISTRATION.test(path);
export const managedClientId = (path: string): string | undefined =>
  MANAGEMENT.test(path) ? path.slice(REGISTRATION_PATH.length + 1) : undefined;
