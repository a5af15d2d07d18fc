// The HTTP layer of the registration client: one attempt = one undici request under the
// per-provider semaphore, with a timeout; p-retry repeats attempts only where repeating is safe
// (see policy.ts) and waits at least as long as Retry-After asks.
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import type { Dispatcher } from 'undici';
import { assertNotFenced, type Fence } from '../kube/fence.js';
import { ProviderUnavailableError, UnexpectedResponseError } from './errors.js';
import {
  isRetryableNetworkCode,
  isRetryableStatus,
  isTlsVerificationCode,
  MAX_RETRY_AFTER_MS,
  networkErrorCode,
  parseRetryAfter,
  type RetryClass,
} from './policy.js';
import { Semaphore } from './semaphore.js';
import type { RequestObserver } from './types.js';
import { request } from './undici.js';

/** Registration answers are a few KiB; anything far larger is not one and is not buffered. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface TransportOptions {
  dispatcher: Dispatcher;
  maxConcurrentRequests: number;
  retries: number;
  /** Retries of a 'create' request (a registration POST); see RegistrationClientOptions. */
  createRetries?: number;
  requestTimeoutMs: number;
  /** First backoff delay; doubles per retry and is randomised (×1–2). */
  retryMinTimeoutMs: number;
  observe?: RequestObserver | undefined;
  /**
   * Leadership: no attempt is sent once `fence.signal` aborts, and backoff waits end. An attempt
   * already sent is not cut off: the provider carries it out whether or not we hang up, so its
   * answer (a new client, a rotated token) is worth more than the early return.
   */
  fence?: Fence | undefined;
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: URL;
  retryClass: RetryClass;
  /** Sent as `Authorization: Bearer …`. */
  bearer?: string | undefined;
  /** Sent as `Authorization: Basic …` (RFC 6749 §2.3.1 encoding). */
  basic?: { username: string; password: string } | undefined;
  json?: unknown;
  form?: Record<string, string>;
  /** Cancels the call (attempts and backoff); the call then rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /**
   * Ignore the fence: only for undoing a registration that was never stored (nobody else can know
   * that client, so deleting it is safe whoever leads).
   */
  unfenced?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined for an empty or non-JSON body. */
  body: unknown;
  /** True when the body was not empty but did not parse as JSON. */
  unparsable: boolean;
}

