// What one reconcile observed about an OidcClient, and the ONE state it is in. Pure: the
// reconciler gathers an Observation (cache, both Secrets, the provider's answer when a check is
// due), `decide` names the state, and the reconciler runs that state's one step. Modelled on
// Crossplane's managed reconciler (Observe, then Create / Update / Delete), minus its "wedge".
import type { V1Secret } from '@kubernetes/client-node';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { diffSpecified, type ProviderForms } from '../registration/metadata.js';
import type { ClientMetadata, RegisteredClient } from '../registration/types.js';
import { findCondition, type ReasonName } from './conditions.js';
import { ANNOTATION_ATTEMPT } from './names.js';
import { type Outcome, STALLED_FOR_GENERATION } from './outcome.js';
import type { RotationTrigger } from './rotation.js';
import type { StoredRegistration, StoredState } from './secrets.js';

/** The provider's answer to a drift check (RFC 7592 GET), when one was made this reconcile. */
export type RemoteObservation =
  | { kind: 'found'; clientId: string; client: RegisteredClient }
  /** 404, or 401 and the client credentials no longer authenticate. */
  | { kind: 'gone'; clientId: string; why: string }
  /** 401/403 while the client itself still exists (or cannot be checked). */
  | { kind: 'tokenRejected'; clientId: string; probe: 'valid' | 'unknown' };

export interface Observation {
  cr: OidcClient;
  /** The status this reconcile builds on (ours when the cache still shows an older one). */
  status: OidcClientStatus;
  /** Offline validation of the spec; undefined when it is valid. */
  specIssues?: string;
  /** InvalidSecretTemplate when every issue is in spec.secretTemplate, else InvalidSpec. */
  specIssuesReason?: ReasonName;
  /** The tenancy gate (namespace allow-list, clientPolicy) refused this client. */
  refused?: Outcome;
  mgmtName: string;
  /** The Secret named spec.managementSecretName (whoever owns it). */
  mgmt?: V1Secret;
  mgmtOwned: boolean;
  /** mgmt is an orphaned management Secret that spec.adoptFrom names: it may be taken back. */
  mgmtClaimable: boolean;
  stored: StoredState;
  /** The Secret under the previous spec.managementSecretName, when ours and still there. */
  former?: { name: string; secret: V1Secret; stored: StoredState };
  /** A copy of the management Secret's content survives in memory (it was deleted while we ran). */
  remembered: boolean;
  /** Only looked up when the management Secret is being deleted. */
  namespaceTerminating: boolean;
  /** A rotation due now: a new rotate/reregister request, the schedule, or an expiring secret. */
  rotation?: RotationTrigger;
  /** The provider rejected the token now in the management Secret before. */
  rejectedTokenInUse: boolean;
  specChanged: boolean;
  /** The interval's drift check is due. */
  resyncDue: boolean;
  /** The desired RFC 7591 metadata (client_name defaulted), minus fields the provider does not keep. */
  desired: ClientMetadata;
  /** Fingerprint of the full desired metadata (an unmanaged client compares it). */
  desiredHash: string;
  /** How the provider keeps values it extends by itself (from the management Secret). */
  providerForms?: ProviderForms;
  remote?: RemoteObservation;
}

/** One state per row; the reconciler has exactly one step for each. */
export type ClientState =
  | { kind: 'Invalid'; reason: ReasonName; message: string }
  /** Not allowed to use its provider (ClusterOidcProvider conditions, clientPolicy). */
  | { kind: 'Refused'; outcome: Outcome }
  /** The provider refused this exact spec (400) before: wait for a new generation. */
  | { kind: 'AwaitingSpecChange'; reason: ReasonName; message: string }
  | { kind: 'SecretConflict'; secretName: string }
  /** spec.managementSecretName changed: copy the registration over (the old Secret goes later). */
  | { kind: 'ManagementSecretRenamed'; from: string }
  /** Someone deleted the management Secret: let it go and write it again. */
  | { kind: 'ManagementSecretDeleted' }
  /** Namespace deletion: keep the token for the finalizer, wait. */
  | { kind: 'NamespaceTerminating' }
  /** The management Secret is gone but we remember its content: put it back. */
  | { kind: 'ManagementSecretLost' }
  | { kind: 'NeedsAdoption' }
  | { kind: 'NeedsRegistration' }
  /**
   * A POST may have been sent without its result being stored (crash, timeout, ambiguous 5xx). The
   * marker is on the management Secret, or on the OidcClient while no management Secret exists.
   */
  | { kind: 'RegistrationPending'; attempt: string }
  /** A new client is to replace the current one (rotation.ts says why). */
  | { kind: 'RotationDue'; trigger: RotationTrigger }
  /**
   * A rotation stored the new client beside the previous one: switch the application Secret, keep
   * the previous client for the overlap, then delete it at the provider.
   */
  | { kind: 'PreviousClientPending'; previous: StoredRegistration }
  /** Registered without RFC 7592 management: credentials only, never updated, never deleted. */
  | { kind: 'Unmanaged'; specDiffers: boolean }
  | { kind: 'TokenRejected'; probe?: 'valid' | 'unknown' }
  /** The client is gone at the provider: register a new one. */
  | { kind: 'Gone'; why: string }
  /** A provider GET is due (spec changed, interval elapsed, not Ready, secret unknown). */
  | { kind: 'CheckDue' }
  | { kind: 'NeedsUpdate'; fields: string[] }
  | { kind: 'UpToDate' };

