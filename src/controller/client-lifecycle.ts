// The provider side of one OidcClient: register, adopt, check, update and delete through RFC
// 7591/7592, each storing what the provider returns (the registration access token above all)
// before anything else. The reconciler decides when (client-state.ts); this module knows how.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { errorMessage } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import { readSecret } from '../kube/secrets.js';
import {
  ClientMismatchError,
  ClientNotFoundError,
  ForeignEndpointError,
  ProviderUnavailableError,
  RegistrationError,
  TokenRejectedError,
  UnconfirmedNotFoundError,
  UnexpectedResponseError,
} from '../registration/errors.js';
import {
  diffSpecified,
  formatProviderForms,
  judgeWrite,
  metadataForUpdate,
  type ProviderForms,
  parseProviderForms,
  specToMetadata,
} from '../registration/metadata.js';
import { isTlsVerificationCode } from '../registration/policy.js';
import type { ClientMetadata, RegisteredClient } from '../registration/types.js';
import { parseAdoptionSecret } from './adoption.js';
import type { AppSecrets } from './app-secrets.js';
import type { RemoteObservation } from './client-state.js';
import { Reason } from './conditions.js';
import { WritePendingError } from './credential-outbox.js';
import type { ManagementSecrets } from './management-secrets.js';
import {
  ANNOTATION_ADOPTED,
  ANNOTATION_ATTEMPT,
  ANNOTATION_ISSUED_AT,
  ANNOTATION_MANAGEMENT,
  ANNOTATION_PROVIDER_FORMS,
  ANNOTATION_REGISTERED_METADATA,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_REREGISTER,
  ANNOTATION_REREGISTERED,
  ANNOTATION_ROTATE,
  ANNOTATION_ROTATED_FOR,
  ANNOTATION_STATE,
} from './names.js';
import { OutcomeError, ReconcileError } from './outcome.js';
import type { ResolvedProvider } from './providers.js';
import type { SecretAccess } from './secret-access.js';
import { managementSecretData, type StoredRegistration, type UnmanagedRegistration } from './secrets.js';

export interface ClientLifecycleDeps {
  rest: KubeRest;
  events: EventRecorder;
  mgmtSecrets: ManagementSecrets;
  appSecrets: AppSecrets;
  secretAccess: SecretAccess;
}

/** The OidcClient-side marker of a first registration (see ClientMetadata). */
export interface AttemptMarker {
  /** Stores the marker (and the finalizer) on the OidcClient before the POST. */
  mark(attempt: string): Promise<void>;
  /** Removes it again after a POST that certainly registered nothing (best effort). */
  clear(attempt: string): Promise<void>;
}

/** How soon a client whose provider answered with an untrusted management URL is checked again. */
const UNTRUSTED_ANSWER_RECHECK_MS = 5 * 60_000;

export type Registration =
  | { kind: 'managed'; reg: StoredRegistration; observed: RegisteredClient; mgmt: V1Secret }
  /** The provider gave no registration access token / URI: credentials only (RFC 7592 unsupported). */
  | { kind: 'unmanaged'; reg: UnmanagedRegistration; mgmt: V1Secret };

/** The metadata to send: the user's fields, with client_name defaulting to the resource name. */
export function desiredMetadata(cr: OidcClient): ClientMetadata {
  const m = specToMetadata(cr.spec);
  if (m.client_name === undefined) m.client_name = cr.metadata.name;
  return m;
}

