// A deduplicating, rate-limited work queue with per-key serialisation, modelled on client-go's
// workqueue: a key waiting in the queue is stored once however often it is added; a key being
// processed is never handed to a second worker (it is marked dirty and re-queued when done);
// failures come back after exponential backoff with jitter; `addAfter` schedules resyncs.

export interface WorkQueueMetrics {
  depth(n: number): void;
  waited(seconds: number): void;
  retried(): void;
}

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  metrics?: WorkQueueMetrics;
}

/**
 * What a reconcile asks of the queue: a resync after `requeueAfterMs`; `parked`: the key was not
 * reconciled (it waits for a turn elsewhere), so its failure count, and with it its backoff, stays.
 */
export type ReconcileOutcome = { requeueAfterMs?: number; parked?: true } | undefined;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private waiters: (() => void)[] = [];
  private shuttingDown = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 5 * 60_000;
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.addedAt.set(key, Date.now());
    this.queue.push(key);
    this.opts.metrics?.depth(this.queue.length);
    this.waiters.shift()?.();
  }

  /** Adds the key after delayMs; an earlier pending schedule for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /**
   * Re-queues a failed key after exponential backoff with jitter, at least minDelayMs (Retry-After)
   * and at most maxDelayMs (a deadline the caller must not miss).
   */
  addRateLimited(key: string, minDelayMs = 0, maxDelayMs = Number.POSITIVE_INFINITY): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const exp = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1));
    const delay = Math.min(maxDelayMs, Math.max(minDelayMs, exp * (0.75 + Math.random() * 0.5)));
    this.opts.metrics?.retried();
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once shut down and drained. */
  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const key = this.queue.shift() as string;
    this.queued.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.opts.metrics?.waited((Date.now() - added) / 1000);
    this.opts.metrics?.depth(this.queue.length);
    return key;
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  get busy(): number {
    return this.processing.size;
  }

  /** Stops handing out new keys; keys already queued are dropped, in-flight ones finish. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

export type Reconciler = (key: string) => Promise<ReconcileOutcome>;

/** Bounds on the next attempt after a failure: not before `afterMs`, not after `beforeMs`. */
export type RetryHint = { afterMs?: number | undefined; beforeMs?: number | undefined } | undefined;

const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `workers` loops that take keys from the queue and reconcile them. */
export function runWorkers(
  queue: WorkQueue,
  workers: number,
  reconcile: Reconciler,
  onError: (key: string, error: unknown) => RetryHint,
): Promise<void> {
  const loop = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const outcome = await reconcile(key);
        if (!outcome?.parked) queue.forget(key);
        if (outcome?.requeueAfterMs !== undefined) queue.addAfter(key, outcome.requeueAfterMs);
      } catch (error) {
        const hint = onError(key, error);
        queue.addRateLimited(key, hint?.afterMs ?? 0, hint?.beforeMs);
      } finally {
        queue.done(key);
      }
      // A reconcile that needs no I/O (a deleted client's key woken by its Secrets' deletion)
      // completes in microtasks; thousands in a row would starve sockets and timers of the others.
      await yieldToIo();
    }
  };
  return Promise.all(Array.from({ length: workers }, loop)).then(() => undefined);
}
