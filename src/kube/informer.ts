// List+watch cache for one resource path. Written here rather than taken from client-node's
// makeInformer because long-lived watches there can stall silently (client-node #596, #958):
// this one renews each watch with a server-side timeout, resumes from the last resourceVersion,
// relists on 410 Gone, restarts with backoff after errors, and reports its health for /readyz.
// Like client-go's SetTransform, objects are trimmed before they are cached (managedFields: about
// half of a small object, never read by the operator).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeRest } from './rest.js';
import { isKubeStatus } from './rest.js';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(obj: T, old: T): void;
  onDelete?(obj: T): void;
}

/** Read side of an informer cache (also implemented by views over several informers). */
export interface CacheReader<T> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface IndexedCacheReader<T> extends CacheReader<T> {
  /**
   * Objects whose `index` function (InformerOptions.indexes) returned `value`, without scanning the
   * whole cache: a lookup per deleted client must not cost O(all Secrets) at 10,000 clients.
   */
  byIndex(index: string, value: string): T[];
}

export interface InformerOptions<T = KubernetesObject> {
  rest: KubeRest;
  /** Collection path, e.g. /api/v1/secrets or /apis/g/v1/namespaces/ns/things. */
  path: string;
  labelSelector?: string;
  log: Logger;
  /** Name used in logs and metrics. */
  name: string;
  /** Server-side watch timeout range; each watch ends after a random time in it and is renewed. */
  watchTimeoutSeconds?: [number, number];
  onWatchRestart?(): void;
  /**
   * Trims an object before it is cached and handed to handlers (default: stripManagedFields). Must
   * keep whatever readers use, and everything a read-modify-write (PUT) of the cached object sends.
   */
  transform?(obj: T): T;
  /** Objects for which this is false are dropped on receipt, never cached (sharding). */
  keep?(obj: T): boolean;
  /** Named secondary indexes (client-go's Indexers): each maps an object to the values it is found by. */
  indexes?: Record<string, (obj: T) => readonly string[]>;
}

interface ListResponse<T> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/**
 * Drops metadata.managedFields (server-side apply bookkeeping, often the biggest part of a small
 * object). Safe for PUTs of the trimmed object: the apiserver keeps the stored managedFields when
 * an update carries none.
 */
export function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/** kubectl's client-side apply keeps the whole applied object here (once more, as JSON text). */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * stripManagedFields, and kubectl's last-applied-configuration annotation: a copy of the object as
 * JSON, on every object a user `kubectl apply`s. Only for resources the operator never PUTs (an
 * update without the annotation would remove it from the stored object and upset the next apply).
 */
export function stripApplyBookkeeping<T extends KubernetesObject>(obj: T): T {
  stripManagedFields(obj);
  const annotations = obj.metadata?.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) delete annotations[LAST_APPLIED_ANNOTATION];
  return obj;
}

