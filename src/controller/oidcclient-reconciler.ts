// The OidcClient reconciler: drives the provider (observe / create / update / delete through
// RFC 7591/7592) and keeps the two Secrets and the status in line. Modelled on Crossplane's
// managed reconciler, minus its "wedge": what the provider returns is stored before anything
// else, and an interrupted registration is retried with an Event instead of blocking forever.
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_GROUP, API_GROUP_VERSION } from '../api/schema.js';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
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
import { parseAdoptionSecret } from './adoption.js';
import { AppSecrets } from './app-secrets.js';
import { findCondition, Reason, type ReasonName } from './conditions.js';
import { ManagementSecrets, REGISTERED, secretPath } from './management-secrets.js';
import {
  ANNOTATION_ADOPTED,
  ANNOTATION_ATTEMPT,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_STATE,
  appSecretName,
  clientKey,
  FINALIZER,
  managementSecretName,
} from './names.js';
import {
  type Outcome,
  OutcomeError,
  ReconcileError,
  SecretConflictError,
  STALLED_FOR_GENERATION,
} from './outcome.js';
import {
  ProviderNotReadyError,
  type ProviderRegistry,
  providerKeyOf,
  type ResolvedProvider,
} from './providers.js';
import { isOwnedBy, readRegistration, type StoredRegistration } from './secrets.js';
import { nextStatus, statusPatch } from './status.js';

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

export class OidcClientReconciler {
  /** Next drift check per key; in memory, so a restart spreads checks over one interval again. */
  private readonly nextResync = new Map<string, number>();
  /** Last registration seen per key: survives a deleted management Secret while we run. */
  private readonly lastKnown = new Map<string, StoredRegistration>();
  /** UIDs whose finalizer we removed: a stale cache must not run the provider-side delete twice. */
  private readonly finalized = new Map<string, string>();
  /** The status we wrote last, for as long as the cache still shows the object it replaced. */
  private readonly statusWritten = new Map<string, { supersededRv?: string; status: OidcClientStatus }>();

  private readonly mgmtSecrets: ManagementSecrets;
  private readonly appSecrets: AppSecrets;

  constructor(private readonly o: ReconcilerOptions) {
    this.mgmtSecrets = new ManagementSecrets(o.rest, o.secrets);
    this.appSecrets = new AppSecrets(o.rest, o.secrets);
  }

  /** Called by the Secret informer with the last state of a deleted management Secret. */
  rememberRegistration(key: string, secret: V1Secret): void {
    if (this.finalized.has(key) || this.o.clients.get(key)?.metadata.deletionTimestamp) return;
    const reg = readRegistration(secret);
    if (reg) this.lastKnown.set(key, reg);
  }

