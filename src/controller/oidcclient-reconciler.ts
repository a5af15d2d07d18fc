// The OidcClient reconciler, shaped like Crossplane's managed reconciler: observe once (the
// OidcClient, both Secrets, the stored registration and, when a check is due, the provider's
// answer), decide ONE state (client-state.ts), run that state's one step. Steps that repair local
// state (a moved or deleted Secret, a finished registration) say AGAIN and the loop observes anew.
// What the provider returns is stored before anything else; an interrupted registration is retried
// with an Event instead of blocking forever (Crossplane's "wedge").
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_GROUP_VERSION } from '../api/schema.js';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { validateOidcClientSpec } from '../api/validate.js';
import type { EventRecorder } from '../kube/events.js';
import { isFenced } from '../kube/fence.js';
import type { CacheReader } from '../kube/informer.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { secretPath } from '../kube/secrets.js';
import type { ReconcileOutcome } from '../kube/workqueue.js';
import { parseProviderForms } from '../registration/metadata.js';
import type { ClientAccess } from './access.js';
import { checkRenderable } from './app-secret-template.js';
import { AppSecrets } from './app-secrets.js';
import {
  isObserveOnlyState,
  isPaused,
  type ObserveOnlyState,
  observedConditions,
  pausedStatus,
  pendingCheckNow,
  restrictToObserve,
} from './client-control.js';
import {
  type AttemptMarker,
  ClientLifecycle,
  desiredMetadata,
  metadataFingerprint,
  type Registration,
} from './client-lifecycle.js';
import { ClientMetadata, hasFinalizer } from './client-metadata.js';
import { type ClientState, decide, type Observation, type RemoteObservation } from './client-state.js';
import { findCondition, Reason, type ReasonName } from './conditions.js';
import { classify, secretConflict } from './error-outcome.js';
import { Finalizer } from './finalizer.js';
import { ForeignSecrets } from './foreign-secrets.js';
import { ManagementSecrets, REGISTERED } from './management-secrets.js';
import {
  ANNOTATION_ADOPTED,
  ANNOTATION_PROVIDER_FORMS,
  ANNOTATION_ROTATION_TRIGGER,
  appSecretName,
  clientKey,
  LABEL_ORPHANED,
  managementSecretName,
} from './names.js';
import { type ExtraCondition, type Outcome, ReconcileError } from './outcome.js';
import type { ProviderRegistry, ResolvedProvider } from './providers.js';
import { ResyncSchedule } from './resync-schedule.js';
import { describeTrigger, dueRotation } from './rotation.js';
import { RotationSteps, rotationInput, rotationStatusOf } from './rotation-steps.js';
import { SecretAccess } from './secret-access.js';
import {
  isOwnedBy,
  readStored,
  type StoredRegistration,
  type StoredState,
  type UnmanagedRegistration,
} from './secrets.js';
import { StatusWriter } from './status-writer.js';
import { AGAIN, type Ctx, type Step, type StepResult } from './steps/context.js';
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
  /** The shortest spec.refreshInterval honoured (shorter ones are raised to it). Default 1 min. */
  minRefreshIntervalMs?: number;
  /** How long a finalizer keeps trying to delete at an unreachable provider before letting go. */
  deletionTimeoutMs: number;
}

/** Local repairs chain (move, restore, register, finish a re-registration); more means a bug. */
const MAX_PASSES = 6;

export class OidcClientReconciler {
  /** Fingerprint of the client metadata last published as in sync with the provider, per key. */
  private readonly metadataSeen = new Map<string, string>();

  private readonly mgmtSecrets: ManagementSecrets;
  private readonly appSecrets: AppSecrets;
  private readonly meta: ClientMetadata;
  private readonly lifecycle: ClientLifecycle;
  private readonly resync: ResyncSchedule;
  private readonly status: StatusWriter;
  private readonly finalizer: Finalizer;
  private readonly rotation: RotationSteps;

