// The two Secrets an OidcClient owns: the application Secret (what the app mounts) and the
// management Secret (the registration access token: whoever holds it can change or delete the
// client, so it lives apart and can be protected with narrower RBAC).
import type { V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import type { OidcClient } from '../api/types.generated.js';
import {
  clientLabelValue,
  LABEL_CLIENT,
  LABEL_MANAGED_BY,
  LABEL_ROLE,
  MANAGED_BY,
  MGMT_KEYS,
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

function baseLabels(cr: OidcClient, role: SecretRole): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_CLIENT]: clientLabelValue(cr.metadata.name as string),
    [LABEL_ROLE]: role,
  };
}

export function managementSecretData(reg: StoredRegistration): Record<string, string> {
  return encodeData({
    [MGMT_KEYS.clientId]: reg.clientId,
    [MGMT_KEYS.clientSecret]: reg.clientSecret,
    [MGMT_KEYS.registrationAccessToken]: reg.registrationAccessToken,
    [MGMT_KEYS.registrationClientUri]: reg.registrationClientUri,
    [MGMT_KEYS.issuer]: reg.issuer,
  });
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

export interface AppSecretInput {
  clientId: string;
  clientSecret?: string;
  issuer: string;
  tokenEndpoint?: string;
}

export function appSecretData(input: AppSecretInput): Record<string, string> {
  return encodeData({
    client_id: input.clientId,
    client_secret: input.clientSecret,
    issuer: input.issuer,
    token_endpoint: input.tokenEndpoint,
  });
}

/** The application Secret as this CR wants it; secretTemplate labels/annotations are merged in. */
export function desiredAppSecret(cr: OidcClient, name: string, data: Record<string, string>): V1Secret {
  const tpl = cr.spec.secretTemplate ?? {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name,
      namespace: cr.metadata.namespace,
      labels: { ...(tpl.labels ?? {}), ...baseLabels(cr, 'credentials') },
      annotations: { ...(tpl.annotations ?? {}) },
      ownerReferences: [ownerReference(cr)],
    },
    data,
  };
}

/** Whether `actual` already carries everything `desired` asks for (extra labels by others are fine). */
export function appSecretMatches(actual: V1Secret, desired: V1Secret): boolean {
  if (!sameMap(actual.data ?? {}, desired.data ?? {})) return false;
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
