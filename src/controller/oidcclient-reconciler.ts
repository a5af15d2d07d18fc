// The OidcClient reconciler, shaped like Crossplane's managed reconciler: observe once (the
// OidcClient, both Secrets, the stored registration and, when a check is due, the provider's
// answer), decide ONE state (client-state.ts), run that state's one step. Steps that repair local
// state (a moved or deleted Secret, a finished registration) say AGAIN and the loop observes anew.
// What the provider returns is stored before anything else; an interrupted registration is retried
// with an Event instead of blocking forever (Crossplane's "wedge").
// Where the parts live: observe.ts (the observation), client-state.ts (the decision), steps/ (one
// step per state: observe, repair, create, update, publish, observe-only, delete = the finalizer),
// rotation-steps.ts, status-writer.ts, error-outcome.ts (errors to outcomes), resync-schedule.ts.
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { isFenced } from '../kube/fence.js';
import type { CacheReader, IndexedCacheReader } from '../kube/informer.js';
import type { KubeRest } from '../kube/rest.js';
import type { ReconcileOutcome } from '../kube/workqueue.js';
import type { ClientAccess } from './access.js';
import { AppSecrets } from './app-secrets.js';
import {
  isObserveOnlyState,
  isPaused,
  pausedStatus,
  pendingCheckNow,
  restrictToObserve,
} from './client-control.js';
import { ClientLifecycle, desiredMetadata, metadataFingerprint } from './client-lifecycle.js';
import { ClientMetadata, hasFinalizer } from './client-metadata.js';
import { type ClientState, decide, type Observation } from './client-state.js';
import { classify } from './error-outcome.js';
import { ForeignSecrets } from './foreign-secrets.js';
import { ManagementSecrets } from './management-secrets.js';
import { clientKey } from './names.js';
import { Observer } from './observe.js';
import { type Outcome, ReconcileError } from './outcome.js';
import type { ProviderRegistry, ResolvedProvider } from './providers.js';
import { ResyncSchedule } from './resync-schedule.js';
import { RotationSteps, rotationStepTable } from './rotation-steps.js';
import { SecretAccess } from './secret-access.js';
import { StatusWriter } from './status-writer.js';
import {
  AGAIN,
  type Ctx,
  type Step,
  type StepDeps,
  type StepResult,
  type StepTable,
} from './steps/context.js';
import { createSteps } from './steps/create.js';
import { Finalizer } from './steps/delete.js';
import { observeSteps } from './steps/observe.js';
import { observeOnly } from './steps/observe-only.js';
import { Publisher } from './steps/publish.js';
import { repairSteps } from './steps/repair.js';
import { updateSteps } from './steps/update.js';

export interface ReconcilerOptions {
  rest: KubeRest;
  clients: CacheReader<OidcClient>;
  secrets: IndexedCacheReader<V1Secret>;
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
  private readonly mgmtSecrets: ManagementSecrets;
  private readonly appSecrets: AppSecrets;
  private readonly meta: ClientMetadata;
  private readonly lifecycle: ClientLifecycle;
  private readonly resync: ResyncSchedule;
  private readonly status: StatusWriter;
  private readonly finalizer: Finalizer;
  private readonly rotation: RotationSteps;
  private readonly publisher: Publisher;
  private readonly observer: Observer;
  private readonly deps: StepDeps;
  /** One step per state. */
  private readonly steps: StepTable;

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
    this.observer = new Observer({ rest: o.rest, access: o.access, mgmtSecrets: this.mgmtSecrets });
    this.publisher = new Publisher({
      rest: o.rest,
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      appSecrets: this.appSecrets,
    });
    this.rotation = new RotationSteps({
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      lifecycle: this.lifecycle,
      resync: this.resync,
      publisher: this.publisher,
    });
    this.finalizer = new Finalizer({
      ...o,
      mgmtSecrets: this.mgmtSecrets,
      meta: this.meta,
      lifecycle: this.lifecycle,
      status: this.status,
      forget: (key) => this.forget(key),
    });
    this.deps = {
      events: o.events,
      mgmtSecrets: this.mgmtSecrets,
      meta: this.meta,
      lifecycle: this.lifecycle,
      resync: this.resync,
      publisher: this.publisher,
      rotation: this.rotation,
    };
    this.steps = {
      ...observeSteps(this.deps),
      ...repairSteps(this.deps),
      ...createSteps(this.deps),
      ...updateSteps(this.deps),
      ...rotationStepTable(this.deps),
    };
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
    this.publisher.forget(key);
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
      this.publisher.publishedMetadata(key) !== metadataFingerprint(desiredMetadata(cr));
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
      ctx.obs = await this.observer.observe(ctx.cr, status, { specChanged, resyncDue, remote: ctx.remote });
      const decided = decide(ctx.obs);
      log.debug({ state: decided.kind, pass }, 'state');
      if (needsFinalizer(decided, ctx.obs) && !hasFinalizer(ctx.cr)) ctx.cr = await this.meta.mark(ctx.cr);
      const state = restrictToObserve(decided, ctx.obs);
      const result = isObserveOnlyState(state)
        ? await observeOnly(this.deps, state, ctx)
        : await this.step(state, ctx);
      if (result !== AGAIN) return result;
    }
    throw new Error(`no stable state after ${MAX_PASSES} steps`);
  }

  /** The provider this client registers with. Checks that gate the provider belong here. */
  private connect(cr: OidcClient): Promise<ResolvedProvider> {
    return this.o.providers.resolve(cr);
  }

  private step(state: ClientState, c: Ctx): Promise<StepResult> {
    const run = this.steps[state.kind] as Step<typeof state.kind>;
    return run(state as never, c);
  }
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