  constructor(private readonly o: ReconcilerOptions) {
    const foreign = new ForeignSecrets(o.rest);
    this.mgmtSecrets = new ManagementSecrets(o.rest, o.secrets, o.log, foreign);
    this.appSecrets = new AppSecrets(o.rest, o.secrets, foreign);
    this.meta = new ClientMetadata(o.rest);
    this.resync = new ResyncSchedule(o);
    this.status = new StatusWriter(o.rest);
    this.lifecycle = new ClientLifecycle({
      rest: o.rest,
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      appSecrets: this.appSecrets,
      secretAccess: new SecretAccess(o.rest),
    });
    this.rotation = new RotationSteps({
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      lifecycle: this.lifecycle,
      resync: this.resync,
      ensureAppSecret: (cr, reg, provider) => this.ensureAppSecret(cr, reg, provider),
      publish: (c, reg, conditions, remote) => this.publish(c, reg, conditions, remote),
    });
    this.finalizer = new Finalizer({
      ...o,
      mgmtSecrets: this.mgmtSecrets,
      meta: this.meta,
      lifecycle: this.lifecycle,
      status: this.status,
      forget: (key) => this.forget(key),
    });
  }

  /** Called by the Secret informer with the last state of a deleted management Secret. */
  rememberRegistration(key: string, secret: V1Secret): void {
    if (this.finalizer.isFinalized(key) || this.o.clients.get(key)?.metadata.deletionTimestamp) return;
    this.mgmtSecrets.remember(key, secret);
  }

  /** On shutdown: waits up to timeoutMs for provider answers not stored yet; returns how many were lost. */
  drainWrites(timeoutMs: number): Promise<number> {
    return this.mgmtSecrets.drain(timeoutMs);
  }

  forget(key: string): void {
    this.resync.forget(key);
    this.mgmtSecrets.forget(key);
    this.mgmtSecrets.forgetSnapshot(key);
    this.status.forget(key);
    this.rotation.forget(key);
    this.metadataSeen.delete(key);
  }

  async reconcile(key: string): Promise<ReconcileOutcome> {
    const cr = this.o.clients.get(key);
    if (!cr) {
      await this.finalizer.releaseLeftovers(key);
      this.forget(key);
      this.finalizer.gone(key);
      return undefined;
    }
    // Paused: no provider call, not even to delete (the finalizer waits); only the status says so.
    if (isPaused(cr)) return this.paused(key, cr);
    if (cr.metadata.deletionTimestamp) return this.finalizer.finalize(cr);

    const log = this.o.log.child({ oidcclient: key });
    const base = this.status.base(key, cr);
    const status: OidcClientStatus = structuredClone(base);
    const checkNow = pendingCheckNow(cr, base);
    // The finalizer is added by the first step that needs it (a registration: with its marker).
    const current = { cr };
    let outcome: Outcome;
    try {
      outcome = await this.sync(current, status, log, checkNow !== undefined);
    } catch (error) {
      if (isFenced(error)) throw error; // the term is over: nothing more may be written
      outcome = classify(this.o, cr, error, log);
    }
    const deferred = this.rotation.takeDeferredCheck(key);
    // Carried out unless it is retried (then the retry checks again, with the usual backoff) or
    // waits for a rotation's overlap to end.
    if (checkNow !== undefined && outcome.kind !== 'retry' && !deferred) status.checkNowHandled = checkNow;
    if (outcome.kind === 'stalled')
      log.warn({ reason: outcome.reason, detail: outcome.message }, 'stalled: needs a change');
    await this.status.write(current.cr, base, status, outcome);
    if (outcome.kind === 'retry')
      throw new ReconcileError(outcome.message, outcome.retryAfterMs, outcome.retryBeforeMs, outcome.reason);
    if (outcome.kind === 'stalled') return undefined;
    // The drift check's time or the rotation's (the previous client's deletion, the schedule).
    const delay = Math.min(
      this.resync.delay(key) ?? Number.POSITIVE_INFINITY,
      this.rotation.delay(key, status.rotation),
    );
    return delay === Number.POSITIVE_INFINITY ? undefined : { requeueAfterMs: delay };
  }

  /** A paused client: Synced=False ReconcilePaused, written once; nothing else happens. */
  private async paused(key: string, cr: OidcClient): Promise<ReconcileOutcome> {
    const base = this.status.base(key, cr);
    await this.status.patch(cr, base, pausedStatus(base, cr, new Date().toISOString()));
    return undefined;
  }

  // ---------------------------------------------------------------- observe, decide, act

