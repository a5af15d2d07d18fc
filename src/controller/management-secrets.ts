// Reads and writes of the management Secret (registration access token, registration_client_uri,
// credentials). Its writes must never be lost to a stale cache: the copy written last is
// remembered until the informer has caught up, because acting on an older token would look like a
// rejected token on providers that rotate it. What the provider returned but is not stored yet
// lives in the CredentialOutbox and is what current() shows until it is stored.

import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_GROUP } from '../api/schema.js';
import type { OidcClient } from '../api/types.generated.js';
import type { IndexedCacheReader } from '../kube/informer.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { readSecret, secretPath } from '../kube/secrets.js';
import { createdAfter, neverRegistered } from './client-metadata.js';
import { CredentialOutbox, judge } from './credential-outbox.js';
import type { ForeignSecrets } from './foreign-secrets.js';
import {
  ANNOTATION_ORPHANED_FROM,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_STATE,
  clientKey,
  clientLabelValue,
  LABEL_CLIENT,
  LABEL_ORPHANED,
  LABEL_ROLE,
  ownerClientName,
  REGISTRATION_FINALIZER,
  SECRETS_BY_CLIENT,
} from './names.js';
import { ReconcileError, SecretConflictError } from './outcome.js';
import {
  isOwnedBy,
  managementSecretData,
  mergeAnnotations,
  newManagementSecret,
  ownerReference,
  readStored,
  type StoredRegistration,
  TRANSIENT_ANNOTATIONS,
  type UnmanagedRegistration,
} from './secrets.js';

