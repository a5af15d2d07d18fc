// What an error thrown by a step means for the OidcClient: stalled (needs a person, with a Warning
// Event) or retried (with the reason the status shows).
import type { Logger } from 'pino';
import type { OidcClient } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { errorMessage } from '../kube/informer.js';
import { KubeApiError } from '../kube/rest.js';
import {
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationError,
  RegistrationUnauthorizedError,
} from '../registration/errors.js';
import { SecretTemplateError } from './app-secret-template.js';
import { Reason } from './conditions.js';
import { RegistrationConflictError, WritePendingError } from './credential-outbox.js';
import { classifyEndpointError } from './endpoint-trust.js';
import { type Outcome, OutcomeError, SecretConflictError } from './outcome.js';
import { ProviderNotReadyError, type ProviderRegistry, providerKeyOf } from './providers.js';

export interface ErrorOutcomeDeps {
  events: EventRecorder;
  providers: ProviderRegistry;
}

/** A Secret of the wanted name that is not ours: stalled, with a Warning Event. */
export function secretConflict(events: EventRecorder, cr: OidcClient, name: string): Outcome {
  const message = `Secret ${name} exists and is not owned by this OidcClient; it is left untouched. Choose another name (spec.secretName / spec.managementSecretName) or remove that Secret`;
  events.record(cr, 'Warning', Reason.SecretConflict, message);
  return { kind: 'stalled', reason: Reason.SecretConflict, message };
}

export function classify(d: ErrorOutcomeDeps, cr: OidcClient, error: unknown, log: Logger): Outcome {
  if (error instanceof OutcomeError) return error.outcome;
  if (error instanceof SecretConflictError) return secretConflict(d.events, cr, error.secretName);
  if (error instanceof SecretTemplateError) {
    d.events.record(cr, 'Warning', Reason.InvalidSecretTemplate, error.message);
    return { kind: 'stalled', reason: Reason.InvalidSecretTemplate, message: error.message };
  }
  if (error instanceof WritePendingError || error instanceof RegistrationConflictError) {
    // A provider answer (e.g. a rotated token) not stored yet, or superseded: kept and retried.
    const reason = error instanceof WritePendingError ? Reason.SecretWriteFailed : Reason.Progressing;
    return { kind: 'retry', reason, message: error.message, retryAfterMs: error.retryAfterMs };
  }
  if (error instanceof ProviderNotReadyError) {
    return {
      kind: 'retry',
      reason: error.reason === 'ProviderNotFound' ? Reason.ProviderNotFound : Reason.ProviderUnavailable,
      message: error.message,
    };
  }
  if (error instanceof InvalidClientMetadataError) {
    const message = `the provider rejected the client metadata: ${error.message}`;
    d.events.record(cr, 'Warning', Reason.InvalidMetadata, message);
    return { kind: 'stalled', reason: Reason.InvalidMetadata, message };
  }
  if (error instanceof RegistrationUnauthorizedError) {
    d.providers.invalidate(providerKeyOf(cr).key);
    const message = `the provider refused the registration (initial access token missing or rejected): ${error.message}`;
    d.events.record(cr, 'Warning', Reason.RegistrationUnauthorized, message);
    return { kind: 'retry', reason: Reason.RegistrationUnauthorized, message, retryAfterMs: 30_000 };
  }
  if (error instanceof ProviderUnavailableError) {
    return {
      kind: 'retry',
      reason: Reason.ProviderUnavailable,
      message: error.message,
      retryAfterMs: error.retryAfterMs,
    };
  }
  const endpoint = classifyEndpointError(error);
  if (endpoint) {
    if (endpoint.kind === 'stalled') d.events.record(cr, 'Warning', endpoint.reason, endpoint.message);
    return endpoint;
  }
  if (error instanceof RegistrationError) {
    return { kind: 'retry', reason: Reason.ProviderUnavailable, message: error.message };
  }
  if (error instanceof KubeApiError) {
    log.warn({ err: error.message }, 'Kubernetes API call failed');
    return { kind: 'retry', reason: Reason.SecretWriteFailed, message: error.message };
  }
  log.error({ err: errorMessage(error) }, 'reconcile failed');
  return { kind: 'retry', reason: Reason.Progressing, message: errorMessage(error) };
}