  private async sync(
    current: { cr: OidcClient },
    status: OidcClientStatus,
    log: Logger,
    checkNow: boolean,
  ): Promise<Outcome> {
    const cr = current.cr;
    const key = clientKey(cr);
    // Only client metadata goes to the provider: a new generation that changed nothing there (the
    // Secret template, Secret names) is no reason to call it. After a restart nothing is known: check.
    const specChanged =
      status.observedGeneration !== cr.metadata.generation &&
      this.metadataSeen.get(key) !== metadataFingerprint(desiredMetadata(cr));
    if (specChanged) status.ignoredFields = undefined;
    this.resync.applyRefreshInterval(cr, specChanged);
    // A check-now is one more drift check, through the same provider slots as any other.
    const resyncDue = this.resync.due(key) || checkNow;
    let provider: Promise<ResolvedProvider> | undefined;
    const ctx: Ctx = {
      obs: undefined as unknown as Observation,
      get cr() {
        return current.cr;
      },
      set cr(v: OidcClient) {
        current.cr = v;
      },
      key,
      log,
      // Connect lazily: invalid or conflicting clients never resolve (nor contact) the provider.
      provider: () => {
        provider ??= this.connect(cr);
        return provider;
      },
    };
    for (let pass = 0; pass < MAX_PASSES; pass++) {
      ctx.obs = await this.observe(ctx.cr, status, { specChanged, resyncDue, remote: ctx.remote });
      const decided = decide(ctx.obs);
      log.debug({ state: decided.kind, pass }, 'state');
      if (needsFinalizer(decided, ctx.obs) && !hasFinalizer(ctx.cr)) ctx.cr = await this.meta.mark(ctx.cr);
      const state = restrictToObserve(decided, ctx.obs);
      const result = isObserveOnlyState(state)
        ? await this.observeOnly(state, ctx)
        : await this.step(state, ctx);
      if (result !== AGAIN) return result;
    }
    throw new Error(`no stable state after ${MAX_PASSES} steps`);
  }

  /** The provider this client registers with. Checks that gate the provider belong here. */
  private connect(cr: OidcClient): Promise<ResolvedProvider> {
    return this.o.providers.resolve(cr);
  }

  /** Everything one decision needs, read from the caches (plus a GET where the cache may lag). */
  private async observe(
    cr: OidcClient,
    status: OidcClientStatus,
    o: { specChanged: boolean; resyncDue: boolean; remote: RemoteObservation | undefined },
  ): Promise<Observation> {
    const key = clientKey(cr);
    const issues = validateOidcClientSpec(cr.spec, { name: cr.metadata.name });
    const mgmtName = managementSecretName(cr);
    const desired = desiredMetadata(cr);
    const desiredHash = metadataFingerprint(desired);
    for (const f of status.ignoredFields ?? []) delete desired[f];
    const obs: Observation = {
      cr,
      status,
      mgmtName,
      mgmtOwned: false,
      mgmtClaimable: false,
      stored: { kind: 'empty' },
      remembered: false,
      namespaceTerminating: false,
      rejectedTokenInUse: false,
      specChanged: o.specChanged,
      resyncDue: o.resyncDue,
      desired,
      desiredHash,
    };
    if (issues.length > 0) {
      obs.specIssues = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      obs.specIssuesReason = issues.every((i) => i.path.startsWith('/spec/secretTemplate'))
        ? Reason.InvalidSecretTemplate
        : Reason.InvalidSpec;
      return obs;
    }
    const refused = this.o.access.check(cr);
    if (refused) {
      obs.refused = refused;
      return obs;
    }
    if (o.remote) obs.remote = o.remote;
    const mgmt = await this.mgmtSecrets.current(cr, mgmtName);
    if (mgmt) {
      obs.mgmt = mgmt;
      obs.mgmtOwned = isOwnedBy(mgmt, cr);
      obs.mgmtClaimable =
        !obs.mgmtOwned &&
        mgmt.metadata?.labels?.[LABEL_ORPHANED] === 'true' &&
        cr.spec.adoptFrom?.secretRef.name === mgmtName;
      if (obs.mgmtOwned) {
        obs.stored = readStored(mgmt);
        obs.providerForms = parseProviderForms(mgmt.metadata?.annotations?.[ANNOTATION_PROVIDER_FORMS]);
      }
      if (mgmt.metadata?.deletionTimestamp) obs.namespaceTerminating = await this.namespaceTerminating(cr);
    }
    const formerName = status.managementSecretName;
    if (formerName && formerName !== mgmtName) {
      const former = await this.mgmtSecrets.read(cr.metadata.namespace as string, formerName);
      if (former && isOwnedBy(former, cr))
        obs.former = { name: formerName, secret: former, stored: readStored(former) };
    }
    obs.remembered = !mgmt && this.mgmtSecrets.remembered(key) !== undefined;
    if (mgmt && obs.stored.kind === 'managed' && !obs.stored.previous) {
      const trigger = dueRotation(rotationInput(cr, status, mgmt, obs.stored.reg.clientId, o.remote)).trigger;
      if (trigger) obs.rotation = trigger;
    }
    if (obs.stored.kind === 'managed')
      obs.rejectedTokenInUse = this.mgmtSecrets.rejectedTokenInUse(mgmt, obs.stored.reg);
    return obs;
  }