  forget(key: string): void {
    this.nextResync.delete(key);
    this.mgmtSecrets.forget(key);
    this.lastKnown.delete(key);
    this.statusWritten.delete(key);
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    let cr = this.o.clients.get(key);
    if (!cr) {
      this.forget(key);
      this.finalized.delete(key);
      return undefined;
    }
    if (cr.metadata.deletionTimestamp) return this.finalize(cr);
    if (!(cr.metadata.finalizers ?? []).includes(FINALIZER)) cr = await this.addFinalizer(cr);

    const log = this.o.log.child({ oidcclient: key });
    const base = this.statusBase(key, cr);
    const status: OidcClientStatus = structuredClone(base);
    let outcome: Outcome;
    try {
      outcome = await this.sync(cr, status, log);
    } catch (error) {
      outcome = this.classify(cr, error, log);
    }
    if (outcome.kind === 'stalled')
      log.warn({ reason: outcome.reason, detail: outcome.message }, 'stalled: needs a change');
    await this.writeStatus(cr, base, status, outcome);
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

    const provider = await this.o.providers.resolve(cr);
    const mgmtName = managementSecretName(cr);
    let mgmt = await this.mgmtSecrets.current(cr, mgmtName);
    // spec.managementSecretName was changed: carry the registration over instead of registering anew.
    if (!mgmt && status.managementSecretName && status.managementSecretName !== mgmtName) {
      mgmt = await this.moveManagementSecret(cr, status.managementSecretName, mgmtName);
    }
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
      await this.mgmtSecrets.release(mgmt);
      this.mgmtSecrets.forget(key);
      mgmt = await this.mgmtSecrets.waitGone(cr.metadata.namespace as string, mgmtName);
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
        mgmt = await this.mgmtSecrets.create(cr, mgmtName, remembered, {});
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
      this.mgmtSecrets.rejectedTokenInUse(mgmt, reg) &&
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
    const change = await this.appSecrets.ensure(cr, {
      clientId: reg.clientId,
      clientSecret: reg.clientSecret,
      issuer: provider.endpoints.issuer,
      tokenEndpoint: provider.endpoints.tokenEndpoint,
    });
    const previousApp = status.secretName;
    if (previousApp && previousApp !== appSecretName(cr)) {
      // spec.secretName was changed: the new Secret exists now, the old one goes.
      await this.appSecrets.deleteIfOwned(cr, previousApp);
      this.o.events.record(
        cr,
        'Normal',
        'SecretMoved',
        `application Secret moved from ${previousApp} to ${appSecretName(cr)}`,
      );
    } else if (change === 'updated' || (change === 'created' && readyTrue(status))) {
      // A Secret that was there before and had to be rewritten or recreated was restored.
      this.o.events.record(
        cr,
        'Normal',
        'SecretRestored',
        `application Secret ${appSecretName(cr)} restored`,
      );
    }

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
    await this.appSecrets.assertNoConflict(cr);
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
      ? await this.mgmtSecrets.replace(cr, mgmt, mgmt.data ?? {}, marker)
      : await this.mgmtSecrets.create(cr, mgmtName, undefined, marker);

    const metadata = this.desiredMetadata(cr);
    let created: RegisteredClient;
    try {
      created = await provider.client.register(metadata);
    } catch (error) {
      // The provider answered, so nothing was registered: clear the marker (best effort).
      if (error instanceof RegistrationError && !(error instanceof ProviderUnavailableError)) {
        mgmt = await this.mgmtSecrets
          .replace(cr, mgmt, mgmt.data ?? {}, {
            [ANNOTATION_STATE]: 'pending',
          })
          .catch(() => mgmt as V1Secret);
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
      mgmt = await this.mgmtSecrets.persist(cr, mgmt, reg);
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
      ? await this.mgmtSecrets.persist(cr, mgmt, reg, marks)
      : await this.mgmtSecrets.create(cr, mgmtName, reg, marks);
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
        mgmt = await this.mgmtSecrets.persist(cr, mgmt, next);
      }
      if (!mgmt)
        mgmt = await this.mgmtSecrets.create(cr, mgmtName, next, { [ANNOTATION_STATE]: 'registered' });
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
      if (mgmt) await this.mgmtSecrets.markRejected(mgmt, reg);
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
    if (mgmt) mgmt = await this.mgmtSecrets.replace(cr, mgmt, {}, { [ANNOTATION_STATE]: 'pending' });
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
        await this.mgmtSecrets.markRejected(mgmt, reg);
        throw new OutcomeError({
          kind: 'stalled',
          reason: Reason.RegistrationTokenRejected,
          message: `the provider rejected the registration access token on update; put a valid token in Secret ${mgmtName}`,
        });
      }
      throw error;
    }
    const next = toStored(updated, provider, reg) ?? reg;
    if (changedRegistration(reg, next)) mgmt = await this.mgmtSecrets.persist(cr, mgmt, next);
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
    if (this.finalized.get(key) === cr.metadata.uid) return undefined;
    const log = this.o.log.child({ oidcclient: key });
    const mgmtName = managementSecretName(cr);
    const mgmt = await this.mgmtSecrets.current(cr, mgmtName);
    const owned = mgmt && isOwnedBy(mgmt, cr) ? mgmt : undefined;
    const reg = readRegistration(owned) ?? this.lastKnown.get(key);
    const policy = cr.spec.deletionPolicy ?? 'Delete';
    const elapsed = Date.now() - Date.parse(cr.metadata.deletionTimestamp as unknown as string);
    const overdue = elapsed > this.o.deletionTimeoutMs;