export type StateKind = ClientState['kind'];

export function decide(o: Observation): ClientState {
  const { cr, status } = o;
  if (o.specIssues)
    return { kind: 'Invalid', reason: o.specIssuesReason ?? 'InvalidSpec', message: o.specIssues };
  if (o.refused) return { kind: 'Refused', outcome: o.refused };
  const ready = findCondition(status.conditions, 'Ready');
  if (
    status.observedGeneration === cr.metadata.generation &&
    ready?.status === 'False' &&
    ready.reason &&
    STALLED_FOR_GENERATION.has(ready.reason) &&
    findCondition(status.conditions, 'Stalled')?.status === 'True'
  ) {
    return { kind: 'AwaitingSpecChange', reason: ready.reason as ReasonName, message: ready.message ?? '' };
  }
  if (o.mgmt && !o.mgmtOwned && !o.mgmtClaimable) return { kind: 'SecretConflict', secretName: o.mgmtName };
  if (o.mgmt?.metadata?.deletionTimestamp) {
    return o.namespaceTerminating ? { kind: 'NamespaceTerminating' } : { kind: 'ManagementSecretDeleted' };
  }

  const stored = o.stored;
  if (stored.kind === 'empty') {
    if (o.former && o.former.stored.kind !== 'empty')
      return { kind: 'ManagementSecretRenamed', from: o.former.name };
    if (!o.mgmt && o.remembered) return { kind: 'ManagementSecretLost' };
    // The first registration marks the OidcClient (with its finalizer, in one write) instead of
    // creating the management Secret just to hold the marker: it counts while no Secret exists.
    const attempt = stored.attempt ?? (o.mgmt ? undefined : cr.metadata.annotations?.[ANNOTATION_ATTEMPT]);
    if (attempt) return { kind: 'RegistrationPending', attempt };
    if (cr.spec.adoptFrom && !stored.previous) return { kind: 'NeedsAdoption' };
    return { kind: 'NeedsRegistration' };
  }
  if (stored.previous) return { kind: 'PreviousClientPending', previous: stored.previous };
  if (stored.kind === 'unmanaged') {
    const specDiffers = stored.metadataHash !== undefined && stored.metadataHash !== o.desiredHash;
    return { kind: 'Unmanaged', specDiffers };
  }
  if (o.rotation) return { kind: 'RotationDue', trigger: o.rotation };

  const remote = o.remote;
  if (remote && remote.clientId === stored.reg.clientId) {
    if (remote.kind === 'gone') return { kind: 'Gone', why: remote.why };
    if (remote.kind === 'tokenRejected') return { kind: 'TokenRejected', probe: remote.probe };
    const fields = diffSpecified(o.desired, remote.client.metadata, o.providerForms).map((d) => d.field);
    return fields.length > 0 ? { kind: 'NeedsUpdate', fields } : { kind: 'UpToDate' };
  }
  if (o.rejectedTokenInUse && !o.specChanged && !o.resyncDue) return { kind: 'TokenRejected' };
  const secretUnknown = !stored.reg.clientSecret && cr.spec.tokenEndpointAuthMethod !== 'none';
  const readyTrue = ready?.status === 'True';
  if (o.specChanged || o.resyncDue || !readyTrue || secretUnknown) return { kind: 'CheckDue' };
  return { kind: 'UpToDate' };
}

// ------------------------------------------------------------------ deletion

export type DeletionState =
  /** deletionPolicy Delete with a token: DELETE at the provider (the previous client too, if any). */
  | { kind: 'DeleteAtProvider'; regs: StoredRegistration[]; unmanaged?: string | undefined }
  | { kind: 'Orphan'; clientId: string }
  /** Registered without RFC 7592 management: it stays at the provider. */
  | { kind: 'UnmanagedStays'; clientId: string }
  /** The token is gone (management Secret lost while we did not run): nothing we can delete. */
  | { kind: 'TokenLost'; clientId: string }
  | { kind: 'NothingRegistered' };

export function decideDeletion(
  cr: OidcClient,
  stored: StoredState,
  remembered: StoredState | undefined,
  /** spec.deletionPolicy, unless managementPolicy says otherwise (client-control.ts). */
  policy: 'Delete' | 'Orphan' = cr.spec.deletionPolicy ?? 'Delete',
): DeletionState {
  const s = stored.kind === 'empty' && !stored.previous && remembered ? remembered : stored;
  const regs: StoredRegistration[] = [];
  if (s.kind === 'managed') regs.push(s.reg);
  if (s.previous) regs.push(s.previous);
  const clientId = s.kind === 'empty' ? (s.previous?.clientId ?? cr.status?.clientId) : s.reg.clientId;
  if (policy === 'Orphan') return clientId ? { kind: 'Orphan', clientId } : { kind: 'NothingRegistered' };
  if (regs.length > 0)
    return { kind: 'DeleteAtProvider', regs, unmanaged: s.kind === 'unmanaged' ? s.reg.clientId : undefined };
  if (s.kind === 'unmanaged') return { kind: 'UnmanagedStays', clientId: s.reg.clientId };
  if (cr.status?.clientId) return { kind: 'TokenLost', clientId: cr.status.clientId };
  return { kind: 'NothingRegistered' };
}
