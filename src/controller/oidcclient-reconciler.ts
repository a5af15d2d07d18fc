// The OidcClient reconciler: drives the provider (observe / create / update / delete through
// RFC 7591/7592) and keeps the two Secrets and the status in line. Modelled on Crossplane's
// managed reconciler, minus its "wedge": what the provider returns is stored before anything
// else, and an interrupted registration is retried with an Event instead of blocking forever.
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_GROUP_VERSION } from '../api/schema.js';
import type { Condition, OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { validateOidcClientSpec } from '../api/validate.js';
import type { EventRecorder } from '../kube/events.js';
import { type CacheReader, errorMessage } from '../kube/informer.js';
import { isKubeStatus, KubeApiError, type KubeRest } from '../kube/rest.js';
import type { ReconcileOutcome } from '../kube/workqueue.js';
import {
  ClientNotFoundError,
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationError,
  RegistrationUnauthorizedError,
  TokenRejectedError,
} from '../registration/errors.js';
import { diffSpecified, metadataForUpdate, specToMetadata } from '../registration/metadata.js';
import type { ClientMetadata, RegisteredClient } from '../registration/types.js';
import { findCondition, Reason, type ReasonName, removeCondition, setCondition } from './conditions.js';
import {
  ANNOTATION_ADOPTED,
  ANNOTATION_ATTEMPT,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_STATE,
  appSecretName,
  clientKey,
  FINALIZER,
  managementSecretName,
  REGISTRATION_FINALIZER,
} from './names.js';
import {
  ProviderNotReadyError,
  type ProviderRegistry,
  providerKeyOf,
  type ResolvedProvider,
  tokenFingerprint,
} from './providers.js';
import {
  appSecretData,
  appSecretMatches,
  decode,
  desiredAppSecret,
  isOwnedBy,
  managementSecretData,
  newManagementSecret,
  readRegistration,
  type StoredRegistration,
} from './secrets.js';

export interface ReconcilerOptions {
  rest: KubeRest;
  clients: CacheReader<OidcClient>;
  secrets: CacheReader<V1Secret>;
  providers: ProviderRegistry;
  events: EventRecorder;
  log: Logger;
  /** Drift checks (GET at the provider) happen once per interval per client, spread with jitter. */
  resyncIntervalMs: number;
  /** How long a finalizer keeps trying to delete at an unreachable provider before letting go. */
  deletionTimeoutMs: number;
}

/** A failure already reported on the status; `retryAfterMs` hints the queue's next attempt. */
export class ReconcileError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ReconcileError';
  }
}

type Outcome =
  | { kind: 'ready'; reason: ReasonName; message: string }
  | { kind: 'stalled'; reason: ReasonName; message: string }
  | { kind: 'retry'; reason: ReasonName; message: string; retryAfterMs?: number };

const STALLED_FOR_GENERATION: ReadonlySet<string> = new Set([Reason.InvalidMetadata, Reason.AdoptionFailed]);

export class OidcClientReconciler {
  /** Next drift check per key; in memory, so a restart spreads checks over one interval again. */
  private readonly nextResync = new Map<string, number>();
  /** The management Secret we last wrote per key, for when the cache still shows the older one. */
  private readonly written = new Map<string, { supersededRv: string | undefined; secret: V1Secret }>();
  /**
   * Stalls decided for a generation (provider 400, failed adoption). The cache can still show the
   * status from before our write when the next event arrives; this keeps us from retrying then.
   */
  private readonly stalled = new Map<
    string,
    { generation: number | undefined; reason: ReasonName; message: string }
  >();
  /** Last registration seen per key: survives a deleted management Secret while we run. */
  private readonly lastKnown = new Map<string, StoredRegistration>();

  constructor(private readonly o: ReconcilerOptions) {}

  /** Called by the Secret informer with the last state of a deleted management Secret. */
  rememberRegistration(key: string, secret: V1Secret): void {
    const reg = readRegistration(secret);
    if (reg) this.lastKnown.set(key, reg);
  }

  forget(key: string): void {
    this.nextResync.delete(key);
    this.written.delete(key);
    this.lastKnown.delete(key);
    this.stalled.delete(key);
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    let cr = this.o.clients.get(key);
    if (!cr) {
      this.forget(key);
      return undefined;
    }
    if (cr.metadata.deletionTimestamp) return this.finalize(cr);
    if (!(cr.metadata.finalizers ?? []).includes(FINALIZER)) cr = await this.addFinalizer(cr);

    const log = this.o.log.child({ oidcclient: key });
    const status: OidcClientStatus = structuredClone(cr.status ?? {});
    let outcome: Outcome;
    try {
      outcome = await this.sync(cr, status, log);
    } catch (error) {
      outcome = this.classify(cr, error, log);
    }
    if (outcome.kind === 'stalled' && STALLED_FOR_GENERATION.has(outcome.reason)) {
      this.stalled.set(key, {
        generation: cr.metadata.generation,
        reason: outcome.reason,
        message: outcome.message,
      });
    }
    await this.writeStatus(cr, status, outcome);
    if (outcome.kind === 'retry') throw new ReconcileError(outcome.message, outcome.retryAfterMs);
    if (outcome.kind === 'stalled') return undefined;
    return { requeueAfterMs: this.resyncDelay(key) };
  }

