// Names the operator stamps on the objects it manages. Users grep for these; keep them stable.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { API_GROUP } from '../api/schema.js';
import type { OidcClient } from '../api/types.generated.js';

export const FINALIZER = `${API_GROUP}/finalizer`;
/** Keeps the management Secret (and its RAT) alive until the provider-side delete is done. */
export const REGISTRATION_FINALIZER = `${API_GROUP}/registration`;

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'oidc-client-operator';
/** The OidcClient's name, or for names over 63 characters (the label limit) see clientLabelValue. */
export const LABEL_CLIENT = `${API_GROUP}/client`;
export const LABEL_ROLE = `${API_GROUP}/secret-role`;
export type SecretRole = 'credentials' | 'registration';

/** On the management Secret: 'pending' between "about to POST" and "credentials stored". */
export const ANNOTATION_STATE = `${API_GROUP}/state`;
/**
 * When a registration POST was last attempted without its result being stored yet. On the
 * management Secret; on the OidcClient itself for a registration into a Secret that does not exist
 * yet (it is written with the finalizer, and is stale once the Secret holds a registration).
 */
export const ANNOTATION_ATTEMPT = `${API_GROUP}/registration-attempt`;
/** client_id of a registration taken over through spec.adoptFrom (Ready reason Adopted). */
export const ANNOTATION_ADOPTED = `${API_GROUP}/adopted-client-id`;
/** On the OidcClient: set to a new value (e.g. a date) to get a new client registered. */
export const ANNOTATION_REREGISTER = `${API_GROUP}/reregister`;
/** On the management Secret: the reregister request already carried out. */
export const ANNOTATION_REREGISTERED = `${API_GROUP}/reregistered-for`;
/**
 * On the OidcClient: set to a new value (any string, e.g. a date) to rotate the credentials: a new
 * client, the application Secret switched to it, the previous client deleted after the overlap.
 */
export const ANNOTATION_ROTATE = `${API_GROUP}/rotate`;
/** On the management Secret: the rotate request already carried out. */
export const ANNOTATION_ROTATED_FOR = `${API_GROUP}/rotated-for`;
/** On the management Secret: when the current client was registered (the rotation schedule counts from it). */
export const ANNOTATION_ISSUED_AT = `${API_GROUP}/issued-at`;
/**
 * On the management Secret while previous_* keys exist: why the rotation started (see
 * RotationTrigger), written with the pending marker and the registration; it sets the overlap.
 */
export const ANNOTATION_ROTATION_TRIGGER = `${API_GROUP}/rotation-trigger`;
/**
 * On the management Secret while previous_* keys exist: when the previous client is deleted at the
 * provider. Written only after the application Secret switched to the new client.
 */
export const ANNOTATION_PREVIOUS_DELETION_TIME = `${API_GROUP}/previous-deletion-time`;
/** Fingerprint of a registration access token the provider rejected (not the token itself). */
export const ANNOTATION_REJECTED_TOKEN = `${API_GROUP}/rejected-token-sha256`;
/**
 * On the management Secret: 'unsupported' when the provider registered the client without
 * RFC 7592 management (no registration access token): it cannot be updated or deleted by us.
 */
export const ANNOTATION_MANAGEMENT = `${API_GROUP}/management`;
/** Fingerprint of the metadata an unmanaged client was registered with (spec changes show up). */
export const ANNOTATION_REGISTERED_METADATA = `${API_GROUP}/registered-metadata-sha256`;
/**
 * On the management Secret: how the provider keeps specified values it extends with its own (scope
 * with default scopes, grant types added), as fingerprints learnt from its answers to our writes
 * (see ProviderForms). Not drift, so not sent again.
 */
export const ANNOTATION_PROVIDER_FORMS = `${API_GROUP}/provider-forms`;
/** On a management Secret left behind by deletionPolicy: Orphan; it can be adopted again. */
export const LABEL_ORPHANED = `${API_GROUP}/orphaned`;
export const ANNOTATION_ORPHANED_FROM = `${API_GROUP}/orphaned-from`;

export const MGMT_KEYS = {
  clientId: 'client_id',
  clientSecret: 'client_secret',
  registrationAccessToken: 'registration_access_token',
  registrationClientUri: 'registration_client_uri',
  issuer: 'issuer',
} as const;

/**
 * During a rotation (or requested re-registration) the old client's credentials wait under these keys
 * until it is deleted at the provider, so a crash or a failed POST never loses its token.
 */
export const PREVIOUS_KEYS = {
  clientId: 'previous_client_id',
  clientSecret: 'previous_client_secret',
  registrationAccessToken: 'previous_registration_access_token',
  registrationClientUri: 'previous_registration_client_uri',
} as const;

export function appSecretName(cr: OidcClient): string {
  return cr.spec.secretName ?? `${cr.metadata.name}-oidc-client`;
}

export function managementSecretName(cr: OidcClient): string {
  return cr.spec.managementSecretName ?? `${cr.metadata.name}-oidc-registration`;
}

export function clientKey(cr: OidcClient): string {
  return `${cr.metadata.namespace}/${cr.metadata.name}`;
}

/** Label values stop at 63 characters. */
const MAX_LABEL_VALUE = 63;

/**
 * The value of LABEL_CLIENT: the name itself when it fits, else its first 52 characters, '-' and
 * 10 hex characters of its SHA-256 (unique in practice, still greppable by prefix). The full name
 * is in the Secret's controller ownerReference, which is what maps Secret events back.
 */
export function clientLabelValue(name: string): string {
  if (name.length <= MAX_LABEL_VALUE) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_LABEL_VALUE - 11)}-${hash}`;
}

/** Name of the OidcClient that controls this Secret: its ownerReference, else (older Secrets) the label. */
export function ownerClientName(secret: V1Secret): string | undefined {
  const owner = (secret.metadata?.ownerReferences ?? []).find(
    (o) => o.controller && o.kind === 'OidcClient' && o.apiVersion?.split('/')[0] === API_GROUP,
  );
  return owner?.name ?? secret.metadata?.labels?.[LABEL_CLIENT];
}

/** The Secret informers' index of Secrets by the OidcClient (`namespace/name`) they belong to. */
export const SECRETS_BY_CLIENT = 'client';

/**
 * Index values of a Secret: its controlling OidcClient (ownerClientName) and every OidcClient among
 * its owners, so lookups by owner UID (isOwnedBy) and by client name both find it among them.
 */
export function secretClientIndex(secret: V1Secret): string[] {
  const ns = secret.metadata?.namespace ?? '';
  const names = new Set<string>();
  const controller = ownerClientName(secret);
  if (controller) names.add(controller);
  for (const o of secret.metadata?.ownerReferences ?? []) if (o.kind === 'OidcClient') names.add(o.name);
  return [...names].map((n) => `${ns}/${n}`);
}
