// What one reconcile decided, and the errors that carry such a decision out of nested steps.
import { Reason, type ReasonName } from './conditions.js';

/** A condition besides Ready/Reconciling/Stalled that an outcome sets (e.g. Managed=False). */
export interface ExtraCondition {
  type: 'Managed' | 'Synced' | 'PreviousClientDeleted';
  status: 'True' | 'False' | 'Unknown';
  reason: ReasonName;
  message: string;
}

export type Outcome =
  | { kind: 'ready'; reason: ReasonName; message: string; conditions?: ExtraCondition[] }
  /** Needs a person (or a new spec); not retried on a timer. */
  | { kind: 'stalled'; reason: ReasonName; message: string }
  /**
   * Transient; the work queue retries with backoff (at least retryAfterMs when given, and no later
   * than retryBeforeMs, e.g. a deletion deadline).
   */
  | { kind: 'retry'; reason: ReasonName; message: string; retryAfterMs?: number; retryBeforeMs?: number };

/**
 * Provider answers that will not change for the same spec: wait for a new generation. (A stalled
 * UnexpectedResponse is an unusable success answer to a registration: retrying could register
 * one orphaned client per attempt.)
 */
export const STALLED_FOR_GENERATION: ReadonlySet<string> = new Set([
  Reason.InvalidMetadata,
  Reason.AdoptionFailed,
  Reason.UnexpectedResponse,
]);

/** Carries a decided outcome out of nested steps. */
export class OutcomeError extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.message);
    this.name = 'OutcomeError';
  }
}

/** A Secret with the name we need exists and belongs to someone else. */
export class SecretConflictError extends Error {
  constructor(readonly secretName: string) {
    super(`Secret ${secretName} is not owned by this OidcClient`);
    this.name = 'SecretConflictError';
  }
}

/**
 * A failure already reported on the status; `retryAfterMs` is the earliest next attempt (e.g.
 * Retry-After), `retryBeforeMs` the latest (e.g. the deletion deadline), whatever the backoff says.
 */
export class ReconcileError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    readonly retryBeforeMs?: number,
    /** The Ready reason reported, when known (the controller limits providers that do not answer). */
    readonly reason?: ReasonName,
  ) {
    super(message);
    this.name = 'ReconcileError';
  }
}