  // ---------------------------------------------------------------- sync (create/observe/update)

  private async sync(cr: OidcClient, status: OidcClientStatus, log: Logger): Promise<Outcome> {
    const key = clientKey(cr);
    const generation = cr.metadata.generation;
    const issues = validateOidcClientSpec(cr.spec, { name: cr.metadata.name });
    if (issues.length > 0) {
      const message = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      this.o.events.record(cr, 'Warning', Reason.InvalidSpec, message);
      return { kind: 'stalled', reason: Reason.InvalidSpec, message };
    }
    // A provider 400 for this exact spec will not change by retrying; wait for a new generation.
    const ready = findCondition(status.conditions, 'Ready');
    if (
      status.observedGeneration === generation &&
      ready?.status === 'False' &&
      ready.reason &&
      STALLED_FOR_GENERATION.has(ready.reason) &&
      findCondition(status.conditions, 'Stalled')?.status === 'True'
    ) {
      return { kind: 'stalled', reason: ready.reason as ReasonName, message: ready.message ?? '' };
    }
    const remembered = this.stalled.get(key);
    if (remembered && remembered.generation === generation) {
      return { kind: 'stalled', reason: remembered.reason, message: remembered.message };
    }
    this.stalled.delete(key);

    const provider = await this.o.providers.resolve(cr);
    const mgmtName = managementSecretName(cr);
    let mgmt = await this.currentManagementSecret(cr, mgmtName);
    if (mgmt && !isOwnedBy(mgmt, cr)) {
      return this.secretConflict(cr, mgmtName);
    }
    if (mgmt?.metadata?.deletionTimestamp) {
      // Someone deleted the management Secret: keep its content, let it go, write it anew.
      // During namespace deletion the OidcClient goes too: keep the RAT for its finalizer.
      if (await this.namespaceTerminating(cr)) {
        return {
          kind: 'retry',
          reason: Reason.Deleting,
          message: 'namespace is terminating',
          retryAfterMs: 1000,
        };
      }
      const kept = readRegistration(mgmt);
      if (kept) this.lastKnown.set(key, kept);
      await this.releaseManagementSecret(mgmt);
      this.written.delete(key);
      mgmt = await this.waitGone(cr, mgmtName);
      if (mgmt)
        return {
          kind: 'retry',
          reason: Reason.Progressing,
          message: 'restoring the management Secret',
          retryAfterMs: 500,
        };
    }
    let reg = readRegistration(mgmt);
    if (!reg && !mgmt) {
      const remembered = this.lastKnown.get(key);
      if (remembered) {
        mgmt = await this.createManagementSecret(cr, mgmtName, remembered, {});
        reg = remembered;
        this.o.events.record(cr, 'Normal', 'SecretRestored', `management Secret ${mgmtName} restored`);
      }
    }

    let reason: ReasonName = Reason.Registered;
    let observed: RegisteredClient | undefined;
    if (!reg) {
      if (cr.spec.adoptFrom) {
        ({ reg, observed, mgmt } = await this.adopt(cr, provider, mgmt, mgmtName, log));
        reason = Reason.Adopted;
      } else {
        ({ reg, observed, mgmt } = await this.register(cr, provider, mgmt, mgmtName, log));
      }
      status.ignoredFields = undefined;
    } else if (
      this.rejectedTokenStillInUse(mgmt, reg) &&
      status.observedGeneration === generation &&
      !this.resyncDue(key)
    ) {
      const msg = findCondition(status.conditions, 'Ready')?.message ?? 'registration access token rejected';
      return { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message: msg };
    }

    // Observe (and update) when the spec changed, the drift interval elapsed, or the client is new.
    const specChanged = status.observedGeneration !== generation;
    if (specChanged) status.ignoredFields = undefined;
    const secretUnknown = !reg.clientSecret && cr.spec.tokenEndpointAuthMethod !== 'none';
    if (!observed && (specChanged || this.resyncDue(key) || !readyTrue(status) || secretUnknown)) {
      const r = await this.observe(cr, provider, mgmt, mgmtName, reg, log);
      if ('outcome' in r) return r.outcome;
      ({ reg, observed, mgmt } = r);
    }
    if (observed && mgmt) {
      const u = await this.updateIfDrifted(
        cr,
        provider,
        mgmt,
        mgmtName,
        reg,
        observed,
        status,
        specChanged,
        log,
      );
      reg = u.reg;
      mgmt = u.mgmt;
      this.scheduleResync(key);
    }
    const conflict = await this.ensureAppSecret(cr, provider, reg);
    if (conflict) return conflict;

    // An adopted client keeps saying so while it is the same client.
    if (mgmt?.metadata?.annotations?.[ANNOTATION_ADOPTED] === reg.clientId) reason = Reason.Adopted;
    status.clientId = reg.clientId;
    status.registrationClientUri = reg.registrationClientUri;
    status.secretName = appSecretName(cr);
    status.managementSecretName = mgmtName;
    if (observed?.clientSecretExpiresAt !== undefined)
      status.clientSecretExpiresAt = observed.clientSecretExpiresAt;
    const ignored = status.ignoredFields ?? [];
    const message =
      ignored.length > 0
        ? `client ${reg.clientId} registered; the provider does not keep: ${ignored.join(', ')}`
        : `client ${reg.clientId} registered at ${provider.endpoints.issuer}`;
    return { kind: 'ready', reason, message };
  }

