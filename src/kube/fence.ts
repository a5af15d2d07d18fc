// The right to act during one leadership term. A leader that can no longer renew its Lease must
// stop before a successor may take over; the fence makes that a property of every call instead of
// a promise each caller keeps: Kubernetes requests and provider requests read `signal` right before
// they are sent (retries included) and refuse once it is aborted.
import { performance } from 'node:perf_hooks';

export interface Fence {
  /** Aborted once no request may be sent any more. */
  readonly signal: AbortSignal;
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

/** For code that runs without leader election: never aborts. */
export const NO_FENCE: Fence = { signal: new AbortController().signal };

/**
 * A fence that also closes at a deadline on the monotonic clock, moved on by every renewal. The
 * getter compares with the clock before returning: a process that was paused (SIGSTOP, a long GC,
 * a frozen VM) resumes with its timers overdue, and I/O callbacks run before them, so a call that
 * reads the signal after such a pause sees it aborted even though no timer has fired yet.
 */
export class DeadlineFence implements Fence {
  readonly #controller = new AbortController();
  #deadline = Number.POSITIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;

  get signal(): AbortSignal {
    this.#check();
    return this.#controller.signal;
  }

  /** A renewal: the new deadline in performance.now() milliseconds. No effect once closed. */
  extend(deadline: number): void {
    if (this.#controller.signal.aborted) return;
    this.#deadline = deadline;
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    // +1: timers may fire a fraction of a millisecond before performance.now() reaches the deadline.
    this.#timer = setTimeout(
      () => {
        this.#check();
        if (!this.#controller.signal.aborted) this.#arm();
      },
      Math.max(0, this.#deadline - performance.now()) + 1,
    );
    this.#timer.unref();
  }

  /** Ends the term: nothing is sent from now on. */
  end(reason: string): void {
    clearTimeout(this.#timer);
    if (!this.#controller.signal.aborted) this.#controller.abort(new FencedError(reason));
  }

  #check(): void {
    if (!this.#controller.signal.aborted && performance.now() >= this.#deadline) {
      this.end('the lease was not renewed in time; nothing may be sent any more');
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
}
