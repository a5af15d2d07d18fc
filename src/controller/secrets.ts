// The two Secrets an OidcClient owns: the application Secret (what the app mounts) and the
// management Secret (the registration access token: whoever holds it can change or delete the
// client, so it lives apart and can be protected with narrower RBAC).
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import type { OidcClient } from '../api/types.generated.js';
import { sameTemplateKeys, secretType, templateAnnotations } from './app-secret-template.js';
import {
  ANNOTATION_ATTEMPT,
  ANNOTATION_MANAGEMENT,
  ANNOTATION_PREVIOUS_DELETION_TIME,
  ANNOTATION_REGISTERED_METADATA,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_ROTATION_TRIGGER,
  ANNOTATION_STATE,
  clientLabelValue,
  LABEL_CLIENT,
  LABEL_MANAGED_BY,
  LABEL_ROLE,
  MANAGED_BY,
  MGMT_KEYS,
  PREVIOUS_KEYS,
  REGISTRATION_FINALIZER,
  type SecretRole,
} from './names.js';

export interface StoredRegistration {
  clientId: string;
  clientSecret?: string;
  registrationAccessToken: string;
  registrationClientUri: string;
  issuer?: string;
}

/** A client registered without RFC 7592 management: credentials only, no token, no URI. */
export interface UnmanagedRegistration {
  clientId: string;
  clientSecret?: string;
  issuer?: string;
}

/** Whether a registration is managed (RFC 7592): it carries a registration access token and URI. */
export function isManaged(reg: StoredRegistration | UnmanagedRegistration): reg is StoredRegistration {
  return 'registrationAccessToken' in reg;
}

/** What a management Secret holds, read once per reconcile. */
export type StoredState =
  /** No registration (yet): `attempt` is set while a POST may have been sent without its result stored. */
  | { kind: 'empty'; attempt?: string; previous?: StoredRegistration }
  | { kind: 'managed'; reg: StoredRegistration; previous?: StoredRegistration }
  | { kind: 'unmanaged'; reg: UnmanagedRegistration; metadataHash?: string; previous?: StoredRegistration };

/** Annotations that describe one registration attempt; replaced, not merged, on every write. */
export const TRANSIENT_ANNOTATIONS: ReadonlySet<string> = new Set([
  ANNOTATION_STATE,
  ANNOTATION_ATTEMPT,
  ANNOTATION_REJECTED_TOKEN,
  // A rotation's: gone with the write that drops the previous client.
  ANNOTATION_ROTATION_TRIGGER,
  ANNOTATION_PREVIOUS_DELETION_TIME,
]);

/** The annotations a management Secret write leaves: the attempt's replaced, all others kept. */
export function mergeAnnotations(
  current: Record<string, string> | undefined,
  attempt: Record<string, string>,
): Record<string, string> {
  const kept = Object.entries(current ?? {}).filter(([k]) => !TRANSIENT_ANNOTATIONS.has(k));
  return { ...Object.fromEntries(kept), ...attempt };
}

export function ownerReference(cr: OidcClient): V1OwnerReference {
  return {
    apiVersion: cr.apiVersion,
    kind: cr.kind,
    name: cr.metadata.name as string,
    uid: cr.metadata.uid as string,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** True when the Secret names this CR as its controller; anything else is not ours to touch. */
export function isOwnedBy(secret: V1Secret, cr: OidcClient): boolean {
  return (secret.metadata?.ownerReferences ?? []).some((o) => o.controller && o.uid === cr.metadata.uid);
}

export function decode(secret: V1Secret | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
}

export function encodeData(values: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v !== undefined) out[k] = Buffer.from(v, 'utf8').toString('base64');
  }
  return out;
}

export function readRegistration(secret: V1Secret | undefined): StoredRegistration | undefined {
  const clientId = decode(secret, MGMT_KEYS.clientId);
  const rat = decode(secret, MGMT_KEYS.registrationAccessToken);
  const uri = decode(secret, MGMT_KEYS.registrationClientUri);
  if (!clientId || !rat || !uri) return undefined;
  return {
    clientId,
    clientSecret: decode(secret, MGMT_KEYS.clientSecret),
    registrationAccessToken: rat,
    registrationClientUri: uri,
    issuer: decode(secret, MGMT_KEYS.issuer),
  };
}

function readPrevious(secret: V1Secret | undefined): StoredRegistration | undefined {
  const clientId = decode(secret, PREVIOUS_KEYS.clientId);
  const rat = decode(secret, PREVIOUS_KEYS.registrationAccessToken);
  const uri = decode(secret, PREVIOUS_KEYS.registrationClientUri);
  if (!clientId || !rat || !uri) return undefined;
  return {
    clientId,
    clientSecret: decode(secret, PREVIOUS_KEYS.clientSecret),
    registrationAccessToken: rat,
    registrationClientUri: uri,
  };
}