  /** POST exactly once per CR: a 'pending' marker is stored first, the result right after. */
  private async register(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    log: Logger,
  ): Promise<{ reg: StoredRegistration; observed: RegisteredClient; mgmt: V1Secret }> {
    const conflict = await this.appSecretConflict(cr);
    if (conflict) throw conflict;
    const previousAttempt = mgmt?.metadata?.annotations?.[ANNOTATION_ATTEMPT];
    if (previousAttempt) {
      this.o.events.record(
        cr,
        'Warning',
        'RegistrationRetried',
        `an earlier registration attempt (${previousAttempt}) did not store its result; if it reached the provider, a client named ${cr.spec.clientName ?? cr.metadata.name} may be orphaned there`,
      );
    }
    const marker = { [ANNOTATION_STATE]: 'pending', [ANNOTATION_ATTEMPT]: new Date().toISOString() };
    mgmt = mgmt
      ? await this.replaceManagementSecret(cr, mgmt, mgmt.data ?? {}, marker)
      : await this.createManagementSecret(cr, mgmtName, undefined, marker);

    const metadata = this.desiredMetadata(cr);
    let created: RegisteredClient;
    try {
      created = await provider.client.register(metadata);
    } catch (error) {
      // The provider answered, so nothing was registered: clear the marker (best effort).
      if (error instanceof RegistrationError && !(error instanceof ProviderUnavailableError)) {
        mgmt = await this.replaceManagementSecret(cr, mgmt, mgmt.data ?? {}, {
          [ANNOTATION_STATE]: 'pending',
        }).catch(() => mgmt as V1Secret);
      }
      throw error;
    }
    const reg = toStored(created, provider, undefined);
    if (!reg) {
      throw new ReconcileError(
        'provider answered the registration without registration_access_token or registration_client_uri; RFC 7592 management is required',
      );
    }
    try {
      mgmt = await this.persistWithRetry(cr, mgmt, reg);
    } catch (error) {
      // We could not store what we just created: undo it at the provider so nothing is orphaned.
      log.error(
        { err: errorMessage(error) },
        'could not store new registration; deleting it at the provider',
      );
      await provider.client
        .delete(reg.registrationClientUri, reg.registrationAccessToken)
        .catch((e: unknown) => {
          this.o.events.record(
            cr,
            'Warning',
            'OrphanedClient',
            `client ${reg.clientId} could not be stored nor deleted: ${errorMessage(e)}`,
          );
        });
      throw new OutcomeError({
        kind: 'retry',
        reason: Reason.SecretWriteFailed,
        message: `storing the registration failed, so the new client was deleted at the provider again: ${errorMessage(error)}`,
      });
    }
    this.lastKnown.set(clientKey(cr), reg);
    this.o.events.record(
      cr,
      'Normal',
      'Registered',
      `registered client ${reg.clientId} at ${provider.endpoints.registrationEndpoint}`,
    );
    log.info({ clientId: reg.clientId }, 'registered client');
    return { reg, observed: created, mgmt };
  }