/** A stable fingerprint of metadata (key order does not matter). */
export function metadataFingerprint(m: ClientMetadata): string {
  const stable = JSON.stringify(m, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
  return createHash('sha256').update(stable).digest('hex').slice(0, 16);
}

/** A new registration also answers reregister / rotate requests already present on the resource. */
function answeredRequest(cr: OidcClient): Record<string, string> {
  const reregister = cr.metadata.annotations?.[ANNOTATION_REREGISTER];
  const rotate = cr.metadata.annotations?.[ANNOTATION_ROTATE];
  return {
    ...(reregister ? { [ANNOTATION_REREGISTERED]: reregister } : {}),
    ...(rotate ? { [ANNOTATION_ROTATED_FOR]: rotate } : {}),
  };
}

export class ClientLifecycle {
  constructor(private readonly d: ClientLifecycleDeps) {}

  /**
   * POST exactly once per CR: a 'pending' marker is stored first, the result right after. The
   * marker goes on the management Secret when it exists; a first registration marks the OidcClient
   * instead (`marker`, together with the finalizer) and creates the Secret with the result, so a
   * new client costs one write less and no Secret write that only says "about to POST". During a
   * re-registration the old client's credentials (`previous`) travel in the same writes, so a crash
   * or a failed POST never loses its token, and the application Secret keeps working credentials.
   */
  async register(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    previous: StoredRegistration | undefined,
    log: Logger,
    marker: AttemptMarker,
    /** Written with the marker and the result (a rotation's trigger). */
    extra: Record<string, string> = {},
  ): Promise<Registration> {
    await this.d.appSecrets.assertNoConflict(cr);
    const attempt = new Date().toISOString();
    if (mgmt) {
      const pending = {
        [ANNOTATION_STATE]: 'pending',
        [ANNOTATION_ATTEMPT]: attempt,
        ...answeredRequest(cr),
        ...extra,
      };
      mgmt = await this.d.mgmtSecrets.replace(cr, mgmt, managementSecretData(undefined, previous), pending);
    } else {
      // The management Secret will be created with the answer: make sure that can happen first.
      // Only an answer asked for in or after the client's creation second counts for it.
      const created = Date.parse(String(cr.metadata.creationTimestamp ?? ''));
      await this.d.secretAccess.assertCanCreate(
        cr.metadata.namespace as string,
        Number.isNaN(created) ? 0 : created,
      );
      await marker.mark(attempt);
    }

    const metadata = desiredMetadata(cr);
    let created: RegisteredClient;
    try {
      created = await provider.client.register(metadata);
    } catch (error) {
      if (error instanceof UnexpectedResponseError && isSuccess(error.status)) {
        // A success answer that cannot be used: a client may exist now. Keep the marker and stop,
        // so a broken provider does not collect one orphaned client per retry.
        const message = `the provider answered the registration with HTTP ${error.status}, but the answer cannot be used (${error.message}); a client may have been registered there and is not managed. A change to the spec tries again`;
        this.d.events.record(cr, 'Warning', Reason.UnexpectedResponse, message);
        throw new OutcomeError({ kind: 'stalled', reason: Reason.UnexpectedResponse, message });
      }
      // The provider answered, or the request never left (refused connection, certificate not
      // trusted), so nothing was registered: clear the marker (best effort).
      if (
        error instanceof RegistrationError &&
        (!(error instanceof ProviderUnavailableError) || neverSent(error))
      ) {
        if (mgmt) {
          const current = mgmt;
          await this.d.mgmtSecrets
            .replace(cr, current, current.data ?? {}, { [ANNOTATION_STATE]: 'pending', ...extra })
            .catch(() => current);
        } else {
          await marker.clear(attempt);
        }
      }
      throw error;
    }
    // A reregister request present from the start is answered by this registration.
    const registered = {
      [ANNOTATION_STATE]: 'registered',
      [ANNOTATION_ISSUED_AT]: new Date().toISOString(),
      ...answeredRequest(cr),
      ...extra,
    };
    const reg = toStored(created, provider, undefined);
    if (!reg) return this.storeUnmanaged(cr, provider, mgmt, mgmtName, created, metadata, previous, log);
    // When this registration cannot be stored (another attempt's is, the write is refused, or the
    // process stops first), it is undone at the provider so nothing is orphaned. No one else can
    // know this client, so the undo is allowed even after this replica lost the Lease.
    const undo = async (): Promise<void> => {
      log.warn({ clientId: reg.clientId }, 'new registration not stored; deleting it at the provider');
      await provider.client
        .delete(reg.registrationClientUri, reg.registrationAccessToken, reg.clientId, { unfenced: true })
        .catch((e: unknown) => {
          this.d.events.record(
            cr,
            'Warning',
            'OrphanedClient',
            `client ${reg.clientId} could not be stored nor deleted: ${errorMessage(e)}`,
          );
          throw e;
        });
    };
    // Values the provider extended by itself (default scopes, grant types) are learnt in the same write.
    const forms = formsAnnotation(mgmt, judgeWrite(metadata, created.metadata).forms);
    try {
      const annotations = { ...registered, ...forms };
      mgmt = mgmt
        ? await this.d.mgmtSecrets.persist(cr, mgmt, reg, annotations, previous, { onConflict: undo })
        : await this.d.mgmtSecrets.persistNew(cr, mgmtName, reg, annotations, { onConflict: undo });
    } catch (error) {
      if (error instanceof WritePendingError) {
        throw new OutcomeError({
          kind: 'retry',
          reason: Reason.SecretWriteFailed,
          message: `client ${reg.clientId} registered; ${error.message}`,
          retryAfterMs: error.retryAfterMs,
        });
      }
      throw new OutcomeError({
        kind: 'retry',
        reason: Reason.SecretWriteFailed,
        message: `the new registration was not stored, so client ${reg.clientId} was deleted at the provider again: ${errorMessage(error)}`,
        retryAfterMs: 200,
      });
    }
    // No `Registered` Event: the Ready condition (reason Registered, the client_id and issuer) and
    // status.clientId say the same, and an Event per new client is one more write per client.
    log.info({ clientId: reg.clientId }, 'registered client');
    // Stored (so it is neither lost nor registered twice), but never called while untrusted.
    provider.client.assertManageable(reg.registrationClientUri, reg.clientId);
    return { kind: 'managed', reg, observed: created, mgmt };
  }

  /**
   * A 201 without registration_access_token / registration_client_uri: the client exists and its
   * credentials work, but nobody can update or delete it through RFC 7592. Store it (never POST
   * again) and say so.
   */
  private async storeUnmanaged(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    created: RegisteredClient,
    metadata: ClientMetadata,
    previous: StoredRegistration | undefined,
    log: Logger,
  ): Promise<Registration> {
    const reg: UnmanagedRegistration = { clientId: created.clientId, issuer: provider.endpoints.issuer };
    if (created.clientSecret !== undefined) reg.clientSecret = created.clientSecret;
    const marks = {
      [ANNOTATION_STATE]: 'registered',
      [ANNOTATION_MANAGEMENT]: 'unsupported',
      [ANNOTATION_REGISTERED_METADATA]: metadataFingerprint(metadata),
      ...answeredRequest(cr),
    };
    let stored: V1Secret;
    try {
      stored = mgmt
        ? await this.d.mgmtSecrets.persist(cr, mgmt, reg, marks, previous)
        : await this.d.mgmtSecrets.persistNew(cr, mgmtName, reg, marks);
    } catch (error) {
      // Without a token it cannot be deleted again: say which client is left behind.
      this.d.events.record(
        cr,
        'Warning',
        'OrphanedClient',
        `client ${reg.clientId} was registered without management and could not be stored: ${errorMessage(error)}`,
      );
      throw error;
    }
    this.d.events.record(
      cr,
      'Warning',
      Reason.ManagementUnsupported,
      `the provider registered client ${reg.clientId} without a registration access token (no RFC 7592 management): the operator cannot update it or delete it at the provider`,
    );
    log.warn({ clientId: reg.clientId }, 'registered client without RFC 7592 management');
    return { kind: 'unmanaged', reg, mgmt: stored };
  }

  /** Take over an existing registration: verify it with GET, then store it as our own. */
  async adopt(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    log: Logger,
  ): Promise<Registration> {
    const ref = cr.spec.adoptFrom?.secretRef as { name: string; key?: string };
    const source = await readSecret(this.d.rest, cr.metadata.namespace as string, ref.name);
    if (!source) {
      throw new OutcomeError({
        kind: 'retry',
        reason: Reason.AdoptionSecretNotFound,
        message: `adoption Secret ${ref.name} not found`,
        retryAfterMs: 10_000,
      });
    }
    const candidate = parseAdoptionSecret(source, ref.key ?? 'client.json');
    if ('error' in candidate) {
      throw new OutcomeError({
        kind: 'stalled',
        reason: Reason.AdoptionFailed,
        message: `adoption Secret ${ref.name}: ${candidate.error}`,
      });
    }
    if (candidate.kind === 'unmanaged')
      return this.adoptUnmanaged(cr, provider, mgmt, mgmtName, candidate, log);
    let observed: RegisteredClient;
    try {
      observed = await provider.client.read(
        candidate.registrationClientUri,
        candidate.registrationAccessToken,
        candidate.clientId,
      );
    } catch (error) {
      if (error instanceof ForeignEndpointError) {
        error.message = `adoption Secret ${ref.name}: ${error.message}`;
        throw error;
      }
      if (error instanceof ClientMismatchError) {
        throw new OutcomeError({
          kind: 'stalled',
          reason: Reason.AdoptionFailed,
          message: `adoption Secret ${ref.name}: ${error.message}`,
        });
      }
      if (error instanceof TokenRejectedError || error instanceof ClientNotFoundError) {
        throw new OutcomeError({
          kind: 'stalled',
          reason: Reason.AdoptionFailed,
          message: `the provider rejected the registration in Secret ${ref.name} (${error.message}); update the Secret`,
        });
      }
      throw error;
    }
    if (observed.clientId !== candidate.clientId) {
      throw new OutcomeError({
        kind: 'stalled',
        reason: Reason.AdoptionFailed,
        message: `registration_client_uri answers for client ${observed.clientId}, not ${candidate.clientId}`,
      });
    }
    const reg = toStored(observed, provider, candidate);
    if (!reg) throw new ReconcileError('adoption: missing registration data');
    const marks = {
      [ANNOTATION_STATE]: 'registered',
      [ANNOTATION_ADOPTED]: reg.clientId,
      ...answeredRequest(cr),
    };
    // An orphaned management Secret (deletionPolicy: Orphan) named as the source is taken back.
    if (mgmt && mgmt.metadata?.uid === source.metadata?.uid) mgmt = await this.d.mgmtSecrets.claim(cr, mgmt);
    mgmt = mgmt
      ? await this.d.mgmtSecrets.persist(cr, mgmt, reg, marks)
      : await this.d.mgmtSecrets.create(cr, mgmtName, managementSecretData(reg), marks);
    this.d.events.record(cr, 'Normal', 'Adopted', `adopted existing client ${reg.clientId}`);
    log.info({ clientId: reg.clientId }, 'adopted client');
    return { kind: 'managed', reg, observed, mgmt };
  }

  /**
   * A registration without RFC 7592 management (no token, no URI) cannot be read: its credentials
   * are checked at the token endpoint instead (when it has a secret to check), then stored like a
   * registration that came without management. Spec changes cannot reach the provider.
   */
  private async adoptUnmanaged(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    candidate: { clientId: string; clientSecret?: string },
    log: Logger,
  ): Promise<Registration> {
    const ref = cr.spec.adoptFrom?.secretRef as { name: string };
    const probe = await provider.client.probeCredentials(
      candidate.clientId,
      candidate.clientSecret,
      cr.spec.tokenEndpointAuthMethod,
    );
    if (probe === 'invalid') {
      throw new OutcomeError({
        kind: 'stalled',
        reason: Reason.AdoptionFailed,
        message: `the credentials of client ${candidate.clientId} in Secret ${ref.name} do not authenticate at the provider's token endpoint; update the Secret`,
      });
    }
    const reg: UnmanagedRegistration = { clientId: candidate.clientId, issuer: provider.endpoints.issuer };
    if (candidate.clientSecret !== undefined) reg.clientSecret = candidate.clientSecret;
    const marks = {
      [ANNOTATION_STATE]: 'registered',
      [ANNOTATION_MANAGEMENT]: 'unsupported',
      [ANNOTATION_REGISTERED_METADATA]: metadataFingerprint(desiredMetadata(cr)),
      [ANNOTATION_ADOPTED]: reg.clientId,
      ...answeredRequest(cr),
    };
    mgmt = mgmt
      ? await this.d.mgmtSecrets.persist(cr, mgmt, reg, marks)
      : await this.d.mgmtSecrets.create(cr, mgmtName, managementSecretData(reg), marks);
    this.d.events.record(cr, 'Normal', 'Adopted', `adopted existing client ${reg.clientId}`);
    this.d.events.record(
      cr,
      'Warning',
      Reason.ManagementUnsupported,
      `client ${reg.clientId} has no registration access token (no RFC 7592 management): the operator keeps its Secret but cannot update it or delete it at the provider${probe === 'unknown' ? '; its credentials could not be checked' : ''}`,
    );
    log.info({ clientId: reg.clientId }, 'adopted client without RFC 7592 management');
    return { kind: 'unmanaged', reg, mgmt };
  }

  /**
   * The drift check: GET the client and store a rotated token at once. A 401 is ambiguous (RFC
   * 7592 §2.1): the token endpoint tells whether the client still exists.
   */
  async check(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret,
    reg: StoredRegistration,
  ): Promise<RemoteObservation> {
    try {
      const observed = await provider.client.read(
        reg.registrationClientUri,
        reg.registrationAccessToken,
        reg.clientId,
      );
      const next = toStored(observed, provider, reg) ?? reg;
      if (changedRegistration(reg, next) || mgmt.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN]) {
        await this.d.mgmtSecrets.persist(cr, mgmt, next);
      }
      this.refuseUntrustedAnswer(cr, provider, observed, 'GET');
      return { kind: 'found', clientId: reg.clientId, client: observed };
    } catch (error) {
      if (error instanceof ClientNotFoundError)
        return { kind: 'gone', clientId: reg.clientId, why: `answered ${error.status}` };
      if (error instanceof UnconfirmedNotFoundError) {
        // A bare 404 (e.g. an ingress's HTML page during maintenance) is gone only when confirmed.
        const probe = await provider.client.probeCredentials(
          reg.clientId,
          reg.clientSecret,
          cr.spec.tokenEndpointAuthMethod,
        );
        if (probe === 'invalid') {
          const why = `answered ${error.status} and the client credentials no longer work`;
          return { kind: 'gone', clientId: reg.clientId, why };
        }
        throw new OutcomeError({
          kind: 'retry',
          reason: Reason.UnexpectedResponse,
          message: `${error.message}; the client credentials ${probe === 'valid' ? 'still work' : 'could not be checked'}, so client ${reg.clientId} is not registered again; retrying`,
        });
      }
      if (!(error instanceof TokenRejectedError)) throw error;
      const probe = await provider.client.probeCredentials(
        reg.clientId,
        reg.clientSecret,
        cr.spec.tokenEndpointAuthMethod,
      );
      if (probe === 'invalid') {
        return {
          kind: 'gone',
          clientId: reg.clientId,
          why: 'rejected the registration access token and the client credentials',
        };
      }
      return { kind: 'tokenRejected', clientId: reg.clientId, probe };
    }
  }

  /** PUT what the spec asks for; values the provider does not keep are not sent again. */
  async update(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret,
    mgmtName: string,
    reg: StoredRegistration,
    observed: RegisteredClient,
    status: OidcClientStatus,
    specChanged: boolean,
    log: Logger,
  ): Promise<void> {
    const ignored = new Set(status.ignoredFields ?? []);
    const desired = desiredMetadata(cr);
    for (const f of ignored) delete desired[f];
    const fields = diffSpecified(desired, observed.metadata, storedForms(mgmt)).map((d) => d.field);
    if (fields.length === 0) return;
    let updated: RegisteredClient;
    try {
      updated = await provider.client.update(
        reg.registrationClientUri,
        reg.registrationAccessToken,
        reg.clientId,
        metadataForUpdate(desired, observed.metadata, reg.clientId),
        reg.clientSecret,
      );
    } catch (error) {
      if (error instanceof TokenRejectedError) {
        await this.d.mgmtSecrets.markRejected(mgmt, reg);
        throw new OutcomeError({
          kind: 'stalled',
          reason: Reason.RegistrationTokenRejected,
          message: `the provider rejected the registration access token on update; put a valid token in Secret ${mgmtName}`,
        });
      }
      throw error;
    }
    const next = toStored(updated, provider, reg) ?? reg;
    const verdict = judgeWrite(desired, updated.metadata);
    const forms = formsAnnotation(mgmt, verdict.forms);
    if (changedRegistration(reg, next) || Object.keys(forms).length > 0) {
      await this.d.mgmtSecrets.persist(cr, mgmt, next, { ...REGISTERED_MARK, ...forms });
    }
    this.refuseUntrustedAnswer(cr, provider, updated, 'PUT');
    // A value the provider did not keep after a successful PUT (dropped or changed, not merely
    // extended with its own defaults): stop sending it until the spec changes, instead of fighting.
    const stuck = verdict.notKept;
    if (stuck.length > 0) {
      status.ignoredFields = [...new Set([...ignored, ...stuck])].sort();
      this.d.events.record(
        cr,
        'Warning',
        Reason.ValueNotAccepted,
        `the provider did not keep ${stuck.join(', ')}; not re-sending until the spec changes`,
      );
    }
    status.lastSyncTime = new Date().toISOString();
    const verb = specChanged ? 'Updated' : 'DriftCorrected';
    this.d.events.record(
      cr,
      'Normal',
      verb,
      `${specChanged ? 'updated' : 'repaired out-of-band changes to'} ${fields.join(', ')} of client ${reg.clientId}`,
    );
    log.info({ clientId: reg.clientId, fields }, specChanged ? 'updated client' : 'corrected drift');
  }

  /**
   * A GET or PUT answer named a management URL the operator may not call: the stored one stays (and
   * whatever else the answer brought, such as a rotated token, is already stored). Ready=False with
   * a Warning Event; checked again after a while, or at once when the provider resource changes.
   */
  private refuseUntrustedAnswer(
    cr: OidcClient,
    provider: ResolvedProvider,
    answer: RegisteredClient,
    call: 'GET' | 'PUT',
  ): void {
    const uri = answer.untrustedRegistrationClientUri;
    if (uri === undefined) return;
    let why = 'it is not usable';
    try {
      provider.client.assertManageable(uri, answer.clientId);
    } catch (error) {
      if (error instanceof ForeignEndpointError) {
        why = `it is on ${error.origin}, not an origin of the provider (${provider.client.managementOrigins.join(', ')}); if the provider really serves it, add it to spec.managementOrigins of the provider`;
      } else if (error instanceof ClientMismatchError) why = 'it names another client';
    }
    const message = `the provider's ${call} answer for client ${answer.clientId} names a new registration_client_uri that is not trusted: ${why}. The stored one is kept`;
    this.d.events.record(cr, 'Warning', Reason.UntrustedEndpoint, message);
    throw new OutcomeError({
      kind: 'retry',
      reason: Reason.UntrustedEndpoint,
      message,
      retryAfterMs: UNTRUSTED_ANSWER_RECHECK_MS,
    });
  }

  /**
   * RFC 7592 DELETE. Resolves 'deleted' or 'gone' (already gone at the provider); a rejected token
   * while the client still authenticates is an OutcomeError. `signal` bounds the whole call.
   */
  async deleteAtProvider(
    cr: OidcClient,
    provider: ResolvedProvider,
    reg: StoredRegistration,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<'deleted' | 'gone'> {
    try {
      await provider.client.delete(reg.registrationClientUri, reg.registrationAccessToken, reg.clientId, {
        signal,
      });
      this.d.events.record(cr, 'Normal', 'Deleted', `deleted client ${reg.clientId} at the provider`);
      log.info({ clientId: reg.clientId }, 'deleted client at the provider');
      return 'deleted';
    } catch (error) {
      if (error instanceof ClientNotFoundError) return 'gone';
      if (error instanceof UnconfirmedNotFoundError) {
        const probe = await provider.client.probeCredentials(
          reg.clientId,
          reg.clientSecret,
          cr.spec.tokenEndpointAuthMethod,
        );
        if (probe === 'invalid') return 'gone'; // confirmed
        throw error;
      }
      if (error instanceof TokenRejectedError) {
        const probe = await provider.client.probeCredentials(
          reg.clientId,
          reg.clientSecret,
          cr.spec.tokenEndpointAuthMethod,
        );
        if (probe === 'invalid') return 'gone';
        throw new OutcomeError({
          kind: 'retry',
          reason: Reason.RegistrationTokenRejected,
          message: `cannot delete client ${reg.clientId}: the registration access token was rejected; set deletionPolicy: Orphan or store a valid token`,
          retryAfterMs: 30_000,
        });
      }
      throw error;
    }
  }
}

/**
 * What to store from an answer. A registration_client_uri the operator may not call is kept out,
 * except from a new registration: that client exists at the provider, so it is stored (never
 * called) rather than lost, and no second client is registered.
 */
function toStored(
  r: RegisteredClient,
  provider: ResolvedProvider,
  prev: { registrationAccessToken: string; registrationClientUri: string; clientSecret?: string } | undefined,
): StoredRegistration | undefined {
  const rat = r.registrationAccessToken ?? prev?.registrationAccessToken;
  const uri =
    r.registrationClientUri ??
    prev?.registrationClientUri ??
    (prev === undefined ? r.untrustedRegistrationClientUri : undefined);
  if (!rat || !uri) return undefined;
  return {
    clientId: r.clientId,
    clientSecret: r.clientSecret ?? prev?.clientSecret,
    registrationAccessToken: rat,
    registrationClientUri: uri,
    issuer: provider.endpoints.issuer,
  };
}

const REGISTERED_MARK = { [ANNOTATION_STATE]: 'registered' };

function storedForms(mgmt: V1Secret | undefined): ProviderForms {
  return parseProviderForms(mgmt?.metadata?.annotations?.[ANNOTATION_PROVIDER_FORMS]);
}

/** The forms annotation to write: only when it changes ('' clears what an earlier answer taught). */
function formsAnnotation(mgmt: V1Secret | undefined, forms: ProviderForms): Record<string, string> {
  const text = formatProviderForms(forms);
  const current = mgmt?.metadata?.annotations?.[ANNOTATION_PROVIDER_FORMS];
  return text === (current ?? '') ? {} : { [ANNOTATION_PROVIDER_FORMS]: text };
}

function changedRegistration(a: StoredRegistration, b: StoredRegistration): boolean {
  return (
    a.clientId !== b.clientId ||
    a.clientSecret !== b.clientSecret ||
    a.registrationAccessToken !== b.registrationAccessToken ||
    a.registrationClientUri !== b.registrationClientUri ||
    a.issuer !== b.issuer
  );
}

function isSuccess(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

/** A failure before the request was sent: the provider cannot have registered anything. */
function neverSent(error: ProviderUnavailableError): boolean {
  return error.code === 'ECONNREFUSED' || isTlsVerificationCode(error.code);
}
