// When each client's next drift check (a GET at the provider) is due. In memory, so a restart
// spreads checks over one interval again.
import type { OidcClient } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { refreshIntervalOf } from './client-control.js';
import { clientKey } from './names.js';

export interface ResyncScheduleOptions {
  events: EventRecorder;
  /** Drift checks happen once per interval per client, spread with jitter. */
  resyncIntervalMs: number;
  /** The shortest spec.refreshInterval honoured (shorter ones are raised to it). Default 1 min. */
  minRefreshIntervalMs?: number;
}

export class ResyncSchedule {
  /** Next drift check per key. */
  private readonly nextResync = new Map<string, number>();
  /** Each client's drift-check period (spec.refreshInterval or the default); 0 = no periodic checks. */
  private readonly intervals = new Map<string, number>();

  constructor(private readonly o: ResyncScheduleOptions) {}

  forget(key: string): void {
    this.nextResync.delete(key);
    this.intervals.delete(key);
  }

  /** Takes the client's drift-check period from its spec; says so when the operator's floor raised it. */
  applyRefreshInterval(cr: OidcClient, specChanged: boolean): void {
    const key = clientKey(cr);
    const { ms, raised } = refreshIntervalOf(cr, {
      defaultMs: this.o.resyncIntervalMs,
      minMs: this.o.minRefreshIntervalMs ?? 60_000,
    });
    const before = this.intervals.get(key);
    this.intervals.set(key, ms);
    if (ms === 0) this.nextResync.delete(key);
    // A shorter period than the one scheduled applies at once (a longer one from the next check).
    else if (before !== undefined && ms < before) {
      const at = this.nextResync.get(key);
      if (at !== undefined && at > Date.now() + ms) this.schedule(key);
    }
    if (raised && specChanged)
      this.o.events.record(
        cr,
        'Warning',
        'RefreshIntervalRaised',
        `spec.refreshInterval ${cr.spec.refreshInterval} is below this operator's minimum; checking every ${ms / 1000} s instead`,
      );
  }

  /** Whether a drift check is due now. */
  due(key: string): boolean {
    const interval = this.interval(key);
    if (interval === 0) return false;
    const at = this.nextResync.get(key);
    if (at === undefined) {
      // First sight after start: spread the first drift checks over one interval.
      this.nextResync.set(key, Date.now() + Math.random() * interval);
      return false;
    }
    return Date.now() >= at;
  }

  /** Whether a next drift check is scheduled at all. */
  scheduled(key: string): boolean {
    return this.nextResync.has(key);
  }

  /** The next drift check in one interval ±10% (jitter keeps clients from checking in step). */
  schedule(key: string): void {
    const interval = this.interval(key);
    if (interval === 0) this.nextResync.delete(key);
    else this.nextResync.set(key, Date.now() + interval * (0.9 + Math.random() * 0.2));
  }

  /** Moves the next drift check to a given time (e.g. the end of a rotation's overlap). */
  scheduleAt(key: string, at: number): void {
    this.nextResync.set(key, at);
  }

  /** When to look at the client again; undefined without periodic checks. */
  delay(key: string): number | undefined {
    const interval = this.interval(key);
    if (interval === 0) return undefined;
    const at = this.nextResync.get(key) ?? Date.now() + interval;
    return Math.max(Math.min(1000, interval), at - Date.now());
  }

  private interval(key: string): number {
    return this.intervals.get(key) ?? this.o.resyncIntervalMs;
  }
}
