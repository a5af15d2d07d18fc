// A thin JSON client for the Kubernetes REST API on node:https with one keep-alive connection pool.
// Custom resources, status subresources, watches and patches with precise content types are simpler
// (and typed errors more uniform) through one small request function than through client-node's
// generated APIs, and the operator then does not load client-node at all (see config.ts).
import type { Agent as HttpAgent, IncomingMessage, RequestOptions } from 'node:http';
import { createSecureContext } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { type KubeConnection, type KubeTls, loadKubeConnectionSync } from './config.js';
import { assertNotFenced, type Fence } from './fence.js';
import { http, https as tlsHttp } from './node-http.js';
import { type OwnWrites, writeTarget } from './own-writes.js';

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

/** Idle pooled connections close after this (the burst's many parallel ones are not kept forever). */
const IDLE_SOCKET_MS = 30_000;

export interface KubeRestOptions {
  /** Per-request timeout when the caller passes no signal. Default 30 s. */
  timeoutMs?: number;
}

/** What a KubeRest and its fenced views share: one connection pool, one set of observers. */
interface Shared {
  connection: KubeConnection;
  url: URL;
  observers: KubeRequestObserver[];
  agent?: HttpAgent;
  agentTls?: KubeTls;
  timeoutMs: number;
  /** Writes reported to OwnWrites, so fenced views report theirs too. */
  own?: { writes: OwnWrites; resources: ReadonlySet<string> };
}

export class KubeRest {
  private shared: Shared;
  private fence: Fence | undefined;
  private root: KubeRest = this;

  /** A resolved connection (loadKubeConnection), or a client-node KubeConfig (tests build those). */
  constructor(config: KubeConnection | KubeConfig, opts: KubeRestOptions = {}) {
    const connection = loadKubeConnectionSync(config);
    this.shared = {
      connection,
      url: new URL(connection.server),
      observers: [],
      timeoutMs: opts.timeoutMs ?? 30_000,
    };
  }

  /**
   * A view whose every request is refused once `fence.signal` aborts and is cut off in flight when
   * it does: the writes of a leader that lost its Lease must stop before a successor starts.
   */
  fenced(fence: Fence): KubeRest {
    const view = new KubeRest(this.shared.connection);
    view.shared = this.shared;
    view.fence = fence;
    view.root = this.root;
    return view;
  }

  /** The same client without a fence, for writes that are safe whoever leads (compare-and-swap). */
  unfenced(): KubeRest {
    return this.root;
  }

  onRequest(observer: KubeRequestObserver): void {
    this.shared.observers.push(observer);
  }

  /** Reports every write to these resources (plural names) and the resourceVersion it produced. */
  trackWrites(writes: OwnWrites, resources: string[]): void {
    this.shared.own = { writes, resources: new Set(resources) };
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, signal });
  }

  /** A GET asking for another representation, e.g. metadata only (PartialObjectMetadataList). */
  getAs<T>(path: string, query: Query, accept: string): Promise<T> {
    return this.request<T>('GET', path, { query, accept });
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
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal; accept?: string } = {},
  ): Promise<T> {
    const own = this.shared.own;
    const target = own && method !== 'GET' ? writeTarget(path, opts.body, own.resources) : undefined;
    if (!own || !target) return this.exchange<T>(method, path, opts);
    own.writes.begin(target);
    let rv: string | undefined;
    try {
      const result = await this.exchange<T>(method, path, opts);
      rv = (result as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
      return result;
    } finally {
      own.writes.end(target, rv);
    }
  }

  /** One request with a JSON body and a JSON answer; a cut-off by the fence throws FencedError. */
  private async exchange<T>(
    method: HttpMethod,
    path: string,
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal; accept?: string },
  ): Promise<T> {
    try {
      return await this.exchangeUnfenced<T>(method, path, opts);
    } catch (error) {
      const fence = this.fence?.signal;
      if (fence?.aborted) assertNotFenced(fence);
      throw error;
    }
  }

  private async exchangeUnfenced<T>(
    method: HttpMethod,
    path: string,
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal; accept?: string },
  ): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.send(method, path, opts.query, {
      body,
      contentType: opts.contentType,
      signal: opts.signal ?? AbortSignal.timeout(this.shared.timeoutMs),
      accept: opts.accept,
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
    this.shared.agent?.destroy();
    this.shared.agent = undefined;
  }

  /** Sends one request and resolves with the response head (the body is the caller's to read). */
  private async send(
    method: HttpMethod,
    path: string,
    query: Query | undefined,
    opts: { body?: string; contentType?: string; signal: AbortSignal; observe?: boolean; accept?: string },
  ): Promise<IncomingMessage> {
    const observe = opts.observe !== false;
    const shared = this.shared;
    const creds = await shared.connection.credentials();
    const url = new URL(shared.url.pathname.replace(/\/+$/, '') + path, shared.url);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { ...creds.headers, accept: opts.accept ?? 'application/json' };
    if (creds.authorization) headers.authorization = creds.authorization;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    }
    const https = url.protocol === 'https:';
    // Read right before sending: after a pause the fence reports the overdue deadline at once.
    const fence = this.fence?.signal;
    if (fence) assertNotFenced(fence);
    const options: RequestOptions = {
      method,
      headers,
      signal: fence ? AbortSignal.any([opts.signal, fence]) : opts.signal,
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
    const shared = this.shared;
    if (shared.agent && shared.agentTls === tls) return shared.agent;
    // The old pool's idle connections close by their idle timeout; in-flight ones finish.
    const common = { keepAlive: true, timeout: IDLE_SOCKET_MS, scheduling: 'lifo' as const };
    // One SecureContext for every connection: given ca/cert/key instead, Node parses them into a
    // new OpenSSL context per connection, and the pool key would be their full PEM text.
    const { ca, cert, key, ...verify } = tls;
    shared.agent = https
      ? new tlsHttp.Agent({ ...common, ...verify, secureContext: createSecureContext({ ca, cert, key }) })
      : new http.Agent(common);
    shared.agentTls = tls;
    return shared.agent;
  }

  private notify(method: string, path: string, status: number | 'error'): void {
    for (const o of this.shared.observers) o({ method, path, status });
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