  private step(state: ClientState, c: Ctx): Promise<StepResult> {
    const run = this.steps[state.kind] as Step<typeof state.kind>;
    return run(state as never, c);
  }

  /** One step per state. */
  private readonly steps: { [K in ClientState['kind']]: Step<K> } = {
    Invalid: async (s, c) => {
      this.o.events.record(c.obs.cr, 'Warning', s.reason, s.message);
      return { kind: 'stalled', reason: s.reason, message: s.message };
    },

    Refused: async (s) => s.outcome,

    AwaitingSpecChange: async (s) => ({ kind: 'stalled', reason: s.reason, message: s.message }),

    SecretConflict: async (s, c) => {
      if (s.secretName === c.obs.mgmtName && c.obs.mgmt?.metadata?.labels?.[LABEL_ORPHANED] === 'true') {
        // Left behind by deletionPolicy: Orphan: say how to take it back.
        const message = `Secret ${s.secretName} holds a registration orphaned by an earlier OidcClient; set spec.adoptFrom.secretRef.name: ${s.secretName} to take that client over, or delete the Secret to register a new one`;
        this.o.events.record(c.obs.cr, 'Warning', Reason.SecretConflict, message);
        return { kind: 'stalled', reason: Reason.SecretConflict, message };
      }
      return secretConflict(this.o.events, c.obs.cr, s.secretName);
    },

    ManagementSecretRenamed: async (s, c) => {
      const former = c.obs.former as NonNullable<Observation['former']>;
      // Copy first; the old Secret is released and deleted once the status names the new one
      // (publish), so a crash in between leaves both, never neither.
      await this.mgmtSecrets.create(c.obs.cr, c.obs.mgmtName, former.secret.data ?? {}, {
        ...ourAnnotations(former.secret),
        ...REGISTERED,
      });
      c.log.info({ from: s.from, to: c.obs.mgmtName }, 'management Secret copied to its new name');
      return AGAIN;
    },

    ManagementSecretDeleted: async (_s, c) => {
      // Someone deleted the management Secret: keep its content, let it go, write it anew.
      const mgmt = c.obs.mgmt as V1Secret;
      this.mgmtSecrets.remember(c.key, mgmt);
      await this.mgmtSecrets.release(mgmt);
      this.mgmtSecrets.forget(c.key);
      const still = await this.mgmtSecrets.waitGone(c.obs.cr.metadata.namespace as string, c.obs.mgmtName);
      if (still)
        return {
          kind: 'retry',
          reason: Reason.Progressing,
          message: 'restoring the management Secret',
          retryAfterMs: 500,
        };
      return AGAIN;
    },

    NamespaceTerminating: async () => ({
      kind: 'retry',
      reason: Reason.Deleting,
      message: 'namespace is terminating',
      retryAfterMs: 1000,
    }),

    ManagementSecretLost: async (_s, c) => {
      const snapshot = this.mgmtSecrets.remembered(c.key);
      if (!snapshot) return AGAIN;
      await this.mgmtSecrets.create(c.obs.cr, c.obs.mgmtName, snapshot.data, {
        ...snapshot.annotations,
        ...REGISTERED,
      });
      this.o.events.record(
        c.obs.cr,
        'Normal',
        'SecretRestored',
        `management Secret ${c.obs.mgmtName} restored`,
      );
      return AGAIN;
    },

    NeedsAdoption: async (_s, c) => {
      const provider = await c.provider();
      checkRenderable(c.obs.cr, provider.endpoints);
      const r = await this.lifecycle.adopt(c.obs.cr, provider, c.obs.mgmt, c.obs.mgmtName, c.log);
      return this.registered(r, c);
    },

    NeedsRegistration: async (_s, c) => this.register(c),

    RegistrationPending: async (s, c) => {
      const { cr, status } = c.obs;
      const name = cr.spec.clientName ?? cr.metadata.name;
      // Without a management Secret, the marker on the OidcClient may also be that of a
      // registration stored in a Secret deleted since, while the operator was not running.
      const lost =
        !c.obs.mgmt && status.clientId
          ? ` or management Secret ${c.obs.mgmtName} (client ${status.clientId}) was deleted while the operator was away`
          : '';
      this.o.events.record(
        cr,
        'Warning',
        'RegistrationRetried',
        `an earlier registration attempt (${s.attempt}) did not store its result${lost}; if it reached the provider, a client named ${name} may be orphaned there`,
      );
      return this.register(c);
    },

    RotationDue: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const why = describeTrigger(s.trigger);
      c.log.info({ clientId: stored.reg.clientId, trigger: s.trigger.kind }, 'rotating credentials');
      this.o.events.record(
        c.obs.cr,
        'Normal',
        'RotationStarted',
        `rotating client ${stored.reg.clientId} (${why}): registering a new client`,
      );
      // The current client moves to previous_* in the same write as the marker: its token is kept
      // until it is deleted at the provider, and the application Secret keeps working meanwhile.
      const r = await this.lifecycle.register(
        c.obs.cr,
        await c.provider(),
        c.obs.mgmt,
        c.obs.mgmtName,
        stored.reg,
        c.log,
        this.marker(c),
        { [ANNOTATION_ROTATION_TRIGGER]: s.trigger.kind },
      );
      return this.registered(r, c);
    },

