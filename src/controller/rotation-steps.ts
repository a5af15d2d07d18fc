// The steps of a rotation after the new client is stored: switch the application Secret, keep the
// previous client for the overlap, delete it at the provider (retried with backoff); and what the
// status and the work queue need to know about rotations.
import type { V1Secret } from '@kubernetes/client-node';
import type { OidcClient, OidcClientStatus, RotationStatus } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import { isFenced } from '../kube/fence.js';
import { errorMessage } from '../kube/informer.js';
import { isObserveOnly } from './client-control.js';
import type { ClientLifecycle } from './client-lifecycle.js';
import type { Observation, RemoteObservation } from './client-state.js';
import { Reason } from './conditions.js';
import { type ManagementSecrets, REGISTERED } from './management-secrets.js';
import {
  ANNOTATION_ISSUED_AT,
  ANNOTATION_PREVIOUS_DELETION_TIME,
  ANNOTATION_REREGISTER,
  ANNOTATION_REREGISTERED,
  ANNOTATION_ROTATE,
  ANNOTATION_ROTATED_FOR,
  ANNOTATION_ROTATION_TRIGGER,
  appSecretName,
} from './names.js';
import { type ExtraCondition, OutcomeError } from './outcome.js';
import type { ResyncSchedule } from './resync-schedule.js';
import {
  deleteRetryDelay,
  describeTrigger,
  dueRotation,
  iso,
  isTriggerKind,
  overlapFor,
  parseTime,
  previousPhase,
  rotationPolicy,
  rotationStatus,
} from './rotation.js';
import type { StoredRegistration, StoredState } from './secrets.js';
import { AGAIN, type Ctx, type StepDeps, type StepResult, type StepTable } from './steps/context.js';
import { marker, registered } from './steps/create.js';
import type { Publisher } from './steps/publish.js';

/** The longest requeue for a rotation: timers cannot wait months (setTimeout takes 2^31 - 1 ms at most). */
const MAX_TIMER_MS = 24 * 3_600_000;

export interface RotationStepsDeps {
  events: EventRecorder;
  mgmtSecrets: ManagementSecrets;
  lifecycle: ClientLifecycle;
  resync: ResyncSchedule;
  publisher: Pick<Publisher, 'publish' | 'ensureAppSecret'>;
}

/** Start a rotation (register the new client), then retire the previous client. */
export function rotationStepTable(d: StepDeps): Pick<StepTable, 'RotationDue' | 'PreviousClientPending'> {
  return {
    RotationDue: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const why = describeTrigger(s.trigger);
      c.log.info({ clientId: stored.reg.clientId, trigger: s.trigger.kind }, 'rotating credentials');
      d.events.record(
        c.obs.cr,
        'Normal',
        'RotationStarted',
        `rotating client ${stored.reg.clientId} (${why}): registering a new client`,
      );
      // The current client moves to previous_* in the same write as the marker: its token is kept
      // until it is deleted at the provider, and the application Secret keeps working meanwhile.
      const r = await d.lifecycle.register(
        c.obs.cr,
        await c.provider(),
        c.obs.mgmt,
        c.obs.mgmtName,
        stored.reg,
        c.log,
        marker(d, c),
        { [ANNOTATION_ROTATION_TRIGGER]: s.trigger.kind },
      );
      return registered(r, c);
    },

    PreviousClientPending: async (s, c) => d.rotation.retirePrevious(s.previous, c),
  };
}

export class RotationSteps {
  /** Failed deletes of a rotation's previous client: when to try again (in memory: a restart tries at once). */
  private readonly previousDeleteFailures = new Map<string, { failures: number; retryAt: number }>();
  /** Keys whose due drift check (a check-now too) waits for the end of a rotation's overlap. */
  private readonly checkDeferred = new Set<string>();

  constructor(private readonly d: RotationStepsDeps) {}

  forget(key: string): void {
    this.previousDeleteFailures.delete(key);
    this.checkDeferred.delete(key);
  }

  /** Whether this reconcile deferred the client's due drift check to the end of an overlap (and clears that). */
  takeDeferredCheck(key: string): boolean {
    return this.checkDeferred.delete(key);
  }

