// A thin JSON client for the Kubernetes REST API on node:https with one keep-alive connection pool.
// Custom resources, status subresources, watches and patches with precise content types are simpler
// (and typed errors more uniform) through one small request function than through client-node's
// generated APIs, and the operator then does not load client-node at all (see config.ts).
import type { Agent as HttpAgent, IncomingMessage, RequestOptions } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { type KubeConnection, type KubeTls, loadKubeConnectionSync } from './config.js';
import { http, https as tlsHttp } from './node-http.js';

/** A non-2xx answer from the apiserver, carrying its Status reason (NotFound, Conflict, ...). */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'KubeApiError';
  }
}

export function isKubeStatus(error: unknown, status: number): error is KubeApiError {
  return error instanceof KubeApiError && error.status === status;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type PatchType = 'merge' | 'json' | 'apply';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export type Query = Record<string, string | number | boolean | undefined>;

/** Request observer for metrics and write counting (tests count writes over quiet periods). */
export type KubeRequestObserver = (e: { method: string; path: string; status: number | 'error' }) => void;

/** One line of a watch stream: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (with a Status). */
export type WatchHandler = (type: string, object: unknown) => void;

const DEFAULT_TIMEOUT_MS = 30_000;
/** Idle pooled connections close after this (the burst's many parallel ones are not kept forever). */
const IDLE_SOCKET_MS = 30_000;

export class KubeRest {
  private readonly observers: KubeRequestObserver[] = [];
  readonly connection: KubeConnection;
  private readonly url: URL;
  private agent?: HttpAgent;
  private agentTls?: KubeTls;

  /** A resolved connection (loadKubeConnection), or a client-node KubeConfig (tests build those). */
  constructor(config: KubeConnection | KubeConfig) {
    this.connection = loadKubeConnectionSync(config);
    this.url = new URL(this.connection.server);
  }

  onRequest(observer: KubeRequestObserver): void {
    this.observers.push(observer);
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, signal });
  }

  create<T>(path: string, body: unknown, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('POST', path, { body, query, signal });
  }

  replace<T>(path: string, body: unknown, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('PUT', path, { body, query, signal });
  }

  patch<T>(path: string, type: PatchType, body: unknown, query?: Query): Promise<T> {
    return this.request<T>('PATCH', path, { body, query, contentType: PATCH_CONTENT_TYPE[type] });
  }

  delete<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.request<T>('DELETE', path, { body, query });
  }

  async request<T>(
    method: HttpMethod,
    path: string,
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.send(method, path, opts.query, {
      body,
      contentType: opts.contentType,
      signal: opts.signal ?? AbortSignal.timeout(DEFAULT_TIMEOUT_MS),
    });
    const text = await readText(res);
    const parsed: unknown = text ? safeJson(text) : undefined;
    if (!ok(res)) throw apiError(res, parsed, text, method, path);
    return parsed as T;
  }

  /**
   * A watch request: calls `onEvent` for every event line until the server ends the stream
   * (resolves), `signal` aborts (rejects with its reason) or the connection fails (rejects).
   */
  async watch(
    path: string,
    query: Query,
    onEvent: WatchHandler,
    signal: AbortSignal,
    onOpen?: () => void,
  ): Promise<void> {
    // Not reported to onRequest observers: they count requests and writes, a watch is neither.
    const res = await this.send('GET', path, { ...query, watch: true }, { signal, observe: false });
    if (!ok(res)) {
      const text = await readText(res);
      throw apiError(res, safeJson(text), text, 'GET', path);
    }
    onOpen?.();
    res.setEncoding('utf8');
    let pending = '';
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        pending += chunk;
        let nl = pending.indexOf('\n');
        while (nl >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          nl = pending.indexOf('\n');
          if (line.trim() === '') continue;
          const event = safeJson(line) as { type?: string; object?: unknown } | undefined;
          if (!event?.type) continue;
          try {
            onEvent(event.type, event.object);
          } catch (error) {
            res.destroy(error instanceof Error ? error : new Error(String(error)));
            return;
          }
        }
      });
      res.on('end', resolve);
      res.on('error', reject);
      res.on('close', () => {
        // Aborted or reset before 'end'.
        if (!res.complete)
          reject(signal.aborted ? signal.reason : new Error(`watch ${path}: connection closed`));
      });
    });
  }

  async close(): Promise<void> {
    this.agent?.destroy();
    this.agent = undefined;
  }

  /** Sends one request and resolves with the response head (the body is the caller's to read). */
  private async send(
    method: HttpMethod,
    path: string,
    query: Query | undefined,
    opts: { body?: string; contentType?: string; signal: AbortSignal; observe?: boolean },
  ): Promise<IncomingMessage> {
    const observe = opts.observe !== false;
    const creds = await this.connection.credentials();
    const url = new URL(this.url.pathname.replace(/\/+$/, '') + path, this.url);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { ...creds.headers, accept: 'application/json' };
    if (creds.authorization) headers.authorization = creds.authorization;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const https = url.protocol === 'https:';
    const options: RequestOptions = {
      method,
      headers,
      signal: opts.signal,
      agent: (creds.agent as HttpAgent | undefined) ?? this.agentFor(creds.tls, https),
    };
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = (https ? tlsHttp.request : http.request)(url, options, resolve);
        req.on('error', reject);
        req.end(opts.body);
      });
      if (observe) this.notify(method, path, res.statusCode ?? 0);
      return res;
    } catch (error) {
      if (observe) this.notify(method, path, 'error');
      throw error;
    }
  }

  /** One pool per TLS material; rotated material (an exec plugin's new certificate) gets a new one. */
  private agentFor(tls: KubeTls, https: boolean): HttpAgent {
    if (this.agent && this.agentTls === tls) return this.agent;
    // The old pool's idle connections close by their idle timeout; in-flight ones finish.
    const common = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
    // One SecureContext for every connection: given ca/cert/key instead, Node parses them into a
    // new OpenSSL context per connection, and the pool key would be their full PEM text.
    const { ca, cert, key, ...verify } = tls;
    this.agent = https
      ? new tlsHttp.Agent({ ...common, ...verify, secureContext: createSecureContext({ ca, cert, key }) })
      : new http.Agent(common);
    this.agentTls = tls;
    return this.agent;
  }

  private notify(method: string, path: string, status: number | 'error'): void {
    for (const o of this.observers) o({ method, path, status });
  }
}

function ok(res: IncomingMessage): boolean {
  const s = res.statusCode ?? 0;
  return s >= 200 && s < 300;
}

function apiError(res: IncomingMessage, parsed: unknown, text: string, method: string, path: string) {
  const status = (parsed ?? {}) as { reason?: string; message?: string };
  return new KubeApiError(
    res.statusCode ?? 0,
    status.reason ?? res.statusMessage ?? '',
    status.message ?? text.slice(0, 200),
    method,
    path,
  );
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
