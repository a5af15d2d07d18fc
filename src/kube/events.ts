// Kubernetes Events for externally visible actions. Identical events for one object are
// suppressed for an hour so that a condition re-evaluated on every resync does not write. Warnings
// of one kind (object + reason) form one series, like client-go's event aggregation: a repeat with
// another message (a new attempt time, a new error text) bumps the count and message of the Event
// already written instead of adding one Event per attempt.
import { randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from './informer.js';
import { isKubeStatus, type KubeRest } from './rest.js';

export type EventType = 'Normal' | 'Warning';

interface Series {
  namespace: string;
  /** Name of the Event written for this series; undefined until its create succeeded. */
  name?: string;
  count: number;
  message: string;
  at: number;
  /** Writes of one series go one after the other (count bumps must not race the create). */
  chain: Promise<void>;
}

export class EventRecorder {
  private readonly recent = new Map<string, number>();
  private readonly series = new Map<string, Series>();

  constructor(
    private readonly rest: KubeRest,
    private readonly component: string,
    private readonly log: Logger,
    private readonly instance: string = process.env.POD_NAME ?? 'local',
    private readonly suppressMs = 60 * 60_000,
  ) {}

  /** Fire and forget: an Event that cannot be written must not fail the reconcile. */
  record(obj: KubernetesObject, type: EventType, reason: string, message: string): void {
    const meta = obj.metadata ?? {};
    const dedupKey = `${meta.uid}|${type}|${reason}|${message}`;
    const now = Date.now();
    const last = this.recent.get(dedupKey);
    if (last !== undefined && now - last < this.suppressMs) return;
    this.recent.set(dedupKey, now);
    if (this.recent.size > 10_000 || this.series.size > 10_000) this.prune(now);
    const text = message.slice(0, 1024);
    if (type === 'Warning') {
      const key = `${meta.uid}|${reason}`;
      const s = this.series.get(key);
      if (s && now - s.at < this.suppressMs) {
        s.count++;
        s.message = text;
        s.at = now;
        s.chain = s.chain.then(() => this.bump(obj, type, reason, s));
        return;
      }
      const fresh: Series = {
        namespace: meta.namespace ?? 'default',
        count: 1,
        message: text,
        at: now,
        chain: Promise.resolve(),
      };
      fresh.chain = this.create(obj, type, reason, text, 1).then((name) => {
        if (name) fresh.name = name;
      });
      this.series.set(key, fresh);
      return;
    }
    void this.create(obj, type, reason, text, 1);
  }

  /** Number of Events written or bumped for a Warning series (tests read it). */
  seriesCount(obj: KubernetesObject, reason: string): number {
    return this.series.get(`${obj.metadata?.uid}|${reason}`)?.count ?? 0;
  }

  private async bump(obj: KubernetesObject, type: EventType, reason: string, s: Series): Promise<void> {
    const now = new Date().toISOString();
    if (s.name) {
      try {
        await this.rest.patch(`/api/v1/namespaces/${s.namespace}/events/${s.name}`, 'merge', {
          count: s.count,
          message: s.message,
          lastTimestamp: now,
        });
        return;
      } catch (error) {
        if (!isKubeStatus(error, 404)) {
          this.warn(reason, obj, error);
          return;
        }
        // The Event expired (the apiserver keeps them about an hour): start it again.
      }
    }
    const name = await this.create(obj, type, reason, s.message, s.count);
    if (name) s.name = name;
  }

  private async create(
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
    count: number,
  ): Promise<string | undefined> {
    const meta = obj.metadata ?? {};
    const namespace = meta.namespace ?? 'default';
    const time = new Date().toISOString();
    const name = eventName(meta.name);
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      reason,
      message,
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      action: reason,
      firstTimestamp: time,
      lastTimestamp: time,
      count,
    };
    try {
      await this.rest.create(`/api/v1/namespaces/${namespace}/events`, body);
      return name;
    } catch (error) {
      this.warn(reason, obj, error);
      return undefined;
    }
  }

  private warn(reason: string, obj: KubernetesObject, error: unknown): void {
    this.log.warn(
      { reason, object: `${obj.metadata?.namespace}/${obj.metadata?.name}`, err: errorMessage(error) },
      'event not recorded',
    );
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= this.suppressMs) this.recent.delete(k);
    for (const [k, s] of this.series) if (now - s.at >= this.suppressMs) this.series.delete(k);
  }
}

/** `<object>.<16 hex>`, cut to the 253 characters an Event name may have (object names reach 253 too). */
export function eventName(objectName: string | undefined): string {
  const base = (objectName ?? 'object').slice(0, 253 - 17).replace(/[-.]+$/, '');
  return `${base}.${randomBytes(8).toString('hex')}`;
}