  /**
   * A rotation stored the new client beside the previous one. In this order, each step repeatable:
   * switch the application Secret to the new client, record when the previous one goes (now +
   * overlap; only after the switch, so pods get the whole overlap), wait (no writes), DELETE the
   * previous client at the provider, drop its keys. A failed DELETE is retried with backoff and
   * never holds up the new client.
   */
  async retirePrevious(previous: StoredRegistration, c: Ctx): Promise<StepResult> {
    const { cr } = c.obs;
    const stored = c.obs.stored as Exclude<StoredState, { kind: 'empty' }>;
    const mgmt = c.obs.mgmt as V1Secret;
    const annotations = mgmt.metadata?.annotations ?? {};
    const trigger = annotations[ANNOTATION_ROTATION_TRIGGER];
    const overlapMs = overlapFor(isTriggerKind(trigger) ? trigger : undefined, rotationPolicy(cr.spec));
    const provider = await c.provider();
    const failure = this.previousDeleteFailures.get(c.key);
    c.obs.status.rotation = { ...c.obs.status.rotation, lastRotationTime: iso(issuedAt(mgmt)) };
    let phase = previousPhase({
      deletionTime: parseTime(annotations[ANNOTATION_PREVIOUS_DELETION_TIME]),
      retryAt: failure?.retryAt,
      now: Date.now(),
    });
    if (phase.kind === 'switch') {
      // The application Secret first: it never names a client that is about to be deleted.
      await this.d.publisher.ensureAppSecret(cr, stored.reg, provider);
      const at = Date.now() + overlapMs;
      const app = appSecretName(cr);
      if (overlapMs > 0) {
        await this.d.mgmtSecrets.persist(
          cr,
          mgmt,
          stored.reg,
          {
            ...REGISTERED,
            ...(trigger ? { [ANNOTATION_ROTATION_TRIGGER]: trigger } : {}),
            [ANNOTATION_PREVIOUS_DELETION_TIME]: iso(at) as string,
          },
          previous,
        );
        this.d.events.record(
          cr,
          'Normal',
          'Rotated',
          `application Secret ${app} switched to client ${stored.reg.clientId}; the previous client ${previous.clientId} stays registered until ${iso(at)} (overlap ${overlapMs / 1000} s)`,
        );
        return AGAIN;
      }
      this.d.events.record(
        cr,
        'Normal',
        'Rotated',
        `application Secret ${app} switched to client ${stored.reg.clientId}; the previous client ${previous.clientId} is deleted now (no overlap)`,
      );
      phase = { kind: 'delete' };
    }
    if (phase.kind === 'wait') {
      // A drift check due meanwhile (a check-now too) comes right after the previous client is
      // gone (no 1 s requeues).
      if (c.obs.resyncDue) {
        this.d.resync.scheduleAt(c.key, phase.at);
        this.checkDeferred.add(c.key);
      }
      return this.d.publisher.publish(c, stored.reg, this.previousConditions(c.key, previous), c.remote);
    }

    let fate = 'deleted at the provider';
    let warning = false;
    try {
      const r = await this.d.lifecycle.deleteAtProvider(cr, provider, previous, c.log);
      if (r === 'gone') fate = 'already gone at the provider';
    } catch (error) {
      if (isFenced(error)) throw error;
      if (error instanceof OutcomeError) {
        // The old token is rejected while the old client still authenticates: keeping the token
        // would not help; say what is left behind.
        fate = `not deleted (${error.message}); it may remain at the provider: delete it there by hand`;
        warning = true;
      } else {
        const failures = (failure?.failures ?? 0) + 1;
        this.previousDeleteFailures.set(c.key, {
          failures,
          retryAt: Date.now() + deleteRetryDelay(failures),
        });
        const message = `could not delete the previous client ${previous.clientId} at the provider (${errorMessage(error)}); retrying with backoff. The application Secret uses client ${stored.reg.clientId}`;
        this.d.events.record(cr, 'Warning', Reason.PreviousClientDeleteFailed, message);
        c.log.warn({ clientId: previous.clientId, err: errorMessage(error) }, 'previous client not deleted');
        return this.d.publisher.publish(
          c,
          stored.reg,
          this.previousConditions(c.key, previous, message),
          c.remote,
        );
      }
    }
    this.previousDeleteFailures.delete(c.key);
    await this.d.mgmtSecrets.persist(cr, mgmt, stored.reg, REGISTERED, undefined);
    this.d.events.record(
      cr,
      warning ? 'Warning' : 'Normal',
      warning ? Reason.PreviousClientDeleteFailed : 'PreviousClientDeleted',
      `the previous client ${previous.clientId} was ${fate}; client ${stored.reg.clientId} is in use`,
    );
    return AGAIN;
  }

