import { performance } from 'node:perf_hooks';
import type { KubeConfig, V1ObjectMeta } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { KubeConnection } from './config.js';
import { DeadlineFence, type Fence } from './fence.js';
import { isKubeStatus, KubeRest } from './rest.js';

/** A coordination.k8s.io/v1 Lease as it is on the wire (MicroTime fields are strings). */
interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
interface V1Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  /** Where the Lease lives; Lease calls get their own connection, so a busy operator cannot delay a renewal. */
  kubeConfig: KubeConnection | KubeConfig;
  namespace: string;
  /** Name of the coordination.k8s.io/v1 Lease. */
  name: string;
  /** Unique per process (e.g. the pod name); written to spec.holderIdentity. */
  identity: string;
  /** How long candidates wait, after last seeing the lease change, before taking it over. Default 15. */
  leaseDurationSeconds?: number;
  /** How long the leader keeps trying to renew before it gives up leadership. Default 10. */
  renewDeadlineSeconds?: number;
  /** Interval between acquire and renew attempts. Default 2. */
  retryPeriodSeconds?: number;
  log?: Logger;
  /**
   * Called on acquiring the lease; `signal` aborts when leadership ends (lost, stop(), or no renewal
   * within renewDeadline, i.e. before any successor may take over). `fence` carries the same signal
   * and also reports an overdue deadline when read before its timer ran (after a process pause).
   */
  onStartedLeading: (signal: AbortSignal, fence: Fence) => void | Promise<void>;
  /** Called once leadership ended: at once when lost, after releasing the lease on stop(). */
  onStoppedLeading?: () => void;
}

/** The Lease fields leader election uses, read leniently (the API omits empty ones). */
interface LeaderRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: Date | undefined;
  renewTime: Date | undefined;
  leaseTransitions: number;
}

type Attempt = 'held' | 'held-by-other' | 'failed';

// Candidates wait retryPeriod plus up to 20 % so that replicas started together do not poll in step.
const JITTER = 0.2;

