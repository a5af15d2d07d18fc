// Two replicas of the compiled operator with leader election, run the way a Deployment runs them:
// a replica that dies is started again after a short delay (same identity = container restart,
// new identity = replacement Pod). The chaos driver kills, hands over and restarts through this.
import { KubeConfig } from '@kubernetes/client-node';
import { KubeRest } from '../../../src/kube/rest.js';
import { type OperatorProcess, startOperatorProcess } from '../operator-process.js';
import type { ExitInfo } from '../processes.js';
import type { Rng } from './random.js';
import type { Timeline } from './timeline.js';

export interface FleetOptions {
  /** The kubeconfig the operator uses (the chaos proxy's). */
  operatorKubeconfig: string;
  /** Admin kubeconfig straight to the apiserver: reads the Lease. */
  adminKubeconfig: string;
  namespace: string;
  leaseName: string;
  leaseDurationSeconds: number;
  /** Further `run` flags. */
  args: readonly string[];
  replicas?: number;
  timeline: Timeline;
  rng: Rng;
  /** Where the log of a replica that ended is appended (kept for the report). */
  onLog?: (identity: string, text: string) => void;
}

/** 'stop-timeout': SIGTERM did not end it within the grace period (it was SIGKILLed then). */
export type ExitCause = 'sigkill' | 'sigterm' | 'stop-timeout' | 'lost-leadership' | 'crash';

export interface ReplicaExit {
  identity: string;
  at: number;
  code: number | null;
  signal: string | null;
  cause: ExitCause;
}

interface Slot {
  index: number;
  generation: number;
  identity: string;
  proc: OperatorProcess | undefined;
  /** Set when we signalled it, so its exit is not taken for a crash. */
  expected?: 'sigkill' | 'sigterm';
  restarting?: Promise<void>;
}

const LOST_LEADERSHIP = 'lost leadership; exiting';

