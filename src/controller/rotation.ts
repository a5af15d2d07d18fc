// Credential rotation: when a new client should replace the current one (on request, on
// spec.rotation.every, before client_secret_expires_at), and what happens to the previous client
// afterwards (kept for the overlap, then deleted). Pure: the reconciler supplies the clock and what
// the management Secret says; the order of writes lives in the reconciler's steps.
import { DEFAULT_OVERLAP_MS, parseDuration } from '../api/duration.js';
import type { OidcClientSpec, RotationStatus } from '../api/types.generated.js';

export { DEFAULT_OVERLAP_MS, parseDuration } from '../api/duration.js';

/** Before client_secret_expires_at: at least this share of the lifetime (or the overlap, if longer). */
const EXPIRY_MARGIN_SHARE = 0.1;

export interface RotationPolicy {
  /** spec.rotation.every; undefined: no scheduled rotation. */
  everyMs?: number;
  overlapMs: number;
}

/** The policy of a valid spec (the CRD's rule ROTATION_LONGER_THAN_OVERLAP has accepted it). */
export function rotationPolicy(spec: OidcClientSpec): RotationPolicy {
  const r = spec.rotation ?? {};
  const policy: RotationPolicy = { overlapMs: DEFAULT_OVERLAP_MS };
  if (r.overlap !== undefined) policy.overlapMs = parseDuration(r.overlap) ?? DEFAULT_OVERLAP_MS;
  const every = r.every === undefined ? undefined : parseDuration(r.every);
  if (every !== undefined) policy.everyMs = every;
  return policy;
}

/** Why a rotation starts. 'Reregister' (the older annotation) deletes the previous client at once. */
export type RotationTrigger =
  | { kind: 'Requested'; value: string }
  | { kind: 'Reregister'; value: string }
  | { kind: 'Schedule'; every: string }
  | { kind: 'Expiry'; expiresAt: number };

export type TriggerKind = RotationTrigger['kind'];

export function isTriggerKind(v: string | undefined): v is TriggerKind {
  return v === 'Requested' || v === 'Reregister' || v === 'Schedule' || v === 'Expiry';
}

export interface RotationInput {
  policy: RotationPolicy;
  /** spec.rotation.every as written (for messages). */
  every?: string;
  /** Values of the rotate / reregister annotations on the OidcClient. */
  request: { rotate?: string; reregister?: string };
  /** The values already carried out (recorded on the management Secret with the registration). */
  handled: { rotate?: string; reregister?: string };
  /** When the current client was registered (ms). */
  issuedAt: number;
  /** client_secret_expires_at of the current client (ms); undefined or 0: never. */
  expiresAt?: number;
  now: number;
}

/** When an expiring secret gets replaced: max(overlap, 10 % of its lifetime) before, not before half-life. */
export function expiryRotationAt(issuedAt: number, expiresAt: number, overlapMs: number): number {
  const lifetime = Math.max(0, expiresAt - issuedAt);
  const margin = Math.max(overlapMs, lifetime * EXPIRY_MARGIN_SHARE);
  // A lifetime shorter than the margin would rotate at once, every time: wait for half of it.
  return Math.max(expiresAt - margin, issuedAt + lifetime / 2);
}

/** The rotation due now (requests first), and when the next timed one is due. */
export function dueRotation(i: RotationInput): { trigger?: RotationTrigger; nextAt?: number } {
  const times: number[] = [];
  if (i.policy.everyMs !== undefined) times.push(i.issuedAt + i.policy.everyMs);
  const expiresAt = i.expiresAt ? i.expiresAt : undefined;
  if (expiresAt !== undefined) times.push(expiryRotationAt(i.issuedAt, expiresAt, i.policy.overlapMs));
  const nextAt = times.length > 0 ? Math.min(...times) : undefined;
  const out: { trigger?: RotationTrigger; nextAt?: number } = {};
  if (nextAt !== undefined) out.nextAt = nextAt;
  const { rotate, reregister } = i.request;
  // A reregister request is the urgent one (no overlap): it wins when both are new.
  if (reregister && reregister !== i.handled.reregister)
    out.trigger = { kind: 'Reregister', value: reregister };
  else if (rotate && rotate !== i.handled.rotate) out.trigger = { kind: 'Requested', value: rotate };
  else if (i.policy.everyMs !== undefined && i.now >= i.issuedAt + i.policy.everyMs)
    out.trigger = { kind: 'Schedule', every: i.every ?? `${i.policy.everyMs / 1000}s` };
  else if (expiresAt !== undefined && i.now >= expiryRotationAt(i.issuedAt, expiresAt, i.policy.overlapMs))
    out.trigger = { kind: 'Expiry', expiresAt };
  return out;
}

/** How long the previous client stays after a rotation of this kind (unknown: the spec's overlap). */
export function overlapFor(trigger: TriggerKind | undefined, policy: RotationPolicy): number {
  return trigger === 'Reregister' ? 0 : policy.overlapMs;
}

export function describeTrigger(t: RotationTrigger): string {
  switch (t.kind) {
    case 'Requested':
      return `requested (rotate=${t.value})`;
    case 'Reregister':
      return `requested (reregister=${t.value})`;
    case 'Schedule':
      return `scheduled (every ${t.every})`;
    case 'Expiry':
      return `client_secret expires at ${new Date(t.expiresAt).toISOString()}`;
  }
}

/**
 * What to do with the previous client: 'switch' (the application Secret may still name it: switch,
 * then record when it goes), 'wait' (until `at`), or 'delete' (now).
 */
export type PreviousPhase = { kind: 'switch' } | { kind: 'wait'; at: number } | { kind: 'delete' };

export function previousPhase(p: {
  /** When the previous client goes, recorded after the switch; undefined: not switched yet. */
  deletionTime?: number;
  /** After a failed DELETE: not before this. */
  retryAt?: number;
  now: number;
}): PreviousPhase {
  if (p.deletionTime === undefined) return { kind: 'switch' };
  const at = Math.max(p.deletionTime, p.retryAt ?? 0);
  return p.now >= at ? { kind: 'delete' } : { kind: 'wait', at };
}

/** Backoff between attempts to delete the previous client: 2 s doubling, at most 5 min. */
export function deleteRetryDelay(failures: number): number {
  return Math.min(300_000, 2_000 * 2 ** Math.max(0, failures - 1));
}

/** The time a Secret annotation or status field holds, in ms; undefined when absent or garbled. */
export function parseTime(v: string | Date | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = v instanceof Date ? v.getTime() : Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

export function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** status.rotation; undefined when there is nothing to show. */
export function rotationStatus(p: {
  previous?: { clientId: string; deletionTime?: number };
  lastRotationTime?: string;
  nextAt?: number;
  lastRequest?: string;
}): RotationStatus | undefined {
  const s: RotationStatus = {};
  if (p.previous) s.previousClientId = p.previous.clientId;
  if (p.previous?.deletionTime !== undefined) s.previousDeletionTime = iso(p.previous.deletionTime);
  if (p.lastRotationTime) s.lastRotationTime = p.lastRotationTime;
  if (p.nextAt !== undefined) s.nextRotationTime = iso(p.nextAt);
  if (p.lastRequest) s.lastRequest = p.lastRequest;
  return Object.keys(s).length > 0 ? s : undefined;
}