  /** Take over an existing registration: verify it with GET, then store it as our own. */
  private async adopt(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    log: Logger,
  ): Promise<{ reg: StoredRegistration; observed: RegisteredClient; mgmt: V1Secret }> {
    const ref = cr.spec.adoptFrom?.secretRef as { name: string; key?: string };
    let source: V1Secret;
    try {
      source = await this.o.rest.get<V1Secret>(
        `/api/v1/namespaces/${cr.metadata.namespace}/secrets/${ref.name}`,
      );
    } catch (error) {
      if (isKubeStatus(error, 404)) {
        throw new OutcomeError({
          kind: 'retry',
          reason: Reason.AdoptionSecretNotFound,
          message: `adoption Secret ${ref.name} not found`,
          retryAfterMs: 10_000,
        });
      }
      throw error;
    }
    const candidate = parseAdoptionSecret(source, ref.key ?? 'client.json');
    if ('error' in candidate) {
      throw new OutcomeError({
        kind: 'stalled',
        reason: Reason.AdoptionFailed,
        message: `adoption Secret ${ref.name}: ${candidate.error}`,
      });
    }
    let observed: RegisteredClient;
    try {
      observed = await provider.client.read(
        candidate.registrationClientUri,
        candidate.registrationAccessToken,
      );
    } catch (error) {
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
    const marks = { [ANNOTATION_STATE]: 'registered', [ANNOTATION_ADOPTED]: reg.clientId };
    mgmt = mgmt
      ? await this.persistWithRetry(cr, mgmt, reg, marks)
      : await this.createManagementSecret(cr, mgmtName, reg, marks);
    this.lastKnown.set(clientKey(cr), reg);
    this.o.events.record(cr, 'Normal', 'Adopted', `adopted existing client ${reg.clientId}`);
    log.info({ clientId: reg.clientId }, 'adopted client');
    return { reg, observed, mgmt };
  }

  /** GET the client; handles a rotated RAT, a vanished client (re-register) and a rejected RAT. */
  private async observe(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    reg: StoredRegistration,
    log: Logger,
  ): Promise<{ reg: StoredRegistration; observed: RegisteredClient; mgmt: V1Secret } | { outcome: Outcome }> {
    try {
      const observed = await provider.client.read(reg.registrationClientUri, reg.registrationAccessToken);
      const next = toStored(observed, provider, reg) ?? reg;
      if (
        mgmt &&
        (changedRegistration(reg, next) || mgmt.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN])
      ) {
        mgmt = await this.persistWithRetry(cr, mgmt, next);
      }
      if (!mgmt)
        mgmt = await this.createManagementSecret(cr, mgmtName, next, { [ANNOTATION_STATE]: 'registered' });
      this.lastKnown.set(clientKey(cr), next);
      return { reg: next, observed, mgmt };
    } catch (error) {
      if (error instanceof ClientNotFoundError)
        return this.reregister(cr, provider, mgmt, mgmtName, reg, 'answered 404', log);
      if (!(error instanceof TokenRejectedError)) throw error;
      // 401 is ambiguous (RFC 7592 §2.1): ask the token endpoint whether the client still exists.
      const probe = await provider.client.probeCredentials(
        reg.clientId,
        reg.clientSecret,
        cr.spec.tokenEndpointAuthMethod,
      );
      if (probe === 'invalid') {
        return this.reregister(
          cr,
          provider,
          mgmt,
          mgmtName,
          reg,
          'rejected the registration access token and the client credentials',
          log,
        );
      }
      if (mgmt) await this.markRejected(mgmt, reg);
      const message = `the provider rejected the registration access token of client ${reg.clientId} (client credentials ${probe === 'valid' ? 'still work' : 'could not be checked'}); put a valid token in Secret ${mgmtName} key registration_access_token, or delete the OidcClient with deletionPolicy: Orphan`;
      this.o.events.record(cr, 'Warning', Reason.RegistrationTokenRejected, message);
      return { outcome: { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message } };
    }
  }

  private async reregister(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret | undefined,
    mgmtName: string,
    old: StoredRegistration,
    why: string,
    log: Logger,
  ): Promise<{ reg: StoredRegistration; observed: RegisteredClient; mgmt: V1Secret }> {
    log.warn({ clientId: old.clientId }, `client gone at the provider (${why}); registering again`);
    // Clear the old credentials first so a crash here leads to one new registration, not a loop.
    if (mgmt) mgmt = await this.replaceManagementSecret(cr, mgmt, {}, { [ANNOTATION_STATE]: 'pending' });
    this.lastKnown.delete(clientKey(cr));
    const r = await this.register(cr, provider, mgmt, mgmtName, log);
    this.o.events.record(
      cr,
      'Warning',
      'ReRegistered',
      `client ${old.clientId} is gone at the provider (${why}); registered ${r.reg.clientId} instead`,
    );
    return r;
  }

  private async updateIfDrifted(
    cr: OidcClient,
    provider: ResolvedProvider,
    mgmt: V1Secret,
    mgmtName: string,
    reg: StoredRegistration,
    observed: RegisteredClient,
    status: OidcClientStatus,
    specChanged: boolean,
    log: Logger,
  ): Promise<{ reg: StoredRegistration; mgmt: V1Secret }> {
    const ignored = new Set(status.ignoredFields ?? []);
    const desired = this.desiredMetadata(cr);
    for (const f of ignored) delete desired[f];
    const diffs = diffSpecified(desired, observed.metadata);
    if (diffs.length === 0) return { reg, mgmt };
    const fields = diffs.map((d) => d.field);
    let updated: RegisteredClient;
    try {
      updated = await provider.client.update(
        reg.registrationClientUri,
        reg.registrationAccessToken,
        reg.clientId,
        metadataForUpdate(desired, observed.metadata, reg.clientId),
      );
    } catch (error) {
      if (error instanceof TokenRejectedError) {
        await this.markRejected(mgmt, reg);
        throw new OutcomeError({
          kind: 'stalled',
          reason: Reason.RegistrationTokenRejected,
          message: `the provider rejected the registration access token on update; put a valid token in Secret ${mgmtName}`,
        });
      }
      throw error;
    }
    const next = toStored(updated, provider, reg) ?? reg;
    if (changedRegistration(reg, next)) mgmt = await this.persistWithRetry(cr, mgmt, next);
    this.lastKnown.set(clientKey(cr), next);
    // What still differs after a successful PUT is normalised or dropped by the provider: stop
    // sending it until the spec changes, instead of fighting.
    const stuck = diffSpecified(desired, updated.metadata).map((d) => d.field);
    if (stuck.length > 0) {
      status.ignoredFields = [...new Set([...ignored, ...stuck])].sort();
      this.o.events.record(
        cr,
        'Warning',
        Reason.ValueNotAccepted,
        `the provider did not keep ${stuck.join(', ')}; not re-sending until the spec changes`,
      );
    }
    status.lastSyncTime = new Date().toISOString();
    const verb = specChanged ? 'Updated' : 'DriftCorrected';
    this.o.events.record(
      cr,
      'Normal',
      verb,
      `${specChanged ? 'updated' : 'repaired out-of-band changes to'} ${fields.join(', ')} of client ${reg.clientId}`,
    );
    log.info({ clientId: reg.clientId, fields }, specChanged ? 'updated client' : 'corrected drift');
    return { reg: next, mgmt };
  }

