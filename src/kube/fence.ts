// The right to act during one leadership term. A leader that can no longer renew its Lease must
// stop writing before a successor may take over; the fence makes that a property of every call
// instead of a promise each caller keeps. Kubernetes writes and provider calls read `signal` right
// before they start and are cut off in flight by `hardSignal`.
import { performance } from 'node:perf_hooks';

export interface Fence {
  /** Aborted once no new work may start. */
  readonly signal: AbortSignal;
  /** Aborted when work already in flight must be cut off: before a successor may take over. */
  readonly hardSignal: AbortSignal;
}

/** Thrown (and used as abort reason) when a call is refused or cut off because the term ended. */
export class FencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FencedError';
  }
}

export function isFenced(error: unknown): boolean {
  return error instanceof FencedError;
}

/** Throws the fence's reason when `signal` is aborted. */
export function assertNotFenced(signal: AbortSignal): void {
  if (!signal.aborted) return;
  const reason: unknown = signal.reason;
  throw reason instanceof FencedError ? reason : new FencedError(String(reason));
}

const never = new AbortController().signal;

/** For code that runs without leader election: never aborts. */
export const NO_FENCE: Fence = { signal: never, hardSignal: never };

/**
 * A fence whose signals abort at deadlines on the monotonic clock, moved on by every renewal.
 * The getters compare with the clock before returning: a process that was paused (SIGSTOP, a long
 * GC, a frozen VM) resumes with its timers overdue, and I/O callbacks can run before them, so a
 * call that reads the signal after such a pause sees it aborted even though no timer has fired.
 */
export class DeadlineFence implements Fence {
  readonly #soft = new AbortController();
  readonly #hard = new AbortController();
  #softAt = Number.POSITIVE_INFINITY;
  #hardAt = Number.POSITIVE_INFINITY;
  #softTimer: NodeJS.Timeout | undefined;
  #hardTimer: NodeJS.Timeout | undefined;
  #ended = false;

  get signal(): AbortSignal {
    this.#check();
    return this.#soft.signal;
  }

  get hardSignal(): AbortSignal {
    this.#check();
    return this.#hard.signal;
  }

  /**
   * A renewal: new deadlines in performance.now() milliseconds. After end() only the hard deadline
   * moves: a leader winding down on stop() keeps renewing, and its work in flight may finish.
   */
  extend(softAt: number, hardAt: number): void {
    if (this.#hard.signal.aborted) return;
    const now = performance.now();
    if (!this.#ended) {
      this.#softAt = softAt;
      clearTimeout(this.#softTimer);
      this.#softTimer = setTimeout(() => this.#check(), Math.max(0, softAt - now));
      this.#softTimer.unref();
    }
    this.#hardAt = Math.max(softAt, hardAt);
    clearTimeout(this.#hardTimer);
    this.#hardTimer = setTimeout(() => this.#check(), Math.max(0, this.#hardAt - now));
    this.#hardTimer.unref();
  }

  /**
   * Ends the term: no new work from now on. Work in flight is cut off at the hard deadline, or at
   * once with `cutOff` (someone else already holds the lease).
   */
  end(reason: string, opts: { cutOff?: boolean } = {}): void {
    this.#ended = true;
    if (!this.#soft.signal.aborted) this.#soft.abort(new FencedError(reason));
    clearTimeout(this.#softTimer);
    if (opts.cutOff) this.#abortHard(reason);
  }

  #abortHard(reason: string): void {
    clearTimeout(this.#hardTimer);
    if (!this.#hard.signal.aborted) this.#hard.abort(new FencedError(reason));
  }

  #check(): void {
    const now = performance.now();
    if (!this.#soft.signal.aborted && now >= this.#softAt) {
      this.#soft.abort(new FencedError('the lease was not renewed in time; no new work may start'));
    }
    if (!this.#hard.signal.aborted && now >= this.#hardAt) {
      this.#abortHard('the lease ran out; work in flight is cut off before a successor may take over');
    }
  }
}

/** A fence chosen later (when leadership is acquired); NO_FENCE until then. */
export class FenceSlot implements Fence {
  #current: Fence = NO_FENCE;

  set(fence: Fence): void {
    this.#current = fence;
  }

  get signal(): AbortSignal {
    return this.#current.signal;
  }

  get hardSignal(): AbortSignal {
    return this.#current.hardSignal;
  }
}
