// Fair use of the workers across providers. Workers are shared, and a provider that is slow or
// never answers would otherwise hold every worker (each for requestTimeout × attempts) while the
// clients of healthy providers wait in the queue. Each provider gets at most its share of the
// workers at once; a key whose provider is at its share is parked, not waited on, and handed back
// to the queue when that provider frees a slot. A provider whose calls fail for lack of an answer
// (timeouts, refused connections, 5xx) is limited to one reconcile at a time until one succeeds.

export interface ProviderSlotsOptions {
  workers: number;
  /** Puts a parked key back into the work queue. */
  wake: (key: string) => void;
  /** A provider counts towards the split while it had work this recently. Default 30 s. */
  activeWindowMs?: number;
  now?: () => number;
}

export type Slot = { release(result: 'ok' | 'unavailable' | 'other'): void };

export class ProviderSlots {
  private readonly inFlight = new Map<string, number>();
  private readonly parked = new Map<string, Set<string>>();
  private readonly lastSeen = new Map<string, number>();
  private readonly unresponsive = new Set<string>();
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
      else this.lastSeen.delete(p);
    }
    return Math.max(1, Math.floor(this.o.workers / active));
  }

  /**
   * A slot for reconciling `key` against `provider`, or undefined when the provider is at its
   * share: the key is then parked and woken once a slot of that provider is released.
   */
  acquire(provider: string, key: string): Slot | undefined {
    this.lastSeen.set(provider, this.now());
    const running = this.inFlight.get(provider) ?? 0;
    if (running >= this.share(provider)) {
      const keys = this.parked.get(provider) ?? new Set<string>();
      this.parked.set(provider, keys);
      keys.add(key);
      return undefined;
    }
    this.inFlight.set(provider, running + 1);
    let released = false;
    return {
      release: (result) => {
        if (released) return;
        released = true;
        if (result === 'ok') this.unresponsive.delete(provider);
        else if (result === 'unavailable') this.unresponsive.add(provider);
        const left = (this.inFlight.get(provider) ?? 1) - 1;
        if (left > 0) this.inFlight.set(provider, left);
        else this.inFlight.delete(provider);
        this.wakeParked(provider);
      },
    };
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
    for (const key of keys) {
      if (free <= 0) break;
      keys.delete(key);
      free--;
      this.o.wake(key);
    }
    if (keys.size === 0) this.parked.delete(provider);
  }
}
