// How the reconciler reports management URLs it refuses to call and provider answers it cannot
// use. Kept apart from the reconciler so the rules live in one small place.
import {
  ClientMismatchError,
  ForeignEndpointError,
  UnexpectedResponseError,
} from '../registration/errors.js';
import { Reason } from './conditions.js';
import type { Outcome } from './outcome.js';

/** A provider that answers nonsense is asked again only after this long (no hot loop). */
export const UNEXPECTED_ANSWER_RETRY_MS = 30_000;

/**
 * The outcome for an error about where a call may go or what came back, or undefined for any
 * other error. A foreign or mismatched management URL needs a person (fix the Secret, or list the
 * origin on the provider): stalled, and a change to either wakes the client again.
 */
export function classifyEndpointError(error: unknown): Outcome | undefined {
  if (error instanceof ForeignEndpointError) {
    return { kind: 'stalled', reason: Reason.UntrustedEndpoint, message: error.message };
  }
  if (error instanceof ClientMismatchError) {
    return { kind: 'stalled', reason: Reason.ClientMismatch, message: error.message };
  }
  if (error instanceof UnexpectedResponseError) {
    return {
      kind: 'retry',
      reason: Reason.UnexpectedResponse,
      message: error.message,
      retryAfterMs: UNEXPECTED_ANSWER_RETRY_MS,
    };
  }
  return undefined;
}