    PreviousClientPending: async (s, c) => this.rotation.retirePrevious(s.previous, c),

    Unmanaged: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'unmanaged' }>;
      // Nothing to check at the provider; the interval only re-asserts the application Secret.
      if (c.obs.resyncDue || !this.resync.scheduled(c.key)) this.resync.schedule(c.key);
      const conditions: ExtraCondition[] = [
        {
          type: 'Managed',
          status: 'False',
          reason: Reason.ManagementUnsupported,
          message:
            'the provider gave no registration access token: the operator cannot update this client or delete it at the provider',
        },
      ];
      if (s.specDiffers) {
        const message = `spec changes cannot be sent to the provider (no RFC 7592 management for client ${stored.reg.clientId}); change the client at the provider by hand, or delete and recreate the OidcClient`;
        conditions.push({ type: 'Synced', status: 'False', reason: Reason.ManagementUnsupported, message });
        this.o.events.record(c.obs.cr, 'Warning', Reason.ManagementUnsupported, message);
      }
      return this.publish(c, stored.reg, conditions);
    },

    TokenRejected: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      if (!s.probe) {
        const message =
          findCondition(c.obs.status.conditions, 'Ready')?.message ?? 'registration access token rejected';
        return { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message };
      }
      if (c.obs.mgmt) await this.mgmtSecrets.markRejected(c.obs.mgmt, stored.reg);
      const message = `the provider rejected the registration access token of client ${stored.reg.clientId} (client credentials ${s.probe === 'valid' ? 'still work' : 'could not be checked'}); put a valid token in Secret ${c.obs.mgmtName} key registration_access_token, or delete the OidcClient with deletionPolicy: Orphan`;
      this.o.events.record(c.obs.cr, 'Warning', Reason.RegistrationTokenRejected, message);
      return { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message };
    },

    Gone: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const old = stored.reg.clientId;
      c.log.warn({ clientId: old }, `client gone at the provider (${s.why}); registering again`);
      const result = await this.register(c);
      const now = c.remote?.kind === 'found' ? c.remote.clientId : 'a new client';
      this.o.events.record(
        c.obs.cr,
        'Warning',
        'ReRegistered',
        `client ${old} is gone at the provider (${s.why}); registered ${now} instead`,
      );
      return result;
    },

    CheckDue: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      c.remote = await this.lifecycle.check(c.obs.cr, await c.provider(), c.obs.mgmt as V1Secret, stored.reg);
      return AGAIN;
    },

    NeedsUpdate: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const remote = c.obs.remote as Extract<RemoteObservation, { kind: 'found' }>;
      await this.lifecycle.update(
        c.obs.cr,
        await c.provider(),
        c.obs.mgmt as V1Secret,
        c.obs.mgmtName,
        stored.reg,
        remote.client,
        c.obs.status,
        c.obs.specChanged,
        c.log,
      );
      this.resync.schedule(c.key);
      // A token rotated by the PUT was stored; the published credentials are the same.
      return this.publish(c, stored.reg, [], remote);
    },

    UpToDate: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      if (c.obs.remote?.kind === 'found') this.resync.schedule(c.key);
      return this.publish(c, stored.reg, [], c.obs.remote);
    },
  };

  /** managementPolicy ObserveOnly: report what a Full client would have changed at the provider. */
  private async observeOnly(s: ObserveOnlyState, c: Ctx): Promise<StepResult> {
    const stalled = (reason: ReasonName, message: string): Outcome => {
      // One Event per episode, not per reconcile.
      if (findCondition(c.obs.status.conditions, 'Ready')?.reason !== reason)
        this.o.events.record(c.obs.cr, 'Warning', reason, message);
      return { kind: 'stalled', reason, message };
    };
    switch (s.kind) {
      case 'NothingToObserve':
        return stalled(Reason.NothingToObserve, s.message);
      case 'ObserveOnlyRefused':
        return stalled(Reason.ObserveOnly, s.message);
      case 'ObservedGone': {
        const id = c.obs.stored.kind === 'empty' ? c.obs.status.clientId : c.obs.stored.reg.clientId;
        return stalled(
          Reason.ClientGone,
          `client ${id} is gone at the provider (${s.why}); managementPolicy ObserveOnly does not register it again: adopt another registration, or set managementPolicy: Full`,
        );
      }
      case 'Observed': {
        const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
        if (c.obs.remote?.kind === 'found') this.resync.schedule(c.key);
        return this.publish(c, stored.reg, observedConditions(c.obs.status, s.drift), c.obs.remote);
      }
    }
  }

  // ---------------------------------------------------------------- shared parts of steps

  private async register(c: Ctx): Promise<StepResult> {
    const stored = c.obs.stored;
    const previous = stored.kind === 'empty' ? stored.previous : undefined;
    const provider = await c.provider();
    // A template that cannot render with this provider's endpoints stops before the POST.
    checkRenderable(c.obs.cr, provider.endpoints);
    // A rotation's POST tried again keeps what started it (the overlap depends on it).
    const trigger = previous ? c.obs.mgmt?.metadata?.annotations?.[ANNOTATION_ROTATION_TRIGGER] : undefined;
    const r = await this.lifecycle.register(
      c.obs.cr,
      provider,
      c.obs.mgmt,
      c.obs.mgmtName,
      previous,
      c.log,
      this.marker(c),
      trigger ? { [ANNOTATION_ROTATION_TRIGGER]: trigger } : {},
    );
    return this.registered(r, c);
  }

  /** Marks a first registration on the OidcClient (with the finalizer) and keeps what was written. */
  private marker(c: Ctx): AttemptMarker {
    return {
      mark: async (attempt) => {
        c.cr = await this.meta.mark(c.cr, attempt);
      },
      clear: async (attempt) => {
        const cleared = await this.meta.clearAttempt(c.cr, attempt);
        if (cleared) c.cr = cleared;
      },
    };
  }

  /** After a registration or adoption: the provider's answer doubles as the first drift check. */
  private registered(r: Registration, c: Ctx): StepResult {
    c.obs.status.ignoredFields = undefined;
    if (r.kind === 'managed') c.remote = { kind: 'found', clientId: r.reg.clientId, client: r.observed };
    return AGAIN;
  }

  private async ensureAppSecret(
    cr: OidcClient,
    reg: StoredRegistration | UnmanagedRegistration,
    provider: ResolvedProvider,
  ): Promise<'unchanged' | 'created' | 'updated'> {
    return this.appSecrets.ensure(cr, {
      clientId: reg.clientId,
      clientSecret: reg.clientSecret,
      endpoints: provider.endpoints,
    });
  }

  /** The end of every good path: the application Secret, Secrets left under old names, the status. */
  private async publish(
    c: Ctx,
    reg: StoredRegistration | UnmanagedRegistration,
    conditions: ExtraCondition[],
    remote?: RemoteObservation,
  ): Promise<Outcome> {
    const { cr, status } = c.obs;
    const provider = await c.provider();
    // A registration read from the Secret is checked before anything uses it (status included).
    if ('registrationClientUri' in reg)
      provider.client.assertManageable(reg.registrationClientUri, reg.clientId);
    const change = await this.ensureAppSecret(cr, reg, provider);
    this.metadataSeen.set(c.key, c.obs.desiredHash);
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
    } else if (
      status.clientId === reg.clientId &&
      // A new spec (e.g. its secretTemplate) rewrites the Secret by design: that is no restore.
      status.observedGeneration === cr.metadata.generation &&
      (change === 'updated' || (change === 'created' && readyTrue(status)))
    ) {
      // A Secret that was there before and had to be rewritten or recreated was restored (a new
      // client_id is a switch to a new registration, reported as ReRegistered instead).
      this.o.events.record(
        cr,
        'Normal',
        'SecretRestored',
        `application Secret ${appSecretName(cr)} restored`,
      );
    }
    if (c.obs.former) await this.retireFormerManagementSecret(cr, c.obs.former.secret, c.obs.mgmtName);

    // An adopted client keeps saying so while it is the same client.
    const adopted = c.obs.mgmt?.metadata?.annotations?.[ANNOTATION_ADOPTED] === reg.clientId;
    // client_secret_expires_at belongs to one client: a new one starts without it until it is known.
    if (remote?.kind === 'found' && remote.clientId === reg.clientId) {
      if (remote.client.clientSecretExpiresAt !== undefined)
        status.clientSecretExpiresAt = remote.client.clientSecretExpiresAt;
    } else if (status.clientId !== reg.clientId) delete status.clientSecretExpiresAt;
    status.clientId = reg.clientId;
    status.rotation = rotationStatusOf(c.obs, reg.clientId);
    status.registrationClientUri = 'registrationClientUri' in reg ? reg.registrationClientUri : undefined;
    status.secretName = appSecretName(cr);
    status.managementSecretName = c.obs.mgmtName;
    const ignored = status.ignoredFields ?? [];
    let message =
      ignored.length > 0
        ? `client ${reg.clientId} registered; the provider does not keep: ${ignored.join(', ')}`
        : `client ${reg.clientId} registered at ${provider.endpoints.issuer}`;
    if (!('registrationAccessToken' in reg))
      message += ' (without RFC 7592 management: not updated or deleted by the operator)';
    return { kind: 'ready', reason: adopted ? Reason.Adopted : Reason.Registered, message, conditions };
  }

  /** The management Secret under the old spec.managementSecretName: release our finalizer, delete it. */
  private async retireFormerManagementSecret(cr: OidcClient, former: V1Secret, to: string): Promise<void> {
    const from = former.metadata?.name as string;
    await this.mgmtSecrets.release(former);
    await this.o.rest.delete(secretPath(cr.metadata.namespace as string, from)).catch((error: unknown) => {
      if (!isKubeStatus(error, 404)) throw error;
    });
    this.o.events.record(cr, 'Normal', 'SecretMoved', `management Secret moved from ${from} to ${to}`);
  }

  // ---------------------------------------------------------------- Secrets

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
}

/** Our annotations on a Secret (those of this API group), to carry over when it moves. */
function ourAnnotations(secret: V1Secret): Record<string, string> {
  const group = API_GROUP_VERSION.split('/')[0] as string;
  return Object.fromEntries(
    Object.entries(secret.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(`${group}/`)),
  );
}

function readyTrue(status: OidcClientStatus): boolean {
  return findCondition(status.conditions, 'Ready')?.status === 'True';
}

/**
 * Whether the client may have (or is about to get) something at the provider, so its deletion must
 * wait for the finalizer. A first registration adds it together with its marker instead.
 */
function needsFinalizer(state: ClientState, obs: Observation): boolean {
  if (obs.stored.kind !== 'empty' || obs.stored.previous) return true;
  switch (state.kind) {
    case 'Invalid':
    case 'Refused':
    case 'AwaitingSpecChange':
    case 'SecretConflict':
      return false;
    case 'NeedsRegistration':
    case 'RegistrationPending':
      return obs.mgmt !== undefined;
    default:
      return true;
  }
}
