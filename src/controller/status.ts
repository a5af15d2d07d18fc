// The OidcClient status a reconcile outcome leads to, and the merge patch that writes a status
// (of any of our kinds) — or nothing, when it equals what is stored (idle means idle).
import type { Condition, OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { Reason, removeCondition, setCondition } from './conditions.js';
import type { Outcome } from './outcome.js';

/** Ready always; Reconciling while retrying; Stalled when a person must act; Synced when values are not kept. */
export function nextStatus(
  cr: OidcClient,
  status: OidcClientStatus,
  outcome: Outcome,
  now: string,
): OidcClientStatus {
  const gen = cr.metadata.generation;
  const { reason, message } = outcome;
  const ready = outcome.kind === 'ready';
  const ignored = status.ignoredFields ?? [];
  const put = (list: Condition[], type: string, value: Condition['status'], why: string, text: string) =>
    setCondition(list, { type, status: value, reason: why, message: text }, gen, now);
  let conditions = put(status.conditions ?? [], 'Ready', ready ? 'True' : 'False', reason, message);
  conditions =
    outcome.kind === 'retry'
      ? put(conditions, 'Reconciling', 'True', reason, message)
      : removeCondition(conditions, 'Reconciling');
  conditions =
    outcome.kind === 'stalled'
      ? put(conditions, 'Stalled', 'True', reason, message)
      : removeCondition(conditions, 'Stalled');
  const extra = outcome.kind === 'ready' ? (outcome.conditions ?? []) : [];
  const synced = extra.find((c) => c.type === 'Synced');
  if (synced) conditions = put(conditions, 'Synced', synced.status, synced.reason, synced.message);
  else
    conditions =
      ready && ignored.length > 0
        ? put(
            conditions,
            'Synced',
            'False',
            Reason.ValueNotAccepted,
            `not kept by the provider: ${ignored.join(', ')}`,
          )
        : removeCondition(conditions, 'Synced');
  // Managed=False stays while the client is unmanaged, also through transient failures.
  const managed = extra.find((c) => c.type === 'Managed');
  if (managed) conditions = put(conditions, 'Managed', managed.status, managed.reason, managed.message);
  else if (ready) conditions = removeCondition(conditions, 'Managed');
  // PreviousClientDeleted=False while a rotation's previous client waits for another DELETE.
  const previous = extra.find((c) => c.type === 'PreviousClientDeleted');
  if (previous)
    conditions = put(conditions, previous.type, previous.status, previous.reason, previous.message);
  else if (ready) conditions = removeCondition(conditions, 'PreviousClientDeleted');
  const next: OidcClientStatus = { ...status, conditions, observedGeneration: gen };
  if (ignored.length === 0) delete next.ignoredFields;
  if (ready && !next.lastSyncTime) next.lastSyncTime = now;
  return next;
}

/** A merge patch replacing the whole status (vanished keys as null, nested ones too); undefined when nothing changed. */
export function statusPatch<S extends object>(
  old: S,
  next: S,
): { status: Record<string, unknown> } | undefined {
  if (stableJson(next) === stableJson(old)) return undefined;
  return { status: withNulls(old as Record<string, unknown>, next as Record<string, unknown>) };
}

/** `next` with keys that vanished since `old` set to null, in nested objects too (merge patches merge them). */
function withNulls(old: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...next };
  for (const [k, was] of Object.entries(old)) {
    const now = out[k];
    if (now === undefined) out[k] = null;
    else if (isPlainObject(was) && isPlainObject(now)) out[k] = withNulls(was, now);
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => a.localeCompare(b)),
        )
      : val,
  );
}