    if (policy === 'Delete' && reg) {
      try {
        const provider = await this.o.providers.resolveForDeletion(cr, reg.issuer);
        await this.deleteAtProvider(cr, provider, reg, log);
      } catch (error) {
        if (!overdue) {
          const outcome = this.classify(cr, error, log);
          const base = this.statusBase(key, cr);
          await this.writeStatus(cr, base, structuredClone(base), {
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
    } else if (policy === 'Delete' && cr.status?.clientId) {
      // The management Secret was lost (e.g. deleted while the operator was not running).
      this.o.events.record(
        cr,
        'Warning',
        'DeletionAbandoned',
        `client ${cr.status.clientId} could not be deleted at the provider: its registration access token is gone; delete it there by hand`,
      );
    }
    if (owned) await this.mgmtSecrets.release(owned);
    this.mgmtSecrets.forget(key);
    await this.removeFinalizer(cr);
    this.forget(key);
    this.finalized.set(key, cr.metadata.uid as string);
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

  private secretConflict(cr: OidcClient, name: string): Outcome {
    const message = `Secret ${name} exists and is not owned by this OidcClient; it is left untouched. Choose another name (spec.secretName / spec.managementSecretName) or remove that Secret`;
    this.o.events.record(cr, 'Warning', Reason.SecretConflict, message);
    return { kind: 'stalled', reason: Reason.SecretConflict, message };
  }

  private async moveManagementSecret(
    cr: OidcClient,
    from: string,
    to: string,
  ): Promise<V1Secret | undefined> {
    const old = await this.mgmtSecrets.current(cr, from);
    const reg = old && isOwnedBy(old, cr) ? readRegistration(old) : undefined;
    if (!old || !reg) return undefined;
    const keep = Object.fromEntries(
      Object.entries(old.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(`${API_GROUP}/`)),
    );
    const moved = await this.mgmtSecrets.create(cr, to, reg, { ...keep, ...REGISTERED });
    await this.mgmtSecrets.release(old);
    await this.o.rest.delete(secretPath(cr.metadata.namespace as string, from)).catch((error: unknown) => {
      if (!isKubeStatus(error, 404)) throw error;
    });
    this.o.events.record(cr, 'Normal', 'SecretMoved', `management Secret moved from ${from} to ${to}`);
    return moved;
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

  private statusBase(key: string, cr: OidcClient): OidcClientStatus {
    const mine = this.statusWritten.get(key);
    if (mine && mine.supersededRv === cr.metadata.resourceVersion) return mine.status;
    this.statusWritten.delete(key);
    return cr.status ?? {};
  }

  private async writeStatus(
    cr: OidcClient,
    base: OidcClientStatus,
    status: OidcClientStatus,
    outcome: Outcome,
  ): Promise<void> {
    const next = nextStatus(cr, status, outcome, new Date().toISOString());
    const patch = statusPatch(base, next);
    if (!patch) return;
    try {
      await this.o.rest.patch(this.crPath(cr, '/status'), 'merge', patch);
      this.statusWritten.set(clientKey(cr), { supersededRv: cr.metadata.resourceVersion, status: next });
    } catch (error) {
      if (!isKubeStatus(error, 404)) throw error;
    }
  }

  // ---------------------------------------------------------------- helpers

  private classify(cr: OidcClient, error: unknown, log: Logger): Outcome {
    if (error instanceof OutcomeError) return error.outcome;
    if (error instanceof SecretConflictError) return this.secretConflict(cr, error.secretName);
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