  /** While a failed DELETE of the previous client waits for its retry: PreviousClientDeleted=False. */
  previousConditions(key: string, previous: StoredRegistration, message?: string): ExtraCondition[] {
    if (!message && !this.previousDeleteFailures.has(key)) return [];
    return [
      {
        type: 'PreviousClientDeleted',
        status: 'False',
        reason: Reason.PreviousClientDeleteFailed,
        message: message ?? `the previous client ${previous.clientId} could not be deleted yet; retrying`,
      },
    ];
  }

  /** When the work queue should come back for this client's rotation (previous client, schedule). */
  delay(key: string, rotation: RotationStatus | undefined): number {
    // While a previous client is kept: its deletion (or the retry after a failed one); else the schedule.
    const at = rotation?.previousClientId
      ? (this.previousDeleteFailures.get(key)?.retryAt ?? parseTime(rotation.previousDeletionTime))
      : parseTime(rotation?.nextRotationTime);
    if (at === undefined) return Number.POSITIVE_INFINITY;
    const delay = at - Date.now();
    // Slightly after the moment, so the step finds it due; something overdue is not spun on; a
    // time months ahead is looked at again within a day (timers cannot wait that long).
    return delay > 0 ? Math.min(delay + 20, MAX_TIMER_MS) : 1000;
  }
}

/** status.rotation from the management Secret (the source of truth) and the schedule. */
export function rotationStatusOf(obs: Observation, clientId: string): RotationStatus | undefined {
  const { cr, status, mgmt, stored } = obs;
  const annotations = mgmt?.metadata?.annotations ?? {};
  const previous = stored.previous
    ? {
        clientId: stored.previous.clientId,
        deletionTime: parseTime(annotations[ANNOTATION_PREVIOUS_DELETION_TIME]),
      }
    : undefined;
  const managed = stored.kind === 'managed' && mgmt !== undefined;
  const nextAt = managed
    ? dueRotation(rotationInput(cr, status, mgmt, clientId, obs.remote)).nextAt
    : undefined;
  return rotationStatus({
    previous,
    lastRotationTime: status.rotation?.lastRotationTime,
    nextAt,
    lastRequest: annotations[ANNOTATION_ROTATED_FOR],
  });
}

/** When the current client was registered: our annotation, else (older Secrets) the Secret's creation. */
function issuedAt(mgmt: V1Secret): number {
  return (
    parseTime(mgmt.metadata?.annotations?.[ANNOTATION_ISSUED_AT]) ??
    parseTime(mgmt.metadata?.creationTimestamp as unknown as string | undefined) ??
    Date.now()
  );
}

/** What rotation.ts needs to know whether (and when) the current client is to be replaced. */
export function rotationInput(
  cr: OidcClient,
  status: OidcClientStatus,
  mgmt: V1Secret,
  clientId: string,
  remote: RemoteObservation | undefined,
): Parameters<typeof dueRotation>[0] {
  const annotations = mgmt.metadata?.annotations ?? {};
  const expiresSec =
    remote?.kind === 'found' && remote.clientId === clientId
      ? remote.client.clientSecretExpiresAt
      : status.clientId === clientId
        ? status.clientSecretExpiresAt
        : undefined;
  const input: Parameters<typeof dueRotation>[0] = {
    policy: rotationPolicy(cr.spec),
    request: {
      rotate: cr.metadata.annotations?.[ANNOTATION_ROTATE],
      reregister: cr.metadata.annotations?.[ANNOTATION_REREGISTER],
    },
    handled: {
      rotate: annotations[ANNOTATION_ROTATED_FOR],
      reregister: annotations[ANNOTATION_REREGISTERED],
    },
    issuedAt: issuedAt(mgmt),
    now: Date.now(),
  };
  // ObserveOnly never registers by itself: only a request (refused with a reason) counts.
  if (isObserveOnly(cr)) {
    delete input.policy.everyMs;
    return input;
  }
  if (cr.spec.rotation?.every) input.every = cr.spec.rotation.every;
  if (expiresSec) input.expiresAt = expiresSec * 1000;
  return input;
}