  // ---------------------------------------------------------------- deletion

  private async finalize(cr: OidcClient): Promise<ReconcileOutcome> {
    if (!(cr.metadata.finalizers ?? []).includes(FINALIZER)) return undefined;
    const key = clientKey(cr);
    const log = this.o.log.child({ oidcclient: key });
    const mgmtName = managementSecretName(cr);
    const mgmt = await this.currentManagementSecret(cr, mgmtName);
    const owned = mgmt && isOwnedBy(mgmt, cr) ? mgmt : undefined;
    const reg = readRegistration(owned) ?? this.lastKnown.get(key);
    const policy = cr.spec.deletionPolicy ?? 'Delete';
    const elapsed = Date.now() - Date.parse(cr.metadata.deletionTimestamp as unknown as string);
    const overdue = elapsed > this.o.deletionTimeoutMs;

    if (policy === 'Delete' && reg) {
      try {
        const provider = await this.o.providers.resolve(cr);
        await this.deleteAtProvider(cr, provider, reg, log);
      } catch (error) {
        if (!overdue) {
          const outcome = this.classify(cr, error, log);
          await this.writeStatus(cr, structuredClone(cr.status ?? {}), {
            ...outcome,
            kind: 'retry',
            message: `deleting the client at the provider: ${outcome.message}`,
          });
          throw new ReconcileError(
            outcome.message,
            outcome.kind === 'retry' ? outcome.retryAfterMs : undefined,
          );
        }
        this.o.events.record(
          cr,
          'Warning',
          'DeletionAbandoned',
          `client ${reg.clientId} could not be deleted at the provider within ${Math.round(this.o.deletionTimeoutMs / 1000)} s (${errorMessage(error)}); it may remain registered there`,
        );
      }
    } else if (reg) {
      this.o.events.record(
        cr,
        'Normal',
        'Orphaned',
        `client ${reg.clientId} left registered at the provider (deletionPolicy: Orphan)`,
      );
    }
    if (owned) await this.releaseManagementSecret(owned);
    this.written.delete(key);
    await this.removeFinalizer(cr);
    this.forget(key);
    return undefined;
  }

