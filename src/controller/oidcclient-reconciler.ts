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
import { isFenced } from '../kube/fence.js';
import { type CacheReader, errorMessage } from '../kube/informer.js';
import { isKubeStatus, KubeApiError, type KubeRest } from '../kube/rest.js';
import { secretPath } from '../kube/secrets.js';
import type { ReconcileOutcome } from '../kube/workqueue.js';
import {
  InvalidClientMetadataError,
  ProviderUnavailableError,
  RegistrationError,
  RegistrationUnauthorizedError,
} from '../registration/errors.js';
import type { RegisteredClient } from '../registration/types.js';
import type { ClientAccess } from './access.js';
import { AppSecrets } from './app-secrets.js';
import { ClientLifecycle } from './client-lifecycle.js';
import { findCondition, Reason, type ReasonName } from './conditions.js';
import { RegistrationConflictError, WritePendingError } from './credential-outbox.js';
import { classifyEndpointError } from './endpoint-trust.js';
import { ManagementSecrets, REGISTERED } from './management-secrets.js';
import {
  ANNOTATION_ADOPTED,
  ANNOTATION_REREGISTER,
  ANNOTATION_REREGISTERED,
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
import { ProviderNotReadyError, type ProviderRegistry, providerKeyOf } from './providers.js';
import { isOwnedBy, readRegistration, type StoredRegistration } from './secrets.js';
import { nextStatus, statusPatch } from './status.js';

export interface ReconcilerOptions {
  rest: KubeRest;
  clients: CacheReader<OidcClient>;
  secrets: CacheReader<V1Secret>;
  providers: ProviderRegistry;
  /** Tenancy gate (namespace allow-list, clientPolicy), before any provider Secret or call. */
  access: ClientAccess;
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
  private readonly lifecycle: ClientLifecycle;

  constructor(private readonly o: ReconcilerOptions) {
    this.mgmtSecrets = new ManagementSecrets(o.rest, o.secrets, o.log);
    this.appSecrets = new AppSecrets(o.rest, o.secrets);
    this.lifecycle = new ClientLifecycle({
      rest: o.rest,
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      appSecrets: this.appSecrets,
      lastKnown: this.lastKnown,
    });
  }

  /** Called by the Secret informer with the last state of a deleted management Secret. */
  rememberRegistration(key: string, secret: V1Secret): void {
    if (this.finalized.has(key) || this.o.clients.get(key)?.metadata.deletionTimestamp) return;
    const reg = readRegistration(secret);
    if (reg) this.lastKnown.set(key, reg);
  }

  /** On shutdown: waits up to timeoutMs for provider answers not stored yet; returns how many remain. */
  drainWrites(timeoutMs: number): Promise<number> {
    return this.mgmtSecrets.drain(timeoutMs);
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
      if (isFenced(error)) throw error; // the term is over: nothing more may be written
      outcome = this.classify(cr, error, log);
    }
    if (outcome.kind === 'stalled')
      log.warn({ reason: outcome.reason, detail: outcome.message }, 'stalled: needs a change');
    await this.writeStatus(cr, base, status, outcome);
    if (outcome.kind === 'retry')
      throw new ReconcileError(outcome.message, outcome.retryAfterMs, outcome.reason);
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
    const refused = this.o.access.check(cr);
    if (refused) return refused;
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
        ({ reg, observed, mgmt } = await this.lifecycle.adopt(cr, provider, mgmt, mgmtName, log));
        reason = Reason.Adopted;
      } else {
        ({ reg, observed, mgmt } = await this.lifecycle.register(cr, provider, mgmt, mgmtName, log));
      }
      status.ignoredFields = undefined;
    } else if (mgmt && reregisterRequested(cr, mgmt)) {
      const request = cr.metadata.annotations?.[ANNOTATION_REREGISTER] as string;
      ({ reg, observed, mgmt } = await this.lifecycle.reregisterOnRequest(
        cr,
        provider,
        mgmt,
        mgmtName,
        reg,
        request,
        log,
      ));
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
    // A registration read from the Secret is checked before anything else uses it (status included).
    if (!observed) provider.client.assertManageable(reg.registrationClientUri, reg.clientId);
    if (!observed && (specChanged || this.resyncDue(key) || !readyTrue(status) || secretUnknown)) {
      const r = await this.lifecycle.observe(cr, provider, mgmt, mgmtName, reg, log);
      if ('outcome' in r) return r.outcome;
      ({ reg, observed, mgmt } = r);
    }
    if (observed && mgmt) {
      const u = await this.lifecycle.updateIfDrifted(
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
        await this.lifecycle.deleteAtProvider(cr, provider, reg, log);
      } catch (error) {
        if (!overdue) {
          const outcome = this.classify(cr, error, log);
          const base = this.statusBase(key, cr);
          await this.writeStatus(cr, base, structuredClone(base), {
            ...outcome,
            kind: 'retry',
            message: `deleting the client at the provider: ${outcome.message}`,
          });
          // A long retryAfter must not push the next attempt past the deletion deadline.
          const untilDeadline = Math.max(1000, this.o.deletionTimeoutMs - elapsed + 100);
          const after = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined;
          throw new ReconcileError(
            outcome.message,
            after === undefined ? undefined : Math.min(after, untilDeadline),
            outcome.reason,
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
    const endpoint = classifyEndpointError(error);
    if (endpoint) {
      if (endpoint.kind === 'stalled') this.o.events.record(cr, 'Warning', endpoint.reason, endpoint.message);
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

/** The reregister annotation carries a value this client's registration has not answered yet. */
function reregisterRequested(cr: OidcClient, mgmt: V1Secret): boolean {
  const request = cr.metadata.annotations?.[ANNOTATION_REREGISTER];
  return !!request && mgmt.metadata?.annotations?.[ANNOTATION_REREGISTERED] !== request;
}

function readyTrue(status: OidcClientStatus): boolean {
  return findCondition(status.conditions, 'Ready')?.status === 'True';
}
