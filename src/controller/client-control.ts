// How users of the operator steer one OidcClient, decided purely here so the reconciler only asks:
// - the paused annotation: no provider call at all (deletion waits too, as in Crossplane);
// - the check-now annotation: a new value asks for one immediate drift check (External Secrets'
//   force-sync); status.checkNowHandled records the value carried out, so it runs once per value;
// - spec.refreshInterval: the drift-check period of this client;
// - spec.managementPolicy ObserveOnly: every state that would POST, PUT or DELETE becomes one that
//   reports instead.

import { parseRefreshInterval } from '../api/refresh-interval.js';
import { API_GROUP } from '../api/schema.js';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import type { ClientState, Observation } from './client-state.js';
import { findCondition, Reason, setCondition } from './conditions.js';
import type { ExtraCondition } from './outcome.js';

/** On the OidcClient: "true" stops every provider call for it until removed (or set otherwise). */
export const ANNOTATION_PAUSED = `${API_GROUP}/paused`;
/** On the OidcClient: a new value (e.g. a date) asks for one drift check now. */
export const ANNOTATION_CHECK_NOW = `${API_GROUP}/check-now`;

export function isPaused(cr: OidcClient): boolean {
  return cr.metadata.annotations?.[ANNOTATION_PAUSED] === 'true';
}

/** The check-now value not carried out yet, if any. */
export function pendingCheckNow(cr: OidcClient, status: OidcClientStatus): string | undefined {
  const value = cr.metadata.annotations?.[ANNOTATION_CHECK_NOW];
  return value && value !== status.checkNowHandled ? value : undefined;
}

export function isObserveOnly(cr: OidcClient): boolean {
  return cr.spec.managementPolicy === 'ObserveOnly';
}

/** ObserveOnly never deletes at the provider: its deletion is an Orphan one. */
export function deletionPolicyOf(cr: OidcClient): 'Delete' | 'Orphan' {
  return isObserveOnly(cr) ? 'Orphan' : (cr.spec.deletionPolicy ?? 'Delete');
}

/**
 * The drift-check period in ms (0: no periodic checks): spec.refreshInterval, else the operator's
 * default; raised to the operator's floor (`raised`), which protects shared providers from tenants.
 */
export function refreshIntervalOf(
  cr: OidcClient,
  o: { defaultMs: number; minMs: number },
): { ms: number; raised: boolean } {
  const text = cr.spec.refreshInterval;
  const ms = text === undefined ? undefined : parseRefreshInterval(text);
  if (ms === undefined) return { ms: o.defaultMs, raised: false };
  if (ms === 0) return { ms: 0, raised: false };
  return ms < o.minMs ? { ms: o.minMs, raised: true } : { ms, raised: false };
}

/** The status while paused: Synced=False ReconcilePaused, everything else (Ready above all) as it was. */
export function pausedStatus(status: OidcClientStatus, cr: OidcClient, now: string): OidcClientStatus {
  const message = `reconciliation paused by the ${ANNOTATION_PAUSED} annotation: nothing is sent to the provider, Secrets are not repaired and deletion waits until it is removed`;
  const prev = findCondition(status.conditions, 'Synced');
  // Keep the condition's generation while paused: a spec change is not "observed" by a pause.
  const generation =
    prev?.reason === Reason.ReconcilePaused ? prev.observedGeneration : cr.metadata.generation;
  const conditions = setCondition(
    status.conditions ?? [],
    { type: 'Synced', status: 'False', reason: Reason.ReconcilePaused, message },
    generation,
    now,
  );
  return { ...status, conditions };
}

/** What ObserveOnly does instead of a state that would write to the provider. */
export type ObserveOnlyState =
  /** Nothing stored and nothing to adopt: it never registers. */
  | { kind: 'NothingToObserve'; message: string }
  /** The observed client is gone at the provider: it is not registered again. */
  | { kind: 'ObservedGone'; why: string }
  /** A change (re-registration) only Full may make. */
  | { kind: 'ObserveOnlyRefused'; message: string }
  /** In place: `drift` lists fields differing at the provider; undefined when not checked this time. */
  | { kind: 'Observed'; drift: string[] | undefined };

const OBSERVE_ONLY_KINDS: ReadonlySet<string> = new Set([
  'NothingToObserve',
  'ObservedGone',
  'ObserveOnlyRefused',
  'Observed',
]);

export function isObserveOnlyState(s: ClientState | ObserveOnlyState): s is ObserveOnlyState {
  return OBSERVE_ONLY_KINDS.has(s.kind);
}

/** Under ObserveOnly, the states that would POST, PUT or DELETE; every other state stays as decided. */
export function restrictToObserve(state: ClientState, obs: Observation): ClientState | ObserveOnlyState {
  if (!isObserveOnly(obs.cr)) return state;
  const cr = obs.cr;
  switch (state.kind) {
    case 'NeedsRegistration':
      return {
        kind: 'NothingToObserve',
        message:
          'managementPolicy ObserveOnly never registers a client: set spec.adoptFrom to the Secret holding the registration to observe, or set managementPolicy: Full',
      };
    case 'RegistrationPending':
      return {
        kind: 'NothingToObserve',
        message: `an earlier registration attempt (${state.attempt}) did not store its result, and managementPolicy ObserveOnly never registers: set spec.adoptFrom to the registration to observe, or managementPolicy: Full to register`,
      };
    case 'Gone':
      return { kind: 'ObservedGone', why: state.why };
    case 'RotationDue': {
      // Only requests get here: ObserveOnly has no scheduled or expiry-driven rotation.
      const annotation = state.trigger.kind === 'Reregister' ? 'reregister' : 'rotate';
      return {
        kind: 'ObserveOnlyRefused',
        message: `the ${annotation} annotation asks for a new client, which managementPolicy ObserveOnly never registers: remove the annotation or set managementPolicy: Full`,
      };
    }
    case 'PreviousClientPending':
      return {
        kind: 'ObserveOnlyRefused',
        message: `a rotation is unfinished (client ${state.previous.clientId} is still to be deleted at the provider), and managementPolicy ObserveOnly deletes nothing: set managementPolicy: Full to finish it`,
      };
    case 'NeedsUpdate':
      // client_name defaults to the resource name for registrations; an observer has no such default.
      return {
        kind: 'Observed',
        drift: state.fields.filter((f) => f !== 'client_name' || cr.spec.clientName !== undefined),
      };
    case 'UpToDate':
      return { kind: 'Observed', drift: obs.remote?.kind === 'found' ? [] : undefined };
    default:
      return state;
  }
}

/** Managed=False (ObserveOnly) and, for drift, Synced=False Drifted; an unchecked reconcile keeps the last verdict. */
export function observedConditions(status: OidcClientStatus, drift: string[] | undefined): ExtraCondition[] {
  const conditions: ExtraCondition[] = [
    {
      type: 'Managed',
      status: 'False',
      reason: Reason.ObserveOnly,
      message:
        'managementPolicy ObserveOnly: the operator reads this client at the provider but never updates or deletes it',
    },
  ];
  if (drift === undefined) {
    const last = findCondition(status.conditions, 'Synced');
    if (last?.reason === Reason.Drifted)
      conditions.push({
        type: 'Synced',
        status: 'False',
        reason: Reason.Drifted,
        message: last.message ?? '',
      });
  } else if (drift.length > 0) {
    conditions.push({
      type: 'Synced',
      status: 'False',
      reason: Reason.Drifted,
      message: `the client at the provider differs from the spec in ${drift.join(', ')}; not repaired (managementPolicy ObserveOnly)`,
    });
  }
  return conditions;
}
