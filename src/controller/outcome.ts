// What one reconcile decided, and the errors that carry such a decision out of nested steps.
import { Reason, type ReasonName } from './conditions.js';

export type Outcome =
  | { kind: 'ready'; reason: ReasonName; message: string }
  /** Needs a person (or a new spec); not retried on a timer. */
  | { kind: 'stalled'; reason: ReasonName; message: string }
  /** Transient; the work queue retries with backoff (at least retryAfterMs when given). */
  | { kind: 'retry'; reason: ReasonName; message: string; retryAfterMs?: number };

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

/** A failure already reported on the status; `retryAfterMs` hints the queue's next attempt. */
export class ReconcileError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    /** The Ready reason reported, when known (the controller limits providers that do not answer). */
    readonly reason?: ReasonName,
  ) {
    super(message);
    this.name = 'ReconcileError';
  }
}
