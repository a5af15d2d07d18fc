// Remembers the object states this process wrote itself, so that informer events carrying them do
// not wake a key again (client-go's "expectations"). Without this, every write of a reconcile
// (a pending marker, a status) comes back as an event and re-queues the key at once, which
// defeats the work queue's backoff and any Retry-After: a provider failing every POST then sees
// thousands of requests a minute. Events from anyone else still wake the key at once.
//
// The apiserver may deliver the watch event before our own HTTP response is read, so an event for
// an object with a write in flight waits for that write to settle before it is judged.

/** Identifies an object across write paths and watch events: `<resource>/<namespace>/<name>`. */
export type ObjectId = string;

export function objectId(resource: string, namespace: string | undefined, name: string): ObjectId {
  return `${resource}/${namespace ?? ''}/${name}`;
}

const WRITE_PATH =
  /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/[^/]+)?$/;

/** The object a write request addresses, or undefined when it is not one of `resources`. */
export function writeTarget(
  path: string,
  body: unknown,
  resources: ReadonlySet<string>,
): ObjectId | undefined {
  const m = WRITE_PATH.exec(path);
  if (!m) return undefined;
  const [, namespace, resource, pathName] = m;
  if (!resource || !resources.has(resource)) return undefined;
  const name =
    pathName ?? (body as { metadata?: { name?: unknown } } | undefined)?.metadata?.name ?? undefined;
  return typeof name === 'string' ? objectId(resource, namespace, name) : undefined;
}

interface InFlight {
  count: number;
  settled: Promise<void>;
  resolve: () => void;
}

export interface OwnWritesOptions {
  /** How long a produced resourceVersion is remembered when its event never comes (e.g. a relist). */
  ttlMs?: number;
  /** Upper bound on remembered versions; the oldest go first. */
  maxEntries?: number;
}

export class OwnWrites {
  private readonly inFlight = new Map<ObjectId, InFlight>();
  /** `${id}@${resourceVersion}` → expiry time; Map iteration order is insertion order. */
  private readonly produced = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  /** Events ignored because they showed our own writes (for tests and debugging). */
  ignored = 0;

  constructor(opts: OwnWritesOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
  }

  begin(id: ObjectId): void {
    const f = this.inFlight.get(id);
    if (f) {
      f.count++;
      return;
    }
    let resolve = () => {};
    const settled = new Promise<void>((r) => {
      resolve = r;
    });
    this.inFlight.set(id, { count: 1, settled, resolve });
  }

  /** The write finished; `resourceVersion` is the one the apiserver answered with, if it succeeded. */
  end(id: ObjectId, resourceVersion: string | undefined): void {
    if (resourceVersion) this.record(id, resourceVersion);
    const f = this.inFlight.get(id);
    if (!f) return;
    if (--f.count > 0) return;
    this.inFlight.delete(id);
    f.resolve();
  }

  /** Calls `wake` unless the event shows a state this process wrote (which is then forgotten). */
  judge(id: ObjectId, resourceVersion: string | undefined, wake: () => void): void {
    const check = () => {
      if (resourceVersion && this.consume(id, resourceVersion)) this.ignored++;
      else wake();
    };
    const f = this.inFlight.get(id);
    if (f) void f.settled.then(check);
    else check();
  }

  get size(): number {
    return this.produced.size;
  }

  private record(id: ObjectId, rv: string): void {
    const now = Date.now();
    this.produced.delete(`${id}@${rv}`);
    this.produced.set(`${id}@${rv}`, now + this.ttlMs);
    for (const [k, expires] of this.produced) {
      if (expires > now && this.produced.size <= this.maxEntries) break;
      this.produced.delete(k);
    }
  }

  private consume(id: ObjectId, rv: string): boolean {
    const k = `${id}@${rv}`;
    const expires = this.produced.get(k);
    if (expires === undefined) return false;
    this.produced.delete(k);
    return expires > Date.now();
  }
}