  private async deleteAtProvider(
    cr: OidcClient,
    provider: ResolvedProvider,
    reg: StoredRegistration,
    log: Logger,
  ): Promise<void> {
    try {
      await provider.client.delete(reg.registrationClientUri, reg.registrationAccessToken);
      this.o.events.record(cr, 'Normal', 'Deleted', `deleted client ${reg.clientId} at the provider`);
      log.info({ clientId: reg.clientId }, 'deleted client at the provider');
    } catch (error) {
      if (error instanceof ClientNotFoundError) return;
      if (error instanceof TokenRejectedError) {
        const probe = await provider.client.probeCredentials(
          reg.clientId,
          reg.clientSecret,
          cr.spec.tokenEndpointAuthMethod,
        );
        if (probe === 'invalid') return; // already gone
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

  // ---------------------------------------------------------------- Secrets

  private async ensureAppSecret(
    cr: OidcClient,
    provider: ResolvedProvider,
    reg: StoredRegistration,
  ): Promise<Outcome | undefined> {
    const name = appSecretName(cr);
    const ns = cr.metadata.namespace as string;
    const desired = desiredAppSecret(
      cr,
      name,
      appSecretData({
        clientId: reg.clientId,
        clientSecret: reg.clientSecret,
        issuer: provider.endpoints.issuer,
        tokenEndpoint: provider.endpoints.tokenEndpoint,
      }),
    );
    const cached = this.o.secrets.get(`${ns}/${name}`);
    if (cached && !isOwnedBy(cached, cr)) return this.secretConflict(cr, name);
    if (cached && appSecretMatches(cached, desired)) return undefined;
    if (!cached) {
      try {
        await this.o.rest.create(`/api/v1/namespaces/${ns}/secrets`, desired);
        if (readyTrue(cr.status ?? {})) {
          this.o.events.record(cr, 'Normal', 'SecretRestored', `application Secret ${name} restored`);
        }
        return undefined;
      } catch (error) {
        if (!isKubeStatus(error, 409)) throw error;
      }
    }
    const current = cached ?? (await this.o.rest.get<V1Secret>(`/api/v1/namespaces/${ns}/secrets/${name}`));
    if (!isOwnedBy(current, cr)) return this.secretConflict(cr, name);
    const merged: V1Secret = {
      ...current,
      metadata: {
        ...current.metadata,
        labels: { ...(current.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) },
        annotations: { ...(current.metadata?.annotations ?? {}), ...(desired.metadata?.annotations ?? {}) },
      },
      data: desired.data,
    };
    await this.o.rest.replace(`/api/v1/namespaces/${ns}/secrets/${name}`, merged);
    this.o.events.record(cr, 'Normal', 'SecretRestored', `application Secret ${name} brought back in line`);
    return undefined;
  }

  /** Before registering: an application Secret of that name we do not own blocks us. */
  private async appSecretConflict(cr: OidcClient): Promise<OutcomeError | undefined> {
    const name = appSecretName(cr);
    if (this.o.secrets.get(`${cr.metadata.namespace}/${name}`)) {
      const s = this.o.secrets.get(`${cr.metadata.namespace}/${name}`) as V1Secret;
      return isOwnedBy(s, cr) ? undefined : new OutcomeError(this.secretConflict(cr, name));
    }
    try {
      const s = await this.o.rest.get<V1Secret>(
        `/api/v1/namespaces/${cr.metadata.namespace}/secrets/${name}`,
      );
      return isOwnedBy(s, cr) ? undefined : new OutcomeError(this.secretConflict(cr, name));
    } catch (error) {
      if (isKubeStatus(error, 404)) return undefined;
      throw error;
    }
  }

  private secretConflict(cr: OidcClient, name: string): Outcome {
    const message = `Secret ${name} exists and is not owned by this OidcClient; it is left untouched. Choose another name (spec.secretName / spec.managementSecretName) or remove that Secret`;
    this.o.events.record(cr, 'Warning', Reason.SecretConflict, message);
    return { kind: 'stalled', reason: Reason.SecretConflict, message };
  }

  /** Cache first; the copy we wrote ourselves wins while the cache still shows the one it replaced. */
  private async currentManagementSecret(cr: OidcClient, name: string): Promise<V1Secret | undefined> {
    const key = clientKey(cr);
    const cached = this.o.secrets.get(`${cr.metadata.namespace}/${name}`);
    const mine = this.written.get(key);
    if (mine && mine.secret.metadata?.name === name) {
      const mineRv = mine.secret.metadata?.resourceVersion;
      if (cached?.metadata?.resourceVersion === mineRv) {
        this.written.delete(key);
        return cached;
      }
      if (cached && cached.metadata?.resourceVersion === mine.supersededRv) return mine.secret;
      if (!cached && mine.supersededRv === undefined) return mine.secret;
      this.written.delete(key);
    }
    if (cached) return cached;
    // Not in the cache: absent, not ours (no label), or the cache lags. Ask.
    return this.readSecret(cr, name);
  }

  private async namespaceTerminating(cr: OidcClient): Promise<boolean> {
    try {
      const ns = await this.o.rest.get<{ status?: { phase?: string } }>(
        `/api/v1/namespaces/${cr.metadata.namespace}`,
      );
      return ns.status?.phase === 'Terminating';
    } catch {
      return false;
    }
  }

  /** After releasing our finalizer the Secret disappears within moments; wait a little for it. */
  private async waitGone(cr: OidcClient, name: string): Promise<V1Secret | undefined> {
    for (let i = 0; i < 20; i++) {
      const s = await this.readSecret(cr, name);
      if (!s) return undefined;
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.readSecret(cr, name);
  }

  private async readSecret(cr: OidcClient, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.o.rest.get<V1Secret>(`/api/v1/namespaces/${cr.metadata.namespace}/secrets/${name}`);
    } catch (error) {
      if (isKubeStatus(error, 404)) return undefined;
      throw error;
    }
  }

  private async createManagementSecret(
    cr: OidcClient,
    name: string,
    reg: StoredRegistration | undefined,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    const body = newManagementSecret(cr, name, reg ? managementSecretData(reg) : {}, annotations);
    try {
      const created = await this.o.rest.create<V1Secret>(
        `/api/v1/namespaces/${cr.metadata.namespace}/secrets`,
        body,
      );
      this.written.set(clientKey(cr), { supersededRv: undefined, secret: created });
      return created;
    } catch (error) {
      if (isKubeStatus(error, 409)) {
        const existing = await this.readSecret(cr, name);
        if (existing && !isOwnedBy(existing, cr)) throw new OutcomeError(this.secretConflict(cr, name));
        throw new ReconcileError(`management Secret ${name} appeared concurrently; retrying`, 200);
      }
      throw error;
    }
  }

  private async replaceManagementSecret(
    cr: OidcClient,
    current: V1Secret,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    const keep = Object.fromEntries(
      Object.entries(current.metadata?.annotations ?? {}).filter(
        ([k]) => k !== ANNOTATION_STATE && k !== ANNOTATION_ATTEMPT && k !== ANNOTATION_REJECTED_TOKEN,
      ),
    );
    const finalizers = [...new Set([...(current.metadata?.finalizers ?? []), REGISTRATION_FINALIZER])];
    const body: V1Secret = {
      ...current,
      metadata: { ...current.metadata, annotations: { ...keep, ...annotations }, finalizers },
      data,
    };
    const path = `/api/v1/namespaces/${cr.metadata.namespace}/secrets/${current.metadata?.name}`;
    const replaced = await this.o.rest.replace<V1Secret>(path, body);
    this.written.set(clientKey(cr), { supersededRv: current.metadata?.resourceVersion, secret: replaced });
    return replaced;
  }

  /** Store a registration in the management Secret; on a 409 re-read and try again. */
  private async persistWithRetry(
    cr: OidcClient,
    mgmt: V1Secret,
    reg: StoredRegistration,
    annotations: Record<string, string> = { [ANNOTATION_STATE]: 'registered' },
  ): Promise<V1Secret> {
    let current = mgmt;
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        return await this.replaceManagementSecret(cr, current, managementSecretData(reg), annotations);
      } catch (error) {
        lastError = error;
        if (isKubeStatus(error, 404)) {
          return this.createManagementSecret(cr, current.metadata?.name as string, reg, annotations);
        }
        if (
          error instanceof KubeApiError &&
          error.status < 500 &&
          error.status !== 409 &&
          error.status !== 429
        )
          throw error;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        if (isKubeStatus(error, 409))
          current = (await this.readSecret(cr, current.metadata?.name as string)) ?? current;
      }
    }
    throw lastError;
  }

  private async markRejected(mgmt: V1Secret, reg: StoredRegistration): Promise<void> {
    const fp = tokenFingerprint(reg.registrationAccessToken);
    if (mgmt.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN] === fp) return;
    const path = `/api/v1/namespaces/${mgmt.metadata?.namespace}/secrets/${mgmt.metadata?.name}`;
    await this.o.rest.patch(path, 'merge', {
      metadata: { annotations: { [ANNOTATION_REJECTED_TOKEN]: fp } },
    });
  }

