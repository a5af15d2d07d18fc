// What the chaos driver did and when: the invariant checker explains orphans with it, and the
// report lists it. Times are epoch milliseconds, comparable with the registration server's log.

export type ChaosEventKind =
  | 'wave'
  | 'update'
  | 'delete'
  | 'provider-fault'
  | 'sigkill'
  | 'sigkill-after-post'
  | 'handover'
  | 'operator-start'
  | 'operator-exit'
  | 'apiserver-down'
  | 'apiserver-up'
  | 'watch-expiry'
  | 'phase';

export interface ChaosEvent {
  at: number;
  kind: ChaosEventKind;
  detail: string;
}

/** Kinds after which a registration whose answer was not stored yet may be lost. */
export const INTERRUPTIONS: ReadonlySet<ChaosEventKind> = new Set([
  'sigkill',
  'sigkill-after-post',
  'apiserver-down',
]);

export class Timeline {
  readonly events: ChaosEvent[] = [];
  readonly t0 = Date.now();

  constructor(private readonly print: (line: string) => void = () => {}) {}

  add(kind: ChaosEventKind, detail: string, at = Date.now()): ChaosEvent {
    const e = { at, kind, detail };
    this.events.push(e);
    this.print(`  [${((at - this.t0) / 1000).toFixed(1).padStart(6)} s] ${kind}: ${detail}`);
    return e;
  }

  count(kind: ChaosEventKind): number {
    return this.events.filter((e) => e.kind === kind).length;
  }

  /** Events of the given kinds in [from, to]. */
  between(from: number, to: number, kinds: ReadonlySet<ChaosEventKind>): ChaosEvent[] {
    return this.events.filter((e) => kinds.has(e.kind) && e.at >= from && e.at <= to);
  }
}