/** The content of a management Secret worth restoring: its data and our annotations. */
export interface Snapshot {
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export const REGISTERED = { [ANNOTATION_STATE]: 'registered' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ManagementSecrets {
  private readonly written = new Map<string, { supersededRv: string | undefined; secret: V1Secret }>();
  /** Last content seen per key: a management Secret deleted while we run is put back from it. */
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly outbox: CredentialOutbox;
  /** Copies shown by current() with unstored credentials laid over, and the real Secret under each. */
  private readonly overlays = new WeakMap<V1Secret, V1Secret | undefined>();

  constructor(
    private readonly rest: KubeRest,
    private readonly cache: IndexedCacheReader<V1Secret>,
    log?: Logger,
    /** Names of Secrets we do not manage: a new client's cache miss needs no GET. */
    private readonly foreign?: ForeignSecrets,
  ) {
    this.outbox = new CredentialOutbox(
      rest.unfenced(),
      {
        replace: (r, cr, current, data, annotations) => this.replaceWith(r, cr, current, data, annotations),
        // The outbox judges a 409 itself (re-read: another attempt's registration, or not ours).
        create: (r, cr, name, data, annotations) =>
          this.createWith(r, cr, name, data, annotations, { conflict: 'raw' }),
      },
      log,
    );
  }

  forget(key: string): void {
    this.written.delete(key);
    this.outbox.forget(key);
  }

  /** On shutdown: waits (bounded) for unstored credentials to be written, then stops retrying. */
  async drain(timeoutMs: number): Promise<number> {
    const lost = await this.outbox.drain(timeoutMs);
    this.outbox.close();
    return lost;
  }

  /** Keeps the Secret's content when it holds a registration (or a previous one); else drops it. */
  remember(key: string, secret: V1Secret | undefined): void {
    const stored = readStored(secret);
    if (!secret || (stored.kind === 'empty' && !stored.previous)) return;
    const annotations = Object.fromEntries(
      Object.entries(secret.metadata?.annotations ?? {}).filter(
        ([k]) => k.startsWith(`${API_GROUP}/`) && !TRANSIENT_ANNOTATIONS.has(k),
      ),
    );
    this.snapshots.set(key, { data: { ...(secret.data ?? {}) }, annotations });
  }

  remembered(key: string): Snapshot | undefined {
    return this.snapshots.get(key);
  }

  forgetSnapshot(key: string): void {
    this.snapshots.delete(key);
  }

  /**
   * Cache first; the copy we wrote ourselves wins while the cache still shows the one it replaced.
   * Credentials the provider returned that are not stored yet are laid over it: the next provider
   * call must use the newest token, and a registration kept in memory must not be registered again.
   */
  async current(cr: OidcClient, name: string): Promise<V1Secret | undefined> {
    const key = clientKey(cr);
    const stored = await this.stored(cr, name);
    const pending = this.outbox.peek(key, name);
    if (!pending) return stored;
    const verdict = judge(stored, pending.data, pending.annotations, pending.basis);
    if (verdict === 'stored' && stored) this.outbox.settleIfStored(key, stored);
    if (verdict === 'stored' || verdict === 'lost') return stored;
    const copy: V1Secret = stored
      ? {
          ...stored,
          metadata: {
            ...stored.metadata,
            annotations: mergeAnnotations(stored.metadata?.annotations, pending.annotations),
          },
          data: pending.data,
        }
      : newManagementSecret(cr, name, pending.data, pending.annotations);
    this.overlays.set(copy, stored);
    return copy;
  }

  private async stored(cr: OidcClient, name: string): Promise<V1Secret | undefined> {
    const key = clientKey(cr);
    const cached = this.cache.get(`${cr.metadata.namespace}/${name}`);
    const mine = this.written.get(key);
    if (mine && mine.secret.metadata?.name === name) {
      if (cached?.metadata?.resourceVersion === mine.secret.metadata?.resourceVersion) {
        this.written.delete(key);
        return cached;
      }
      if (cached && cached.metadata?.resourceVersion === mine.supersededRv) return mine.secret;
      if (!cached && mine.supersededRv === undefined) return mine.secret;
      this.written.delete(key);
    }
    if (cached) return cached;
    // Not in the cache: absent, not ours (no label), or the cache lags. Ask; for a client that
    // never registered, only when a Secret we do not manage has that name.
    const ns = cr.metadata.namespace as string;
    if (this.foreign && neverRegistered(cr) && !(await this.foreign.has(ns, name, createdAfter(cr))))
      return undefined;
    return this.read(ns, name);
  }

  read(namespace: string, name: string): Promise<V1Secret | undefined> {
    return readSecret(this.rest, namespace, name);
  }

  create(
    cr: OidcClient,
    name: string,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    return this.createWith(this.rest, cr, name, data, annotations);
  }

  private async createWith(
    rest: KubeRest,
    cr: OidcClient,
    name: string,
    data: Record<string, string>,
    annotations: Record<string, string>,
    opts: { conflict?: 'raw' } = {},
  ): Promise<V1Secret> {
    const ns = cr.metadata.namespace as string;
    const body = newManagementSecret(cr, name, data, annotations);
    try {
      const created = await rest.create<V1Secret>(`/api/v1/namespaces/${ns}/secrets`, body);
      this.written.set(clientKey(cr), { supersededRv: undefined, secret: created });
      this.remember(clientKey(cr), created);
      return created;
    } catch (error) {
      if (!isKubeStatus(error, 409) || opts.conflict === 'raw') throw error;
      const existing = await this.read(ns, name);
      if (existing && !isOwnedBy(existing, cr)) throw new SecretConflictError(name);
      throw new ReconcileError(`management Secret ${name} appeared concurrently; retrying`, 200);
    }
  }

  /**
   * Replaces data and the attempt's annotations; other annotations and finalizers stay. Guarded by
   * `current`'s resourceVersion: a Secret changed since fails with 409 instead of being overwritten.
   */
  replace(
    cr: OidcClient,
    current: V1Secret,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    return this.replaceWith(this.rest, cr, current, data, annotations);
  }

  private async replaceWith(
    rest: KubeRest,
    cr: OidcClient,
    current: V1Secret,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    const finalizers = [...new Set([...(current.metadata?.finalizers ?? []), REGISTRATION_FINALIZER])];
    const body: V1Secret = {
      ...current,
      metadata: {
        ...current.metadata,
        annotations: mergeAnnotations(current.metadata?.annotations, annotations),
        finalizers,
      },
      data,
    };
    const replaced = await rest.replace<V1Secret>(
      secretPath(cr.metadata.namespace as string, current.metadata?.name as string),
      body,
    );
    this.written.set(clientKey(cr), { supersededRv: current.metadata?.resourceVersion, secret: replaced });
    this.remember(clientKey(cr), replaced);
    return replaced;
  }

  /**
   * Stores what the provider returned (a new registration, a rotated token). The answer is kept in
   * memory, newest per client, and written until stored; the write is a compare-and-swap on what
   * `mgmt` held when the provider was called, so it never overwrites another attempt's
   * registration. Rejects with RegistrationConflictError when ours lost (`onConflict`, given for a
   * new registration, has then undone it at the provider) and with WritePendingError while the
   * API server does not accept it (the write goes on in the background).
   */
  persist(
    cr: OidcClient,
    mgmt: V1Secret,
    reg: StoredRegistration | UnmanagedRegistration,
    annotations: Record<string, string> = REGISTERED,
    previous?: StoredRegistration,
    opts: { onConflict?: () => Promise<void> } = {},
  ): Promise<V1Secret> {
    const base = this.overlays.has(mgmt) ? this.overlays.get(mgmt) : mgmt;
    return this.outbox.write({
      cr,
      name: mgmt.metadata?.name as string,
      reg,
      data: managementSecretData(reg, previous),
      annotations,
      base,
      onConflict: opts.onConflict,
    });
  }

  /**
   * persist() for a registration whose management Secret does not exist yet (a first registration,
   * marked on the OidcClient): the Secret is created with it, in one write. A Secret that appeared
   * meanwhile is judged like any other: another attempt's registration wins, someone else's
   * Secret is never written into.
   */
  persistNew(
    cr: OidcClient,
    name: string,
    reg: StoredRegistration | UnmanagedRegistration,
    annotations: Record<string, string>,
    opts: { onConflict?: () => Promise<void> } = {},
  ): Promise<V1Secret> {
    return this.outbox.write({
      cr,
      name,
      reg,
      data: managementSecretData(reg),
      annotations,
      base: undefined,
      onConflict: opts.onConflict,
    });
  }

  /** Remembers (as a fingerprint) that the provider rejected this token, so it is not retried in a loop. */
  async markRejected(mgmt: V1Secret, reg: StoredRegistration): Promise<void> {
    const fp = tokenFingerprint(reg.registrationAccessToken);
    if (mgmt.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN] === fp) return;
    await this.rest.patch(
      secretPath(mgmt.metadata?.namespace as string, mgmt.metadata?.name as string),
      'merge',
      {
        metadata: { annotations: { [ANNOTATION_REJECTED_TOKEN]: fp } },
      },
    );
  }

  rejectedTokenInUse(mgmt: V1Secret | undefined, reg: StoredRegistration): boolean {
    const fp = mgmt?.metadata?.annotations?.[ANNOTATION_REJECTED_TOKEN];
    return fp !== undefined && fp === tokenFingerprint(reg.registrationAccessToken);
  }

  /** Removes our finalizer so the Secret can go (after the provider-side delete, or to rewrite it). */
  async release(secret: V1Secret): Promise<void> {
    const idx = (secret.metadata?.finalizers ?? []).indexOf(REGISTRATION_FINALIZER);
    if (idx < 0) return;
    const path = secretPath(secret.metadata?.namespace as string, secret.metadata?.name as string);
    try {
      await this.rest.patch(path, 'json', [
        { op: 'test', path: `/metadata/finalizers/${idx}`, value: REGISTRATION_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (error) {
      if (isKubeStatus(error, 404)) return;
      if (!isKubeStatus(error, 422) && !isKubeStatus(error, 409)) throw error;
      // The finalizer list changed under us (the patch's test failed): retry on the fresh object.
      // A refusal (an admission policy also answers 422) leaves the list as it was: that is the
      // caller's error to retry with backoff, not a loop of PATCH and GET.
      const fresh = await this.rest.get<V1Secret>(path).catch(() => undefined);
      if (!fresh) return;
      if ((fresh.metadata?.finalizers ?? []).indexOf(REGISTRATION_FINALIZER) === idx) throw error;
      await this.release(fresh);
    }
  }

  /**
   * deletionPolicy: Orphan: the Secret stays, without our ownerReference and finalizer, labelled
   * as orphaned, so the client can be adopted again (spec.adoptFrom names this Secret).
   */
  async orphan(cr: OidcClient, secret: V1Secret): Promise<void> {
    const ns = secret.metadata?.namespace as string;
    const name = secret.metadata?.name as string;
    let current: V1Secret | undefined = secret;
    for (let attempt = 0; current && attempt < 5; attempt++) {
      const body: V1Secret = {
        ...current,
        metadata: {
          ...current.metadata,
          ownerReferences: (current.metadata?.ownerReferences ?? []).filter((o) => o.uid !== cr.metadata.uid),
          finalizers: (current.metadata?.finalizers ?? []).filter((f) => f !== REGISTRATION_FINALIZER),
          labels: { ...current.metadata?.labels, [LABEL_ORPHANED]: 'true' },
          annotations: {
            ...current.metadata?.annotations,
            [ANNOTATION_ORPHANED_FROM]: `OidcClient ${clientKey(cr)} (uid ${cr.metadata.uid})`,
          },
        },
      };
      try {
        await this.rest.replace(secretPath(ns, name), body);
        return;
      } catch (error) {
        if (isKubeStatus(error, 404)) return;
        if (!isKubeStatus(error, 409)) throw error;
        current = await this.read(ns, name);
      }
    }
  }

  /** Takes an orphaned management Secret (named in spec.adoptFrom) back as this client's own. */
  async claim(cr: OidcClient, secret: V1Secret): Promise<V1Secret> {
    const labels: Record<string, string> = {
      ...secret.metadata?.labels,
      [LABEL_CLIENT]: clientLabelValue(cr.metadata.name as string),
    };
    delete labels[LABEL_ORPHANED];
    const annotations = { ...secret.metadata?.annotations };
    delete annotations[ANNOTATION_ORPHANED_FROM];
    const claimed = await this.rest.replace<V1Secret>(
      secretPath(cr.metadata.namespace as string, secret.metadata?.name as string),
      {
        ...secret,
        metadata: {
          ...secret.metadata,
          labels,
          annotations,
          ownerReferences: [ownerReference(cr)],
          finalizers: [...new Set([...(secret.metadata?.finalizers ?? []), REGISTRATION_FINALIZER])],
        },
      },
    );
    this.written.set(clientKey(cr), { supersededRv: secret.metadata?.resourceVersion, secret: claimed });
    return claimed;
  }

  /** Every registration Secret in the cache that this OidcClient owns (current, renamed, leftovers). */
  ownedBy(cr: OidcClient): V1Secret[] {
    return this.cache
      .byIndex(SECRETS_BY_CLIENT, `${cr.metadata.namespace}/${cr.metadata.name}`)
      .filter(
        (s) =>
          s.metadata?.namespace === cr.metadata.namespace &&
          s.metadata?.labels?.[LABEL_ROLE] === 'registration' &&
          isOwnedBy(s, cr),
      );
  }

  /**
   * Registration Secrets of a client name whose OidcClient is gone and that are being deleted:
   * nothing else would ever remove our finalizer from them (it would block namespace deletion).
   */
  leftovers(namespace: string, clientName: string, liveUid: string | undefined): V1Secret[] {
    return this.cache
      .byIndex(SECRETS_BY_CLIENT, `${namespace}/${clientName}`)
      .filter(
        (s) =>
          s.metadata?.namespace === namespace &&
          ownerClientName(s) === clientName &&
          s.metadata?.deletionTimestamp &&
          (s.metadata?.finalizers ?? []).includes(REGISTRATION_FINALIZER) &&
          !(s.metadata?.ownerReferences ?? []).some((o) => o.uid === liveUid),
      );
  }

  /** After release the Secret disappears within moments; waits up to ~2 s for that. */
  async waitGone(namespace: string, name: string): Promise<V1Secret | undefined> {
    for (let i = 0; i < 20; i++) {
      const s = await this.read(namespace, name);
      if (!s) return undefined;
      await sleep(100);
    }
    return this.read(namespace, name);
  }
}

/** A short, non-reversible fingerprint: enough to recognise a token, useless to an attacker. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}