/** "METHOD host/path": names a call in messages without query strings or credentials. */
export function describeCall(method: string, url: URL): string {
  return `${method} ${url.host}${url.pathname}`;
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before they are joined and base64'd. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

export class Transport {
  readonly #opts: TransportOptions;
  readonly #semaphore: Semaphore;

  constructor(opts: TransportOptions) {
    this.#opts = opts;
    this.#semaphore = new Semaphore(opts.maxConcurrentRequests);
  }

  /**
   * Sends the request, retrying where policy.ts allows. Resolves with any answer that is not 5xx or
   * 429; those (after retries) and network failures reject with ProviderUnavailableError.
   */
  send(req: HttpRequest): Promise<HttpResponse> {
    const fence = req.unfenced ? undefined : this.#opts.fence;
    // Not handed to p-retry: it would drop the answer of an attempt in flight when the fence closes.
    // Each attempt checks the fence before it is sent instead; only our Retry-After wait ends early.
    const stop = anySignal([req.signal, fence?.signal]);
    return pRetry(() => this.#attempt(req, fence), {
      retries:
        req.retryClass === 'create' ? (this.#opts.createRetries ?? this.#opts.retries) : this.#opts.retries,
      minTimeout: this.#opts.retryMinTimeoutMs,
      factor: 2,
      randomize: true,
      maxTimeout: MAX_RETRY_AFTER_MS,
      ...(req.signal ? { signal: req.signal } : {}),
      onFailedAttempt: async ({ error, retriesLeft, retryDelay }) => {
        // p-retry's own backoff is the floor; Retry-After can only make the wait longer.
        const wanted = error instanceof ProviderUnavailableError ? error.retryAfterMs : undefined;
        if (retriesLeft > 0 && wanted !== undefined && wanted > retryDelay) {
          await sleep(wanted - retryDelay, undefined, stop ? { signal: stop } : {});
        }
      },
    });
  }

  async #attempt(req: HttpRequest, fence: Fence | undefined): Promise<HttpResponse> {
    const what = describeCall(req.method, req.url);
    const release = await this.#semaphore.acquire();
    // Read after the semaphore wait, right before sending: that wait can outlast the term.
    try {
      if (fence) assertNotFenced(fence.signal);
    } catch (error) {
      release();
      throw new AbortError(toError(error));
    }
    const timeout = new AbortController();
    const timer = pauseTolerantTimer(this.#opts.requestTimeoutMs, () => timeout.abort());
    const started = performance.now();
    let response: HttpResponse;
    try {
      const signal = req.signal ? AbortSignal.any([timeout.signal, req.signal]) : timeout.signal;
      response = await this.#exchange(req, signal);
    } catch (error) {
      this.#observe(req, 'error', started);
      if (req.signal?.aborted) throw new AbortError(toError(req.signal.reason));
      if (error instanceof UnexpectedResponseError) throw new AbortError(error);
      throw this.#networkFailure(req, what, error, timeout.signal.aborted);
    } finally {
      timer.clear();
      release();
    }
    this.#observe(req, response.status, started);

    if (response.status === 429 || response.status >= 500) {
      const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
      const error = new ProviderUnavailableError(`${what}: provider unavailable (HTTP ${response.status})`, {
        status: response.status,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
      // A Retry-After beyond the cap is left to the caller's requeue instead of blocking a worker.
      const retryable =
        isRetryableStatus(req.retryClass, response.status) && (retryAfterMs ?? 0) <= MAX_RETRY_AFTER_MS;
      throw retryable ? error : new AbortError(error);
    }
    return response;
  }

  async #exchange(req: HttpRequest, signal: AbortSignal): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (req.bearer !== undefined) headers.authorization = `Bearer ${req.bearer}`;
    if (req.basic) {
      const pair = `${formEncode(req.basic.username)}:${formEncode(req.basic.password)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    }
    if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(req.form).toString();
    }

    const res = await request(req.url, {
      dispatcher: this.#opts.dispatcher,
      method: req.method,
      headers,
      body,
      signal,
    });
    const text = await readCapped(res.body, describeCall(req.method, req.url), res.statusCode);
    let parsed: unknown;
    let unparsable = false;
    if (text.trim() !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        unparsable = true;
      }
    }
    return { status: res.statusCode, headers: res.headers, body: parsed, unparsable };
  }

  #networkFailure(req: HttpRequest, what: string, error: unknown, timedOut: boolean): Error {
    const code = timedOut ? 'TIMEOUT' : networkErrorCode(error);
    let reason: string;
    if (timedOut) reason = `no answer within ${this.#opts.requestTimeoutMs} ms`;
    else if (isTlsVerificationCode(code))
      reason = `TLS certificate verification failed (${code}); check the CA`;
    else reason = `network error (${code ?? (error instanceof Error ? error.name : 'unknown')})`;
    const retryable = isRetryableNetworkCode(req.retryClass, code);
    // A create POST that failed after it was sent may have registered a client all the same.
    if (req.retryClass === 'create' && code !== 'ECONNREFUSED' && !isTlsVerificationCode(code)) {
      reason += '; not retried because the provider may have registered the client';
    }
    const failure = new ProviderUnavailableError(`${what}: ${reason}`, code !== undefined ? { code } : {});
    return retryable ? failure : new AbortError(failure);
  }

  #observe(req: HttpRequest, status: number | 'error', started: number): void {
    const observe = this.#opts.observe;
    if (!observe) return;
    try {
      observe({ method: req.method, status, durationMs: performance.now() - started });
    } catch {
      // A broken metrics hook must not turn a successful call into a failure.
    }
  }
}

/** A timer this late means the event loop did not run (process paused, long GC, starved CPU). */
const STALL_MS = 250;
/** After such a stall, how long the answers that piled up meanwhile get to be read. */
const STALL_GRACE_MS = 1_000;

/**
 * A request timeout that tolerates a paused process. After a pause Node runs overdue timers before
 * it reads the sockets, so a plain timeout would abort a request whose answer is already waiting
 * there; for a registration POST that answer is the only record of a client the provider just
 * created. So the timeout takes effect only after the sockets were read once more (setImmediate
 * runs after the next poll), and a timer that fired far too late waits a moment longer.
 */
function pauseTolerantTimer(ms: number, fire: () => void): { clear(): void } {
  const due = performance.now() + ms;
  let cleared = false;
  const fireUnlessCleared = () => {
    if (!cleared) fire();
  };
  let timer = setTimeout(() => {
    if (performance.now() - due > STALL_MS) timer = setTimeout(fireUnlessCleared, STALL_GRACE_MS);
    else setImmediate(fireUnlessCleared);
  }, ms);
  return {
    clear: () => {
      cleared = true;
      clearTimeout(timer);
    },
  };
}

function isSignal(value: AbortSignal | undefined): value is AbortSignal {
  return value !== undefined;
}

function anySignal(signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter(isSignal);
  if (present.length <= 1) return present[0];
  return AbortSignal.any(present);
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

async function readCapped(
  body: AsyncIterable<Buffer> & { destroy(): unknown },
  what: string,
  status: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      body.destroy();
      throw new UnexpectedResponseError(`${what}: response body larger than ${MAX_BODY_BYTES} bytes`, status);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
