// Deletion of an OidcClient (its finalizer): the client is deleted at the provider (until a
// deadline, then let go with an Event), orphaned, or left where the operator cannot delete it; then
// every registration Secret it owns lets go and the finalizer is removed.
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OidcClient } from '../../api/types.generated.js';
import type { EventRecorder } from '../../kube/events.js';
import { errorMessage } from '../../kube/informer.js';
import type { ReconcileOutcome } from '../../kube/workqueue.js';
import { deletionPolicyOf } from '../client-control.js';
import type { ClientLifecycle } from '../client-lifecycle.js';
import { type ClientMetadata, hasFinalizer } from '../client-metadata.js';
import { decideDeletion } from '../client-state.js';
import { Reason } from '../conditions.js';
import { classify } from '../error-outcome.js';
import type { ManagementSecrets } from '../management-secrets.js';
import { clientKey, managementSecretName } from '../names.js';
import { ReconcileError } from '../outcome.js';
import type { ProviderRegistry } from '../providers.js';
import { hasRegistrationFinalizer, isOwnedBy, readStored, type StoredRegistration } from '../secrets.js';
import type { StatusWriter } from '../status-writer.js';

export interface FinalizerOptions {
  events: EventRecorder;
  log: Logger;
  providers: ProviderRegistry;
  mgmtSecrets: ManagementSecrets;
  meta: ClientMetadata;
  lifecycle: ClientLifecycle;
  status: StatusWriter;
  /** How long the finalizer keeps trying to delete at an unreachable provider before letting go. */
  deletionTimeoutMs: number;
  /** Drops what the reconciler keeps in memory for a client. */
  forget(key: string): void;
}

export class Finalizer {
  /** UIDs whose finalizer we removed: a stale cache must not run the provider-side delete twice. */
  private readonly finalized = new Map<string, string>();
  /**
   * Client ids deleted at the provider per OidcClient UID, while a later step (releasing the
   * Secrets, removing the finalizer) is retried: the retry must not DELETE again (a second DELETE is
   * answered 401/404 and costs a token-endpoint probe to tell them apart). Lost on restart, where
   * the probe then confirms the client is gone.
   */
  private readonly deletedAtProvider = new Map<string, { uid: string; clientIds: Set<string> }>();

  constructor(private readonly o: FinalizerOptions) {}

  /** Whether the finalizer of the OidcClient of this key was removed by us. */
  isFinalized(key: string): boolean {
    return this.finalized.has(key);
  }

  /** The OidcClient is gone from the cache: its UID need not be remembered any more. */
  gone(key: string): void {
    this.finalized.delete(key);
    this.deletedAtProvider.delete(key);
  }

  /** Runs once per deleted OidcClient (by UID) that still carries our finalizer. */
  async finalize(cr: OidcClient): Promise<ReconcileOutcome> {
    if (!hasFinalizer(cr)) return undefined;
    const key = clientKey(cr);
    if (this.finalized.get(key) === cr.metadata.uid) return undefined;
    const log = this.o.log.child({ oidcclient: key });
    const mgmt = await this.o.mgmtSecrets.current(cr, managementSecretName(cr));
    const owned = mgmt && isOwnedBy(mgmt, cr) ? mgmt : undefined;
    const snapshot = this.o.mgmtSecrets.remembered(key);
    const remembered = snapshot
      ? readStored({ data: snapshot.data, metadata: { annotations: snapshot.annotations } })
      : undefined;
    const state = decideDeletion(cr, readStored(owned), remembered, deletionPolicyOf(cr));
    const deadline =
      Date.parse(cr.metadata.deletionTimestamp as unknown as string) + this.o.deletionTimeoutMs;

    switch (state.kind) {
      case 'DeleteAtProvider':
        await this.deleteAtProvider(cr, state.regs, deadline, log);
        if (state.unmanaged) this.unmanagedStays(cr, state.unmanaged);
        break;
      case 'Orphan':
        this.o.events.record(
          cr,
          'Normal',
          'Orphaned',
          `client ${state.clientId} left registered at the provider (${cr.spec.managementPolicy === 'ObserveOnly' ? 'managementPolicy: ObserveOnly' : 'deletionPolicy: Orphan'}); its management Secret is kept for adoption`,
        );
        break;
      case 'UnmanagedStays':
        this.unmanagedStays(cr, state.clientId);
        break;
      case 'TokenLost':
        this.o.events.record(
          cr,
          'Warning',
          'DeletionAbandoned',
          `client ${state.clientId} could not be deleted at the provider: its registration access token is gone; delete it there by hand`,
        );
        break;
      case 'NothingRegistered':
        break;
    }
    // Every registration Secret this client owns lets go (the current one, one left under an old
    // name by an interrupted move); with Orphan they stay, without our owner and finalizer.
    const secrets = new Map<string, V1Secret>();
    for (const s of this.o.mgmtSecrets.ownedBy(cr)) secrets.set(s.metadata?.name as string, s);
    if (owned) secrets.set(owned.metadata?.name as string, owned);
    for (const s of secrets.values()) {
      if (state.kind === 'Orphan' && !s.metadata?.deletionTimestamp) await this.o.mgmtSecrets.orphan(cr, s);
      else if (hasRegistrationFinalizer(s)) await this.o.mgmtSecrets.release(s);
    }
    this.o.mgmtSecrets.forget(key);
    await this.o.meta.removeFinalizer(cr);
    this.o.forget(key);
    this.finalized.set(key, cr.metadata.uid as string);
    return undefined;
  }