  private rejectedTokenStillInUse(mgmt: V1Secret | undefined, reg: StoredRegistration): boolean {
    const fp = mgmt?.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN];
    return fp !== undefined && fp === tokenFingerprint(reg.registrationAccessToken);
  }

  private async releaseManagementSecret(secret: V1Secret): Promise<void> {
    const finalizers = secret.metadata?.finalizers ?? [];
    const idx = finalizers.indexOf(REGISTRATION_FINALIZER);
    if (idx < 0) return;
    const path = `/api/v1/namespaces/${secret.metadata?.namespace}/secrets/${secret.metadata?.name}`;
    try {
      await this.o.rest.patch(path, 'json', [
        { op: 'test', path: `/metadata/finalizers/${idx}`, value: REGISTRATION_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (error) {
      if (isKubeStatus(error, 404)) return;
      if (isKubeStatus(error, 422) || isKubeStatus(error, 409)) {
        const fresh = await this.o.rest.get<V1Secret>(path).catch(() => undefined);
        if (fresh) return this.releaseManagementSecret(fresh);
        return;
      }
      throw error;
    }
  }

  // ---------------------------------------------------------------- CR metadata and status

  private async addFinalizer(cr: OidcClient): Promise<OidcClient> {
    const ops = cr.metadata.finalizers
      ? [{ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      : [{ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }];
    return this.o.rest.patch<OidcClient>(this.crPath(cr), 'json', [
      { op: 'test', path: '/metadata/resourceVersion', value: cr.metadata.resourceVersion },
      ...ops,
    ]);
  }

  private async removeFinalizer(cr: OidcClient): Promise<void> {
    const idx = (cr.metadata.finalizers ?? []).indexOf(FINALIZER);
    if (idx < 0) return;
    try {
      await this.o.rest.patch(this.crPath(cr), 'json', [
        { op: 'test', path: `/metadata/finalizers/${idx}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (error) {
      if (isKubeStatus(error, 404)) return;
      throw error;
    }
  }

  private crPath(cr: OidcClient, sub = ''): string {
    return `/apis/${API_GROUP_VERSION}/namespaces/${cr.metadata.namespace}/oidcclients/${cr.metadata.name}${sub}`;
  }

  private async writeStatus(cr: OidcClient, status: OidcClientStatus, outcome: Outcome): Promise<void> {
    const now = new Date().toISOString();
    const gen = cr.metadata.generation;
    let conditions: Condition[] = status.conditions ?? [];
    const ready = outcome.kind === 'ready';
    conditions = setCondition(
      conditions,
      { type: 'Ready', status: ready ? 'True' : 'False', reason: outcome.reason, message: outcome.message },
      gen,
      now,
    );
    conditions =
      outcome.kind === 'retry'
        ? setCondition(
            conditions,
            { type: 'Reconciling', status: 'True', reason: outcome.reason, message: outcome.message },
            gen,
            now,
          )
        : removeCondition(conditions, 'Reconciling');
    conditions =
      outcome.kind === 'stalled'
        ? setCondition(
            conditions,
            { type: 'Stalled', status: 'True', reason: outcome.reason, message: outcome.message },
            gen,
            now,
          )
        : removeCondition(conditions, 'Stalled');
    const ignored = status.ignoredFields ?? [];
    conditions =
      ready && ignored.length > 0
        ? setCondition(
            conditions,
            {
              type: 'Synced',
              status: 'False',
              reason: Reason.ValueNotAccepted,
              message: `not kept by the provider: ${ignored.join(', ')}`,
            },
            gen,
            now,
          )
        : removeCondition(conditions, 'Synced');
    const next: OidcClientStatus = { ...status, conditions, observedGeneration: gen };
    if (ignored.length === 0) delete next.ignoredFields;
    if (ready && !next.lastSyncTime) next.lastSyncTime = now;
    if (stableJson(next) === stableJson(cr.status ?? {})) return;
    const patch = { status: withNulls(cr.status ?? {}, next) };
    try {
      await this.o.rest.patch(this.crPath(cr, '/status'), 'merge', patch);
    } catch (error) {
      if (!isKubeStatus(error, 404)) throw error;
    }
  }

  // ---------------------------------------------------------------- helpers

  private classify(cr: OidcClient, error: unknown, log: Logger): Outcome {
    if (error instanceof OutcomeError) return error.outcome;
    if (error instanceof ProviderNotReadyError) {
      return {
        kind: 'retry',
        reason: error.reason === 'ProviderNotFound' ? Reason.ProviderNotFound : Reason.ProviderUnavailable,
        message: error.message,
      };
    }
    if (error instanceof InvalidClientMetadataError) {
      const message = `the provider rejected the client metadata: ${error.message}`;
      this.o.events.record(cr, 'Warning', Reason.InvalidMetadata, message);
      return { kind: 'stalled', reason: Reason.InvalidMetadata, message };
    }
    if (error instanceof RegistrationUnauthorizedError) {
      this.o.providers.invalidate(providerKeyOf(cr).key);
      const message = `the provider refused the registration (initial access token missing or rejected): ${error.message}`;
      this.o.events.record(cr, 'Warning', Reason.RegistrationUnauthorized, message);
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

  private desiredMetadata(cr: OidcClient): ClientMetadata {
    const m = specToMetadata(cr.spec);
    if (m.client_name === undefined) m.client_name = cr.metadata.name;
    return m;
  }

  private resyncDue(key: string): boolean {
    const at = this.nextResync.get(key);
    if (at === undefined) {
      // First sight after start: spread the first drift checks over one interval.
      this.nextResync.set(key, Date.now() + Math.random() * this.o.resyncIntervalMs);
      return false;
    }
    return Date.now() >= at;
  }

  private scheduleResync(key: string): void {
    this.nextResync.set(key, Date.now() + this.o.resyncIntervalMs * (0.9 + Math.random() * 0.2));
  }

  private resyncDelay(key: string): number {
    const at = this.nextResync.get(key) ?? Date.now() + this.o.resyncIntervalMs;
    return Math.max(1000, at - Date.now());
  }
}

/** Carries a decided outcome (stalled, retry with reason) out of nested steps. */
class OutcomeError extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.message);
    this.name = 'OutcomeError';
  }
}

function readyTrue(status: OidcClientStatus): boolean {
  return findCondition(status.conditions, 'Ready')?.status === 'True';
}

function toStored(
  r: RegisteredClient,
  provider: ResolvedProvider,
  prev: StoredRegistration | undefined,
): StoredRegistration | undefined {
  const rat = r.registrationAccessToken ?? prev?.registrationAccessToken;
  const uri = r.registrationClientUri ?? prev?.registrationClientUri;
  if (!rat || !uri) return undefined;
  return {
    clientId: r.clientId,
    clientSecret: r.clientSecret ?? prev?.clientSecret,
    registrationAccessToken: rat,
    registrationClientUri: uri,
    issuer: provider.endpoints.issuer,
  };
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

type AdoptionCandidate = {
  clientId: string;
  clientSecret?: string;
  registrationAccessToken: string;
  registrationClientUri: string;
};

/** Accepts the IAM dashboard's client JSON under `key`, or the individual keys. */
export function parseAdoptionSecret(secret: V1Secret, key: string): AdoptionCandidate | { error: string } {
  const json = decode(secret, key);
  let src: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      const parsed: unknown = JSON.parse(json);
      if (!parsed || typeof parsed !== 'object') return { error: `key ${key} is not a JSON object` };
      src = parsed as Record<string, unknown>;
    } catch {
      return { error: `key ${key} is not valid JSON` };
    }
  } else {
    for (const k of ['client_id', 'client_secret', 'registration_access_token', 'registration_client_uri']) {
      const v = decode(secret, k);
      if (v !== undefined) src[k] = v;
    }
  }
  const str = (k: string): string | undefined =>
    typeof src[k] === 'string' && src[k] !== '' ? (src[k] as string) : undefined;
  const clientId = str('client_id');
  const rat = str('registration_access_token');
  const uri = str('registration_client_uri');
  const missing = [
    !clientId && 'client_id',
    !rat && 'registration_access_token',
    !uri && 'registration_client_uri',
  ].filter(Boolean);
  if (missing.length > 0 || !clientId || !rat || !uri) return { error: `missing ${missing.join(', ')}` };
  return {
    clientId,
    clientSecret: str('client_secret'),
    registrationAccessToken: rat,
    registrationClientUri: uri,
  };
}

function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(
          Object.entries(val as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => a.localeCompare(b)),
        )
      : val,
  );
}

/** Merge patch of the whole status: keys that disappeared are sent as null. */
function withNulls(old: OidcClientStatus, next: OidcClientStatus): Record<string, unknown> {
  const out: Record<string, unknown> = { ...next };
  for (const k of Object.keys(old)) if ((next as Record<string, unknown>)[k] === undefined) out[k] = null;
  return out;
}
