// Kubernetes Events for externally visible actions. Identical events for one object are
// suppressed for an hour so that a condition re-evaluated on every resync does not write.
import { randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from './informer.js';
import type { KubeRest } from './rest.js';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly recent = new Map<string, number>();

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
    if (this.recent.size > 10_000) this.prune(now);
    const namespace = meta.namespace ?? 'default';
    const time = new Date(now).toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: eventName(meta.name), namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      action: reason,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    };
    this.rest.create(`/api/v1/namespaces/${namespace}/events`, body).catch((error: unknown) => {
      this.log.warn(
        { reason, object: `${namespace}/${meta.name}`, err: errorMessage(error) },
        'event not recorded',
      );
    });
  }

  private prune(now: number): void {
    for (const [k, t] of this.recent) if (now - t >= this.suppressMs) this.recent.delete(k);
  }
}

/** `<object>.<16 hex>`, cut to the 253 characters an Event name may have (object names reach 253 too). */
export function eventName(objectName: string | undefined): string {
  const base = (objectName ?? 'object').slice(0, 253 - 17).replace(/[-.]+$/, '');
  return `${base}.${randomBytes(8).toString('hex')}`;
}