export class OperatorFleet {
  readonly exits: ReplicaExit[] = [];
  private readonly slots: Slot[] = [];
  private readonly rest: KubeRest;
  private cachedLeader = '';
  private poller?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly o: FleetOptions) {
    const kc = new KubeConfig();
    kc.loadFromFile(o.adminKubeconfig);
    this.rest = new KubeRest(kc);
  }

  async start(): Promise<void> {
    const n = this.o.replicas ?? 2;
    for (let i = 0; i < n; i++)
      this.slots.push({ index: i, generation: 0, identity: this.identityFor(i, 0), proc: undefined });
    await Promise.all(this.slots.map((s) => this.launch(s)));
    const poll = async () => {
      this.cachedLeader = (await this.leaseHolder().catch(() => this.cachedLeader)) ?? '';
      if (!this.stopping) this.poller = setTimeout(() => void poll(), 500);
    };
    await poll();
  }

  /** Identity of the Lease holder as last seen (refreshed every 0.5 s). */
  get leaderIdentity(): string {
    return this.cachedLeader;
  }

  running(): OperatorProcess[] {
    return this.slots.flatMap((s) => (s.proc && s.proc.exit === undefined ? [s.proc] : []));
  }

  async leaseHolder(): Promise<string | undefined> {
    const lease = await this.rest.get<{ spec?: { holderIdentity?: string } }>(
      `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases/${this.o.leaseName}`,
    );
    return lease.spec?.holderIdentity;
  }

  /** Waits until a running replica holds the Lease; returns its identity. */
  async waitForLeader(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const holder = await this.leaseHolder().catch(() => undefined);
      if (holder && this.slotOf(holder)?.proc?.exit === undefined) return holder;
      if (Date.now() > deadline)
        throw new Error(
          `no running operator replica holds the Lease after ${timeoutMs} ms (holder: ${holder ?? 'none'})`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /**
   * SIGKILL now, synchronously (callable from inside the registration server's answer hook).
   * `which`: the cached leader, or any other running replica.
   */
  killNow(
    which: 'leader' | 'standby',
    kind: 'sigkill' | 'sigkill-after-post',
    why: string,
  ): string | undefined {
    const slot = this.pick(which);
    if (!slot?.proc) return undefined;
    slot.expected = 'sigkill';
    slot.proc.kill('SIGKILL');
    this.o.timeline.add(kind, `${slot.identity} (${which}) ${why}`);
    return slot.identity;
  }

  /** SIGTERM to the leader: it drains, releases the Lease, the standby takes over. */
  async handover(): Promise<string | undefined> {
    const slot = this.pick('leader');
    if (!slot?.proc) return undefined;
    slot.expected = 'sigterm';
    this.o.timeline.add('handover', `SIGTERM to leader ${slot.identity}`);
    await slot.proc.stop(30_000);
    return slot.identity;
  }

  /** Starts every slot whose process is gone (and not already being restarted). */
  async ensureRunning(): Promise<void> {
    await Promise.all(
      this.slots.map((s) =>
        s.proc?.exit === undefined && s.proc ? undefined : (s.restarting ?? this.restart(s, 0)),
      ),
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.poller);
    await Promise.allSettled(
      this.slots.map(async (s) => {
        await s.restarting;
        if (!s.proc) return;
        s.expected = 'sigterm';
        // A Pod's default terminationGracePeriodSeconds.
        await s.proc.stop(30_000);
      }),
    );
    await this.rest.close();
  }

  /** Health of every running replica: /healthz status by identity. */
  async health(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const s of this.slots) {
      if (!s.proc || s.proc.exit !== undefined) continue;
      out[s.identity] = await s.proc
        .get('/healthz')
        .then((r) => r.status)
        .catch(() => 0);
    }
    return out;
  }

  private identityFor(index: number, generation: number): string {
    return `chaos-${String.fromCharCode(97 + index)}${generation === 0 ? '' : `-${generation}`}`;
  }

  private slotOf(identity: string): Slot | undefined {
    return this.slots.find((s) => s.identity === identity);
  }

  /** The leader as last seen; between two holders (or when it just died), any running replica. */
  private pick(which: 'leader' | 'standby'): Slot | undefined {
    const alive = this.slots.filter((s) => s.proc && s.proc.exit === undefined && !s.expected);
    const leader = alive.find((s) => s.identity === this.cachedLeader);
    if (which === 'leader') return leader ?? (alive.length > 0 ? this.o.rng.pick(alive) : undefined);
    const others = alive.filter((s) => s !== leader);
    return others.length > 0 ? this.o.rng.pick(others) : undefined;
  }

  private async launch(slot: Slot): Promise<void> {
    const proc = await startOperatorProcess({
      name: slot.identity,
      kubeconfigPath: this.o.operatorKubeconfig,
      compiled: true,
      env: { POD_NAME: slot.identity },
      startTimeoutMs: 60_000,
      args: [
        '--leader-elect',
        `--leader-election-namespace=${this.o.namespace}`,
        `--leader-election-id=${this.o.leaseName}`,
        `--lease-duration=${this.o.leaseDurationSeconds}s`,
        ...this.o.args,
      ],
    });
    slot.proc = proc;
    slot.expected = undefined;
    this.o.timeline.add('operator-start', `${slot.identity} pid ${proc.pid}`);
    void proc.exited.then((info) => this.onExit(slot, proc, info));
  }

  private onExit(slot: Slot, proc: OperatorProcess, info: ExitInfo): void {
    const text = proc.output();
    // Its last words were "stopped": a SIGTERM that arrived while it was exiting anyway killed it.
    const stopped = /"msg":"stopped"\}\s*$/.test(text);
    const finished = info.code === 0 || (stopped && info.signal === 'SIGTERM');
    let cause: ExitCause;
    if (slot.expected === 'sigkill') cause = 'sigkill';
    else if (text.includes(LOST_LEADERSHIP) && (info.code === 1 || stopped)) cause = 'lost-leadership';
    else if (slot.expected === 'sigterm' && finished) cause = 'sigterm';
    else if (slot.expected === 'sigterm' && info.signal === 'SIGKILL') cause = 'stop-timeout';
    else cause = 'crash';
    this.exits.push({ identity: slot.identity, at: Date.now(), code: info.code, signal: info.signal, cause });
    this.o.timeline.add(
      'operator-exit',
      `${slot.identity}: ${cause} (code ${info.code}, signal ${info.signal})`,
    );
    this.o.onLog?.(slot.identity, text);
    void proc.stop(1_000); // removes its temp dir; the output was kept above
    if (!this.stopping && slot.proc === proc)
      slot.restarting = this.restart(slot, 500 + this.o.rng.int(0, 2500));
  }

  private async restart(slot: Slot, delayMs: number): Promise<void> {
    try {
      await new Promise((r) => setTimeout(r, delayMs));
      if (this.stopping) return;
      // Half the time the same Pod's container restarts, otherwise a new Pod replaces it.
      if (this.o.rng.next() < 0.5) {
        slot.generation++;
        slot.identity = this.identityFor(slot.index, slot.generation);
      }
      for (let attempt = 1; ; attempt++) {
        try {
          await this.launch(slot);
          return;
        } catch (error) {
          // The apiserver may be restarting: the operator then fails to start; try again like a kubelet.
          this.o.timeline.add(
            'operator-exit',
            `${slot.identity} failed to start (attempt ${attempt}): ${String(error).slice(0, 200)}`,
          );
          if (attempt >= 10 || this.stopping) throw error;
          await new Promise((r) => setTimeout(r, 2_000 * attempt));
        }
      }
    } finally {
      slot.restarting = undefined;
    }
  }
}
