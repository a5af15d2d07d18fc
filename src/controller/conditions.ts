// Conditions in kstatus shape: Ready for people and `kubectl wait`, Reconciling/Stalled so that
// Flux and Argo CD (kstatus) tell "in progress" from "failed, needs a human".
import type { Condition } from '../api/types.generated.js';

export type ConditionStatus = Condition['status'];

export function findCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Sets a condition, keeping lastTransitionTime when the status did not change. */
export function setCondition(
  list: Condition[],
  next: { type: string; status: ConditionStatus; reason: string; message: string },
  generation: number | undefined,
  now: string,
): Condition[] {
  const prev = findCondition(list, next.type);
  const cond: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message: next.message,
    lastTransitionTime: prev && prev.status === next.status ? prev.lastTransitionTime : now,
    observedGeneration: generation,
  };
  return [...list.filter((c) => c.type !== next.type), cond].sort(byType);
}

export function removeCondition(list: Condition[], type: string): Condition[] {
  return list.filter((c) => c.type !== type);
}

const ORDER = ['Ready', 'Reconciling', 'Stalled', 'Synced', 'Managed', 'PreviousClientDeleted'];
function byType(a: Condition, b: Condition): number {
  return ORDER.indexOf(a.type) - ORDER.indexOf(b.type) || a.type.localeCompare(b.type);
}

/** Reasons on the Ready condition. Stable API: documented in the README. */
export const Reason = {
  Registered: 'Registered',
  Adopted: 'Adopted',
  InvalidSpec: 'InvalidSpec',
  /** spec.secretTemplate cannot be rendered: nothing is registered or written until it is fixed. */
  InvalidSecretTemplate: 'InvalidSecretTemplate',
  InvalidMetadata: 'InvalidMetadata',
  ProviderNotFound: 'ProviderNotFound',
  ProviderUnavailable: 'ProviderUnavailable',
  /** A management URL is not on an origin of the provider: nothing is sent there. */
  UntrustedEndpoint: 'UntrustedEndpoint',
  /** A management URL or a provider answer names another client than the stored one. */
  ClientMismatch: 'ClientMismatch',
  /** The provider answered with something that is not RFC 7591/7592 (redirect, HTML, no client_id...). */
  UnexpectedResponse: 'UnexpectedResponse',
  /** The client's namespace may not use the ClusterOidcProvider (its spec.conditions). */
  NotAllowed: 'NotAllowed',
  /** The spec asks for something the provider's clientPolicy does not allow. */
  PolicyViolation: 'PolicyViolation',
  RegistrationUnauthorized: 'RegistrationUnauthorized',
  RegistrationTokenRejected: 'RegistrationTokenRejected',
  SecretConflict: 'SecretConflict',
  SecretWriteFailed: 'SecretWriteFailed',
  AdoptionFailed: 'AdoptionFailed',
  AdoptionSecretNotFound: 'AdoptionSecretNotFound',
  Deleting: 'Deleting',
  Progressing: 'Progressing',
  ValueNotAccepted: 'ValueNotAccepted',
  InSync: 'InSync',
  /** The provider registered the client without RFC 7592 management (no registration access token). */
  ManagementUnsupported: 'ManagementUnsupported',
  /** A rotation's previous client could not be deleted at the provider (PreviousClientDeleted=False). */
  PreviousClientDeleteFailed: 'PreviousClientDeleteFailed',
  // Control by the operator's users (client-control.ts): pause and managementPolicy ObserveOnly.
  /** Synced=False while the paused annotation is set: nothing is sent to the provider. */
  ReconcilePaused: 'ReconcilePaused',
  /** Managed=False under managementPolicy ObserveOnly; also a change it refuses to make. */
  ObserveOnly: 'ObserveOnly',
  /** Synced=False under ObserveOnly: the provider's client differs from the spec (not repaired). */
  Drifted: 'Drifted',
  /** ObserveOnly without a registration to observe (it never registers one). */
  NothingToObserve: 'NothingToObserve',
  /** ObserveOnly: the observed client is gone at the provider (it is not registered again). */
  ClientGone: 'ClientGone',
} as const;
export type ReasonName = (typeof Reason)[keyof typeof Reason];
