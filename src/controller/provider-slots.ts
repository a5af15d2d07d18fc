// Fair use of the workers across providers. Workers are shared, and a provider that is slow or
// never answers would otherwise hold every worker (each for requestTimeout × attempts) while the
// clients of healthy providers wait in the queue. A key whose provider is at its share is parked,
// not waited on, and handed back to the queue when that provider frees a slot. A provider's share
// is the smallest of:
// - its own cap: the provider's maxConcurrentRequests (more reconciles would only wait for its
//   request semaphore while holding workers), so with more workers than that, others always find one;
// - an equal split of the workers among the providers that had work recently;
// - one, while it looks down: several calls in a row failed for lack of an answer (timeouts,
//   refused connections, 5xx) and none succeeded for a while, until a reconcile against it succeeds
//   again. A provider that fails now and then (one reconcile in ten) keeps its share: dropping to
//   one on every single failure would serialise the next failures behind each other's timeouts.

export interface ProviderSlotsOptions {
  workers: number;
  /** Puts a parked key back into the work queue. */
  wake: (key: string) => void;
  /** The most reconciles one provider may have in flight (its maxConcurrentRequests). Default: no cap. */
  capOf?: (provider: string) => number;
  /** A provider counts towards the split while it had work this recently. Default 30 s. */
  activeWindowMs?: number;
  /** Failed reconciles in a row, with no success for `downAfterMs`, that mark a provider down. Default 3. */
  downAfterFailures?: number;
  /** Default 10 s. */
  downAfterMs?: number;
  now?: () => number;
}

export type Slot = { release(result: 'ok' | 'unavailable' | 'other'): void };

export class ProviderSlots {
  private readonly inFlight = new Map<string, number>();
  private readonly parked = new Map<string, Set<string>>();
  /**
   * Keys handed back to the queue for a freed slot of this provider, not yet reconciled: a woken key
   * that then takes no slot (its client is gone, paused, or moved to another provider) passes its
   * turn on, or the keys still parked would wait for a slot release that never comes.
   */
  private readonly woken = new Map<string, string>();
  private readonly lastSeen = new Map<string, number>();
  private readonly unresponsive = new Set<string>();
  /** Per provider: unavailable results since the last success, and when that success was. */
  private readonly health = new Map<string, { failures: number; lastOkAt: number }>();
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(private readonly o: ProviderSlotsOptions) {
    this.windowMs = o.activeWindowMs ?? 30_000;
    this.now = o.now ?? Date.now;
  }

  /** How many reconciles of `provider` may run at once right now. */
  share(provider: string): number {
    if (this.unresponsive.has(provider)) return 1;
    const since = this.now() - this.windowMs;
    let active = 1; // this provider
    for (const [p, at] of this.lastSeen) {
      if (p === provider) continue;
      if (at >= since || (this.inFlight.get(p) ?? 0) > 0 || this.parked.has(p)) active++;
      else {
        this.lastSeen.delete(p);
        this.health.delete(p);
      }
    }
    const cap = this.o.capOf?.(provider) ?? Number.POSITIVE_INFINITY;
    return Math.max(1, Math.min(cap, Math.floor(this.o.workers / active)));
  }

  /**
   * A slot for reconciling `key` against `provider`, or undefined when the provider is at its
   * share: the key is then parked and woken once a slot of that provider is released.
   */
  acquire(provider: string, key: string): Slot | undefined {
    this.passTurn(key, provider);
    this.lastSeen.set(provider, this.now());
    // A provider never seen succeed counts as "last good" from its first use.
    if (!this.health.has(provider)) this.health.set(provider, { failures: 0, lastOkAt: this.now() });
    const running = this.inFlight.get(provider) ?? 0;
    if (running >= this.share(provider)) {
      const keys = this.parked.get(provider) ?? new Set<string>();
      this.parked.set(provider, keys);
      keys.add(key);
      return undefined;
    }
    // Running now: an earlier parking of this key (it was queued again meanwhile) is settled.
    this.unpark(provider, key);
    this.inFlight.set(provider, running + 1);
    let released = false;
    return {
      release: (result) => {
        if (released) return;
        released = true;
        this.record(provider, result);
        const left = (this.inFlight.get(provider) ?? 1) - 1;
        if (left > 0) this.inFlight.set(provider, left);
        else this.inFlight.delete(provider);
        this.wakeParked(provider);
      },
    };
  }

  private record(provider: string, result: 'ok' | 'unavailable' | 'other'): void {
    const now = this.now();
    const h = this.health.get(provider) ?? { failures: 0, lastOkAt: now };
    this.health.set(provider, h);
    if (result === 'ok') {
      h.failures = 0;
      h.lastOkAt = now;
      this.unresponsive.delete(provider);
    } else if (result === 'unavailable') {
      h.failures++;
      const down =
        h.failures >= (this.o.downAfterFailures ?? 3) && now - h.lastOkAt >= (this.o.downAfterMs ?? 10_000);
      if (down) this.unresponsive.add(provider);
    }
  }

  /**
   * The key is reconciled without a slot (its client is gone or paused): it is no longer parked, and
   * a turn it was woken for goes to the next parked key.
   */
  skip(key: string): void {
    this.passTurn(key, undefined);
    for (const [provider, keys] of this.parked) {
      if (keys.has(key)) this.unpark(provider, key);
    }
  }

  private passTurn(key: string, takenFor: string | undefined): void {
    const wokenFor = this.woken.get(key);
    if (wokenFor === undefined) return;
    this.woken.delete(key);
    if (wokenFor !== takenFor) this.wakeParked(wokenFor);
  }

  private unpark(provider: string, key: string): void {
    const keys = this.parked.get(provider);
    if (!keys?.delete(key)) return;
    if (keys.size === 0) this.parked.delete(provider);
  }

  /** Parked keys per provider (for tests and debugging). */
  parkedCount(provider: string): number {
    return this.parked.get(provider)?.size ?? 0;
  }

  isUnresponsive(provider: string): boolean {
    return this.unresponsive.has(provider);
  }

  private wakeParked(provider: string): void {
    const keys = this.parked.get(provider);
    if (!keys) return;
    let free = this.share(provider) - (this.inFlight.get(provider) ?? 0);
    for (const w of this.woken.values()) if (w === provider) free--;
    for (const key of keys) {
      if (free <= 0) break;
      keys.delete(key);
      free--;
      this.woken.set(key, provider);
      this.o.wake(key);
    }
    if (keys.size === 0) this.parked.delete(provider);
  }
}
