// A thin JSON client for the Kubernetes REST API on top of client-node's authentication and
// connection pool. The generated client-node APIs cover core kinds, but custom resources,
// status subresources and patches with precise content types are simpler (and typed errors
// more uniform) through one small request function.
import { HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import { type Dispatcher, fetch } from 'undici';
import { assertNotFenced, type Fence } from './fence.js';
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

export type PatchType = 'merge' | 'json' | 'apply';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export type Query = Record<string, string | number | boolean | undefined>;

/** Request observer for metrics and write counting (tests count writes over quiet periods). */
export type KubeRequestObserver = (e: { method: string; path: string; status: number | 'error' }) => void;

export interface KubeRestOptions {
  /** Per-request timeout when the caller passes no signal. Default 30 s. */
  timeoutMs?: number;
}

/** What a KubeRest and its fenced views share: one connection pool, one set of observers. */
interface Shared {
  observers: KubeRequestObserver[];
  /**
   * client-node builds a new undici Agent on every applySecurityAuthentication, so each request
   * would open (and leak) its own TLS connection. One dispatcher per KubeRest keeps connections
   * alive and reused; the per-request copies are closed unused.
   */
  dispatcher?: Dispatcher;
  timeoutMs: number;
  /** Writes reported to OwnWrites, so fenced views report theirs too. */
  own?: { writes: OwnWrites; resources: ReadonlySet<string> };
}

export class KubeRest {
  private shared: Shared;
  private fence: Fence | undefined;
  private root: KubeRest = this;

  constructor(
    readonly kubeConfig: KubeConfig,
    opts: KubeRestOptions = {},
  ) {
    this.shared = { observers: [], timeoutMs: opts.timeoutMs ?? 30_000 };
  }

  /**
   * A view whose every request is refused once `fence.signal` aborts and is cut off in flight when
   * it does: the writes of a leader that lost its Lease must stop before a successor starts.
   */
  fenced(fence: Fence): KubeRest {
    const view = new KubeRest(this.kubeConfig);
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

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>(HttpMethod.GET, path, { query });
  }

  /** A GET asking for another representation, e.g. metadata only (PartialObjectMetadataList). */
  getAs<T>(path: string, query: Query, accept: string): Promise<T> {
    return this.request<T>(HttpMethod.GET, path, { query, accept });
  }

  create<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.request<T>(HttpMethod.POST, path, { body, query });
  }

  replace<T>(path: string, body: unknown, query?: Query): Promise<T> {
    return this.request<T>(HttpMethod.PUT, path, { body, query });
  }

  patch<T>(path: string, type: PatchType, body: unknown, query?: Query): Promise<T> {
    return this.request<T>(HttpMethod.PATCH, path, { body, query, contentType: PATCH_CONTENT_TYPE[type] });
  }

  delete<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.request<T>(HttpMethod.DELETE, path, { body, query });
  }

  async request<T>(
    method: HttpMethod,
    path: string,
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal; accept?: string } = {},
  ): Promise<T> {
    const own = this.shared.own;
    const target = own && method !== HttpMethod.GET ? writeTarget(path, opts.body, own.resources) : undefined;
    if (!own || !target) return this.send<T>(method, path, opts);
    own.writes.begin(target);
    let rv: string | undefined;
    try {
      const result = await this.send<T>(method, path, opts);
      rv = (result as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
      return result;
    } finally {
      own.writes.end(target, rv);
    }
  }

  private async send<T>(
    method: HttpMethod,
    path: string,
    opts: { body?: unknown; query?: Query; contentType?: string; signal?: AbortSignal; accept?: string },
  ): Promise<T> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/+$/, '') + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const ctx = new RequestContext(url.toString(), method);
    await this.kubeConfig.applySecurityAuthentication(ctx);
    const shared = this.shared;
    const fresh = ctx.getDispatcher() as Dispatcher | undefined;
    if (!shared.dispatcher) shared.dispatcher = fresh;
    else if (fresh && fresh !== shared.dispatcher) void fresh.close();
    // Read right before sending: after a pause the fence reports the overdue deadline at once.
    const fence = this.fence?.signal;
    if (fence) assertNotFenced(fence);
    const deadline = opts.signal ?? AbortSignal.timeout(shared.timeoutMs);
    const headers: Record<string, string> = {
      ...ctx.getHeaders(),
      accept: opts.accept ?? 'application/json',
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      body = JSON.stringify(opts.body);
    }
    let response: Awaited<ReturnType<typeof fetch>>;
    try {
      response = await fetch(url, {
        method,
        headers,
        body,
        dispatcher: shared.dispatcher,
        signal: fence ? AbortSignal.any([deadline, fence]) : deadline,
      });
    } catch (error) {
      this.notify(method, path, 'error');
      throw error;
    }
    this.notify(method, path, response.status);
    const text = await response.text();
    const parsed: unknown = text ? safeJson(text) : undefined;
    if (!response.ok) {
      const status = (parsed ?? {}) as { reason?: string; message?: string };
      throw new KubeApiError(
        response.status,
        status.reason ?? response.statusText,
        status.message ?? text.slice(0, 200),
        method,
        path,
      );
    }
    return parsed as T;
  }

  async close(): Promise<void> {
    await this.shared.dispatcher?.close();
    this.shared.dispatcher = undefined;
  }

  private notify(method: string, path: string, status: number | 'error'): void {
    for (const o of this.shared.observers) o({ method, path, status });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