function toDate(value: unknown): Date | undefined {
  // client-node declares MicroTime fields as Date but hands back the raw string.
  if (value instanceof Date) return value;
  if (typeof value !== 'string' || value === '') return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * MicroTime is RFC 3339 with exactly six fractional digits: the API server rejects
 * Date#toISOString()'s three.
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function readRecord(lease: V1Lease): LeaderRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: toDate(spec.acquireTime),
    renewTime: toDate(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

function recordKey(r: LeaderRecord): string {
  return JSON.stringify([
    r.holderIdentity,
    r.leaseDurationSeconds,
    r.acquireTime?.getTime(),
    r.renewTime?.getTime(),
    r.leaseTransitions,
  ]);
}

function toSpec(r: LeaderRecord): LeaseSpec {
  return {
    holderIdentity: r.holderIdentity,
    leaseDurationSeconds: r.leaseDurationSeconds,
    ...(r.acquireTime ? { acquireTime: microTime(r.acquireTime) } : {}),
    ...(r.renewTime ? { renewTime: microTime(r.renewTime) } : {}),
    leaseTransitions: r.leaseTransitions,
  };
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function positive(value: number, what: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${what} must be a positive number, got ${value}`);
  return value;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics:
 *
 * - A candidate takes the lease when it is missing, released (empty holder) or expired. Expiry is
 *   judged on the local monotonic clock: leaseDurationSeconds (from the Lease) after this process
 *   last saw the record change, so clock skew between replicas cannot shorten a lease.
 * - Every write carries the resourceVersion it read, so of two racing candidates one gets 409 and
 *   retries next period.
 * - The leader renews every retryPeriod; when it cannot renew for renewDeadline (< leaseDuration,
 *   so before anyone may take over) it stops leading. Unlike client-go it also steps down at once
 *   when it sees another holder.
 * - After losing, it waits for onStartedLeading's work to finish, then competes again.
 */
export class LeaderElector {
  private readonly rest: KubeRest;
  private readonly opts: LeaderElectorOptions;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger | undefined;
  private readonly stopping = new AbortController();
  private releaseOnStop = true;
  private loop: Promise<void> | undefined;
  private leading = false;
  /** The current term's fence: its signal is the one onStartedLeading got. */
  private term: DeadlineFence | undefined;
  /** Last Lease read or written: the base (with resourceVersion) of the next update. */
  private lease: V1Lease | undefined;
  private observed: LeaderRecord | undefined;
  private observedKey = '';
  /** performance.now() when the record last changed as seen by this process. */
  private observedAt = 0;

  constructor(opts: LeaderElectorOptions) {
    this.opts = opts;
    if (!opts.identity) throw new Error('LeaderElector: identity must not be empty');
    const lease = opts.leaseDurationSeconds ?? 15;
    const renew = positive(opts.renewDeadlineSeconds ?? 10, 'renewDeadlineSeconds');
    const retry = positive(opts.retryPeriodSeconds ?? 2, 'retryPeriodSeconds');
    if (!Number.isInteger(lease) || lease < 1) {
      throw new Error(`leaseDurationSeconds must be a positive integer (the Lease field is), got ${lease}`);
    }
    // The same constraints as client-go: a leader must give up before others may take over, and
    // must get more than one renew attempt before it gives up.
    if (lease <= renew) throw new Error('leaseDurationSeconds must be greater than renewDeadlineSeconds');
    if (renew <= retry * (1 + JITTER)) {
      throw new Error(`renewDeadlineSeconds must be greater than ${1 + JITTER} × retryPeriodSeconds`);
    }
    this.leaseDurationSeconds = lease;
    this.renewDeadlineMs = renew * 1000;
    this.retryPeriodMs = retry * 1000;
    this.rest = new KubeRest(opts.kubeConfig);
    this.log = opts.log?.child({
      component: 'leader-election',
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
  }

  /** Starts competing for the lease in the background; call once. */
  start(): void {
    if (this.loop) throw new Error('LeaderElector already started');
    this.loop = this.run().catch((error: unknown) => {
      // A bug, not an API failure (those are handled per attempt): never keep claiming leadership.
      this.log?.error({ error: describeError(error) }, 'leader election loop failed');
      if (this.leading) {
        this.leading = false;
        this.term?.end('leader election failed');
        this.notifyStopped();
      }
    });
  }

  /** True between acquiring the lease and stepping down. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Stops competing. A leader aborts the onStartedLeading signal, keeps renewing until that work has
   * finished, then (release, the default) hands the lease over at once: empty holder and a 1 s
   * duration, like client-go's ReleaseOnCancel. With release false the lease simply runs out.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.releaseOnStop = opts.release ?? true;
    this.stopping.abort();
    await this.loop;
    await this.rest.close();
  }

  private async run(): Promise<void> {
    const stopped = this.stopping.signal;
    while (!stopped.aborted) {
      const attemptedAt = performance.now();
      const attempt = await this.tryAcquireOrRenew(this.renewDeadlineMs);
      if (attempt !== 'held') {
        await sleep(this.retryPeriodMs * (1 + Math.random() * JITTER), stopped);
        continue;
      }
      // Acquired while stop() was pending: never start leading (the lease is released below).
      if (stopped.aborted) break;
      await this.lead(attemptedAt);
    }
    // No-op unless the lease still names us (e.g. acquired during stop, or an earlier release failed).
    if (this.releaseOnStop) await this.release();
  }

  /**
   * One term of leadership: runs the callback, renews until lost or stopped. Renewals count from
   * when they were sent: others may see the write before this process sees the response.
   */
  private async lead(acquiredAt: number): Promise<void> {
    const stopped = this.stopping.signal;
    const term = new DeadlineFence();
    this.term = term;
    this.extendTerm(term, acquiredAt);
    this.leading = true;
    this.log?.info({ leaseTransitions: this.observed?.leaseTransitions }, 'acquired leadership');
    let settled = false;
    const work = (async () => this.opts.onStartedLeading(term.signal, term))()
      .catch((error: unknown) => {
        this.log?.error({ error: describeError(error) }, 'onStartedLeading failed');
      })
      .finally(() => {
        settled = true;
      });

    let lastRenew = acquiredAt;
    let lostBecause: string | undefined;
    for (;;) {
      if (stopped.aborted) {
        term.end('leader election stopped');
        // Keep the lease while the work winds down, so no successor overlaps with it.
        await Promise.race([work, sleep(this.retryPeriodMs)]);
        if (settled) break;
      } else {
        await sleep(this.retryPeriodMs, stopped);
        if (stopped.aborted) continue;
      }
      const attemptedAt = performance.now();
      const remaining = this.renewDeadlineMs - (attemptedAt - lastRenew);
      const attempt = await this.tryAcquireOrRenew(Math.max(Math.ceil(remaining), 1));
      if (attempt === 'held' && !stopped.aborted && term.signal.aborted) {
        // The renewal came back after the fence closed (e.g. the process was paused): the work has
        // stopped, so holding on would leave a leader that does nothing.
        lostBecause = `no renewal succeeded within ${this.renewDeadlineMs / 1000} s`;
        break;
      } else if (attempt === 'held') {
        lastRenew = attemptedAt;
        this.extendTerm(term, attemptedAt);
      } else if (attempt === 'held-by-other') {
        lostBecause = `the lease is now held by ${this.observed?.holderIdentity}`;
        break;
      } else if (performance.now() - lastRenew >= this.renewDeadlineMs) {
        lostBecause = `no renewal succeeded within ${this.renewDeadlineMs / 1000} s`;
        break;
      }
    }

    if (lostBecause !== undefined) {
      this.leading = false;
      term.end(`leadership lost: ${lostBecause}`);
      this.log?.warn({ reason: lostBecause }, 'lost leadership');
      this.notifyStopped();
      // A new term must not overlap with the old term's work.
      await work;
      return;
    }
    if (this.releaseOnStop) await this.release();
    this.leading = false;
    this.log?.info('stopped leading');
    this.notifyStopped();
  }

  /**
   * A successor counts leaseDuration from when it saw this renewal, which is after `sentAt`; the
   * fence closes renewDeadline after `sentAt`, leaving leaseDuration - renewDeadline of margin.
   */
  private extendTerm(term: DeadlineFence, sentAt: number): void {
    term.extend(sentAt + this.renewDeadlineMs);
  }

  private notifyStopped(): void {
    try {
      this.opts.onStoppedLeading?.();
    } catch (error) {
      this.log?.error({ error: describeError(error) }, 'onStoppedLeading failed');
    }
  }

  /** Records what the API returned; the expiry clock restarts only when the record changed. */
  private observe(lease: V1Lease): LeaderRecord {
    this.lease = lease;
    const record = readRecord(lease);
    const key = recordKey(record);
    if (key !== this.observedKey || !this.observed) {
      this.observed = record;
      this.observedKey = key;
      this.observedAt = performance.now();
    }
    return record;
  }

  private holdsLease(): boolean {
    return this.observed?.holderIdentity === this.opts.identity;
  }

  private observedLeaseValid(): boolean {
    if (!this.observed) return false;
    return this.observedAt + this.observed.leaseDurationSeconds * 1000 > performance.now();
  }

  /** client-go's tryAcquireOrRenew: optimistic renew, else read, then create / take over / renew. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<Attempt> {
    const signal = AbortSignal.timeout(timeoutMs);
    const { name, namespace, identity } = this.opts;
    const now = new Date();
    const fresh: LeaderRecord = {
      holderIdentity: identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: 0,
    };

    // Fast path: the leader assumes its last write is still current.
    if (this.lease && this.observed && this.holdsLease() && this.observedLeaseValid()) {
      const record = {
        ...fresh,
        acquireTime: this.observed.acquireTime,
        leaseTransitions: this.observed.leaseTransitions,
      };
      try {
        this.observe(await this.replace(this.lease, record, signal));
        return 'held';
      } catch (error) {
        this.log?.debug({ error: describeError(error) }, 'optimistic renew failed; re-reading the lease');
      }
    }

    let current: V1Lease;
    try {
      current = await this.rest.get<V1Lease>(this.leasePath(), undefined, signal);
    } catch (error) {
      if (!isKubeStatus(error, 404)) {
        this.log?.warn({ error: describeError(error) }, 'reading the lease failed');
        return 'failed';
      }
      try {
        const body: V1Lease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: toSpec(fresh),
        };
        this.observe(
          await this.rest.create<V1Lease>(
            `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
            body,
            undefined,
            signal,
          ),
        );
        return 'held';
      } catch (createError) {
        // 409: another candidate created it first; we see it on the next read.
        this.log?.debug({ error: describeError(createError) }, 'creating the lease failed');
        return 'failed';
      }
    }

    const old = this.observe(current);
    if (old.holderIdentity !== '' && !this.holdsLease() && this.observedLeaseValid()) return 'held-by-other';
    const record = this.holdsLease()
      ? { ...fresh, acquireTime: old.acquireTime, leaseTransitions: old.leaseTransitions }
      : { ...fresh, leaseTransitions: old.leaseTransitions + 1 };
    try {
      this.observe(await this.replace(current, record, signal));
      return 'held';
    } catch (error) {
      // 409: someone else wrote since our read (renewed or took over first).
      this.log?.debug({ error: describeError(error) }, 'updating the lease failed');
      return 'failed';
    }
  }

  private leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.opts.namespace}/leases/${this.opts.name}`;
  }

  private replace(base: V1Lease, record: LeaderRecord, signal: AbortSignal): Promise<V1Lease> {
    // base.metadata carries resourceVersion: a stale base fails with 409 instead of overwriting.
    const body = { ...base, spec: toSpec(record) };
    return this.rest.replace<V1Lease>(this.leasePath(), body, undefined, signal);
  }

  /** Hands the lease over at once: empty holder, 1 s duration (client-go's ReleaseOnCancel). */
  private async release(): Promise<void> {
    if (!this.lease || !this.observed || !this.holdsLease()) return;
    const now = new Date();
    const record: LeaderRecord = {
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: this.observed.leaseTransitions,
    };
    try {
      this.observe(await this.replace(this.lease, record, AbortSignal.timeout(this.renewDeadlineMs)));
      this.log?.info('released the lease');
    } catch (error) {
      this.log?.warn({ error: describeError(error) }, 'releasing the lease failed; it will expire instead');
    }
  }
}