export function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name}` : (obj.metadata?.name ?? '');
}

export class Informer<T extends KubernetesObject> implements IndexedCacheReader<T> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  /** Objects received and dropped by `keep` (list items and watch events). */
  dropped = 0;
  private resourceVersion = '';
  private stopped = false;
  private abort?: AbortController;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  /** Last time the watch delivered anything or was (re)established. */
  private lastHealthyAt = 0;
  private watching = false;
  /** Watch requests started so far (renewals included): observable proof that renewal happens. */
  watchesStarted = 0;

  private readonly transform: (obj: T) => T;
  /**
   * Per index name: value → key(s) of the cached objects found by it. Most values find one or two
   * objects (a client's two Secrets): a lone key is kept as a string, a Set only from the second.
   */
  private readonly indexed = new Map<string, Map<string, string | Set<string>>>();
  /** Each index's function and its map, resolved once: every cache change goes through them. */
  private readonly indexers: {
    fn: (obj: T) => readonly string[];
    byValue: Map<string, string | Set<string>>;
  }[];

  constructor(private readonly opts: InformerOptions<T>) {
    this.transform = opts.transform ?? stripManagedFields;
    this.indexers = Object.entries(opts.indexes ?? {}).map(([name, fn]) => {
      const byValue = new Map<string, string | Set<string>>();
      this.indexed.set(name, byValue);
      return { fn, byValue };
    });
  }

  /** Every change of the cache goes through here, so the indexes always match it. */
  private put(key: string, obj: T | undefined): void {
    const prev = this.cache.get(key);
    if (prev) this.reindex(key, prev, 'remove');
    if (obj) {
      this.cache.set(key, obj);
      this.reindex(key, obj, 'add');
    } else this.cache.delete(key);
  }

  private reindex(key: string, obj: T, op: 'add' | 'remove'): void {
    for (const { fn, byValue } of this.indexers) {
      for (const value of fn(obj)) {
        const keys = byValue.get(value);
        if (op === 'add') {
          if (keys === undefined || keys === key) byValue.set(value, key);
          else if (typeof keys === 'string') byValue.set(value, new Set([keys, key]));
          else keys.add(key);
        } else if (keys === key) byValue.delete(value);
        else if (typeof keys !== 'string' && keys?.delete(key)) {
          if (keys.size === 1) byValue.set(value, keys.values().next().value as string);
        }
      }
    }
  }

  private kept(obj: T): boolean {
    if (!this.opts.keep || this.opts.keep(obj)) return true;
    this.dropped++;
    return false;
  }

  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  byIndex(index: string, value: string): T[] {
    const byValue = this.indexed.get(index);
    if (!byValue) throw new Error(`informer ${this.opts.name}: no index ${index}`);
    const keys = byValue.get(value);
    if (keys === undefined) return [];
    if (typeof keys === 'string') return [this.cache.get(keys) as T];
    return [...keys].map((k) => this.cache.get(k) as T);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** For readiness: the watch is established, or was within maxStaleMs. */
  healthy(maxStaleMs: number): { ok: boolean; message?: string } {
    if (!this.synced) return { ok: false, message: `${this.opts.name}: initial list not done` };
    if (this.watching) return { ok: true };
    const age = Date.now() - this.lastHealthyAt;
    return age <= maxStaleMs
      ? { ok: true }
      : { ok: false, message: `${this.opts.name}: watch down for ${Math.round(age / 1000)} s` };
  }

  /** Starts the loop; resolves once the first list has filled the cache. */
  async start(): Promise<void> {
    void this.run();
    if (this.synced) return;
    await new Promise<void>((resolve) => this.syncWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    for (const w of this.syncWaiters) w();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (!this.resourceVersion) await this.relist();
        failures = 0;
        const outcome = await this.watchOnce();
        if (outcome === 'gone') this.resourceVersion = '';
      } catch (error) {
        if (this.stopped) return;
        failures++;
        this.opts.onWatchRestart?.();
        const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        this.opts.log.warn(
          { informer: this.opts.name, err: errorMessage(error), retryInMs: Math.round(delay) },
          'list/watch failed; retrying',
        );
        if (isKubeStatus(error, 410) || (error as { statusCode?: number }).statusCode === 410) {
          this.resourceVersion = '';
        }
        await sleep(delay);
      }
    }
  }

  private async relist(): Promise<void> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.rest.get<ListResponse<T>>(this.opts.path, {
        labelSelector: this.opts.labelSelector,
        limit: 500,
        continue: cont,
      });
      for (const item of page.items) if (this.kept(item)) fresh.set(objectKey(item), this.transform(item));
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? '';
    } while (cont);
    const old = new Map(this.cache);
    for (const k of old.keys()) if (!fresh.has(k)) this.put(k, undefined);
    for (const [k, v] of fresh) this.put(k, v);
    this.resourceVersion = rv;
    this.lastHealthyAt = Date.now();
    for (const [k, v] of fresh) {
      const prev = old.get(k);
      if (!prev) this.emit('add', v);
      else if (prev.metadata?.resourceVersion !== v.metadata?.resourceVersion) this.emit('update', v, prev);
    }
    for (const [k, v] of old) if (!fresh.has(k)) this.emit('delete', v);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** One watch request; resolves when it ends normally, 'gone' when the resourceVersion expired. */
  private async watchOnce(): Promise<'ended' | 'gone'> {
    const [lo, hi] = this.opts.watchTimeoutSeconds ?? [240, 300];
    const timeoutSeconds = Math.round(lo + Math.random() * (hi - lo));
    this.watchesStarted++;
    const abort = new AbortController();
    this.abort = abort;
    if (this.stopped) abort.abort();
    // A connection that died without a FIN never ends by itself: give up a little after the server
    // should have ended the watch, and renew it.
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout((timeoutSeconds + 30) * 1000)]);
    let gone = false;
    try {
      await this.opts.rest.watch(
        this.opts.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: this.opts.labelSelector,
        },
        (phase, raw) => {
          this.lastHealthyAt = Date.now();
          this.watching = true;
          if (phase === 'ERROR') {
            const status = raw as { code?: number };
            if (status.code === 410) gone = true;
            return;
          }
          const obj = raw as T;
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (phase === 'BOOKMARK' || !this.kept(obj)) return;
          const key = objectKey(obj);
          const prev = this.cache.get(key);
          if (phase === 'DELETED') {
            this.put(key, undefined);
            this.emit('delete', this.transform(obj));
          } else {
            const trimmed = this.transform(obj);
            this.put(key, trimmed);
            if (prev) this.emit('update', trimmed, prev);
            else this.emit('add', trimmed);
          }
        },
        signal,
        () => {
          this.watching = true;
          this.lastHealthyAt = Date.now();
        },
      );
      return gone ? 'gone' : 'ended';
    } catch (error) {
      if (gone) return 'gone';
      if (this.stopped || isTimeout(error)) return 'ended';
      throw error;
    } finally {
      this.watching = false;
      this.abort = undefined;
    }
  }

  private emit(type: 'add' | 'update' | 'delete', obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        if (type === 'add') h.onAdd?.(obj);
        else if (type === 'update') h.onUpdate?.(obj, old as T);
        else h.onDelete?.(obj);
      } catch (error) {
        this.opts.log.error({ informer: this.opts.name, err: errorMessage(error) }, 'event handler failed');
      }
    }
  }
}

/** The client-side deadline of a watch (or stop()): the watch is renewed, not an error. */
function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