  /**
   * Deletes the client(s) at the provider until the deadline; retries are scheduled no later than
   * the deadline (the backoff may have grown past it), and past it the finalizer lets go.
   */
  private async deleteAtProvider(
    cr: OidcClient,
    regs: StoredRegistration[],
    deadline: number,
    log: Logger,
  ): Promise<void> {
    const key = clientKey(cr);
    // The first attempt after the deadline still gets a fair chance; later ones none.
    const budget = Math.max(deadline - Date.now(), 5_000);
    const signal = AbortSignal.timeout(budget);
    try {
      const uid = cr.metadata.uid as string;
      const known = this.deletedAtProvider.get(key);
      const done = known?.uid === uid ? known.clientIds : new Set<string>();
      const left = regs.filter((r) => !done.has(r.clientId));
      if (left.length === 0) return;
      const provider = await this.o.providers.resolveForDeletion(cr, left[0]?.issuer);
      for (const reg of left) {
        await this.o.lifecycle.deleteAtProvider(cr, provider, reg, log, signal);
        done.add(reg.clientId);
        this.deletedAtProvider.set(key, { uid, clientIds: done });
      }
    } catch (error) {
      const remaining = deadline - Date.now();
      if (remaining > 0) {
        const outcome = classify(this.o, cr, error, log);
        const base = this.o.status.base(key, cr);
        await this.o.status.write(cr, base, structuredClone(base), {
          ...outcome,
          kind: 'retry',
          message: `deleting the client at the provider: ${outcome.message}`,
        });
        const after = outcome.kind === 'retry' ? outcome.retryAfterMs : undefined;
        // Never later than just past the deadline: the next attempt then lets go.
        throw new ReconcileError(
          outcome.message,
          after && Math.min(after, remaining),
          remaining + 100,
          outcome.reason,
        );
      }
      this.o.events.record(
        cr,
        'Warning',
        'DeletionAbandoned',
        `client ${regs.map((r) => r.clientId).join(', ')} could not be deleted at the provider within ${Math.round(this.o.deletionTimeoutMs / 1000)} s (${errorMessage(error)}); it may remain registered there`,
      );
    }
  }

  private unmanagedStays(cr: OidcClient, clientId: string): void {
    this.o.events.record(
      cr,
      'Warning',
      Reason.ManagementUnsupported,
      `client ${clientId} stays registered at the provider: it was registered without a registration access token, so the operator cannot delete it; delete it there by hand`,
    );
  }

  /**
   * The OidcClient is gone: registration Secrets of that name that are being deleted (garbage
   * collection, namespace deletion) and still carry our finalizer are released, or they would
   * block their namespace forever.
   */
  async releaseLeftovers(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    for (const s of this.o.mgmtSecrets.leftovers(namespace, name, undefined)) {
      this.o.log.warn(
        { oidcclient: key, secret: s.metadata?.name },
        'releasing a leftover management Secret',
      );
      await this.o.mgmtSecrets.release(s);
    }
  }
}