export function readStored(secret: V1Secret | undefined): StoredState {
  const previous = readPrevious(secret);
  const annotations = secret?.metadata?.annotations ?? {};
  const reg = readRegistration(secret);
  if (reg) return previous ? { kind: 'managed', reg, previous } : { kind: 'managed', reg };
  const clientId = decode(secret, MGMT_KEYS.clientId);
  if (clientId && annotations[ANNOTATION_MANAGEMENT] === 'unsupported') {
    const unmanaged: UnmanagedRegistration = { clientId };
    const clientSecret = decode(secret, MGMT_KEYS.clientSecret);
    const issuer = decode(secret, MGMT_KEYS.issuer);
    if (clientSecret !== undefined) unmanaged.clientSecret = clientSecret;
    if (issuer !== undefined) unmanaged.issuer = issuer;
    const out: StoredState = { kind: 'unmanaged', reg: unmanaged };
    const metadataHash = annotations[ANNOTATION_REGISTERED_METADATA];
    if (metadataHash) out.metadataHash = metadataHash;
    if (previous) out.previous = previous;
    return out;
  }
  const out: StoredState = { kind: 'empty' };
  const attempt = annotations[ANNOTATION_ATTEMPT];
  if (attempt) out.attempt = attempt;
  if (previous) out.previous = previous;
  return out;
}

function baseLabels(cr: OidcClient, role: SecretRole): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_CLIENT]: clientLabelValue(cr.metadata.name as string),
    [LABEL_ROLE]: role,
  };
}

/** The Secret data for a registration (if any) and, during a re-registration, the previous one. */
export function managementSecretData(
  reg: StoredRegistration | UnmanagedRegistration | undefined,
  previous?: StoredRegistration,
): Record<string, string> {
  const managed = reg && isManaged(reg) ? reg : undefined;
  return encodeData({
    [MGMT_KEYS.clientId]: reg?.clientId,
    [MGMT_KEYS.clientSecret]: reg?.clientSecret,
    [MGMT_KEYS.registrationAccessToken]: managed?.registrationAccessToken,
    [MGMT_KEYS.registrationClientUri]: managed?.registrationClientUri,
    [MGMT_KEYS.issuer]: reg?.issuer,
    [PREVIOUS_KEYS.clientId]: previous?.clientId,
    [PREVIOUS_KEYS.clientSecret]: previous?.clientSecret,
    [PREVIOUS_KEYS.registrationAccessToken]: previous?.registrationAccessToken,
    [PREVIOUS_KEYS.registrationClientUri]: previous?.registrationClientUri,
  });
}

/** True when the Secret still carries our finalizer (it blocks the Secret's deletion). */
export function hasRegistrationFinalizer(secret: V1Secret): boolean {
  return (secret.metadata?.finalizers ?? []).includes(REGISTRATION_FINALIZER);
}

export function newManagementSecret(
  cr: OidcClient,
  name: string,
  data: Record<string, string>,
  annotations: Record<string, string>,
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace: cr.metadata.namespace,
      labels: baseLabels(cr, 'registration'),
      annotations,
      ownerReferences: [ownerReference(cr)],
      finalizers: [REGISTRATION_FINALIZER],
    },
    data,
  };
}

/** The application Secret as this CR wants it: data as rendered, type, labels and annotations from secretTemplate. */
export function desiredAppSecret(cr: OidcClient, name: string, data: Record<string, string>): V1Secret {
  const tpl = cr.spec.secretTemplate ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: secretType(cr),
    metadata: {
      name,
      namespace: cr.metadata.namespace,
      labels: { ...(tpl.labels ?? {}), ...baseLabels(cr, 'credentials') },
      annotations: templateAnnotations(cr),
      ownerReferences: [ownerReference(cr)],
    },
    data,
  };
}

/** Whether `actual` already carries everything `desired` asks for (extra labels by others are fine). */
export function appSecretMatches(actual: V1Secret, desired: V1Secret): boolean {
  if (!sameMap(actual.data ?? {}, desired.data ?? {})) return false;
  if ((actual.type ?? 'Opaque') !== desired.type) return false;
  // Keys the template set before and no longer sets are still to be removed.
  if (!sameTemplateKeys(actual, desired)) return false;
  if (!containsMap(actual.metadata?.labels ?? {}, desired.metadata?.labels ?? {})) return false;
  if (!containsMap(actual.metadata?.annotations ?? {}, desired.metadata?.annotations ?? {})) return false;
  return true;
}

function sameMap(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

function containsMap(actual: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => actual[k] === v);
}
