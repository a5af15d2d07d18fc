// Reads and writes of the management Secret (registration access token, registration_client_uri,
// credentials). Its writes must never be lost to a stale cache: the copy written last is
// remembered until the informer has caught up, because acting on an older token would look like a
// rejected token on providers that rotate it. What the provider returned but is not stored yet
// lives in the CredentialOutbox and is what current() shows until it is stored.

import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OidcClient } from '../api/types.generated.js';
import type { CacheReader } from '../kube/informer.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { readSecret, secretPath } from '../kube/secrets.js';
import { CredentialOutbox, judge } from './credential-outbox.js';
import {
  ANNOTATION_ATTEMPT,
  ANNOTATION_REJECTED_TOKEN,
  ANNOTATION_STATE,
  clientKey,
  REGISTRATION_FINALIZER,
} from './names.js';
import { ReconcileError, SecretConflictError } from './outcome.js';
import { isOwnedBy, managementSecretData, newManagementSecret, type StoredRegistration } from './secrets.js';

/** Annotations that describe one registration attempt; replaced, not merged, on every write. */
const TRANSIENT_ANNOTATIONS = new Set([ANNOTATION_STATE, ANNOTATION_ATTEMPT, ANNOTATION_REJECTED_TOKEN]);

export const REGISTERED = { [ANNOTATION_STATE]: 'registered' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ManagementSecrets {
  private readonly written = new Map<string, { supersededRv: string | undefined; secret: V1Secret }>();
  private readonly outbox: CredentialOutbox;
  /** Copies shown by current() with unstored credentials laid over, and the real Secret under each. */
  private readonly overlays = new WeakMap<V1Secret, V1Secret | undefined>();

  constructor(
    private readonly rest: KubeRest,
    private readonly cache: CacheReader<V1Secret>,
    log?: Logger,
  ) {
    this.outbox = new CredentialOutbox(
      rest.unfenced(),
      {
        replace: (r, cr, current, reg, annotations) =>
          this.replaceWith(r, cr, current, managementSecretData(reg), annotations),
        create: (r, cr, name, reg, annotations) => this.createWith(r, cr, name, reg, annotations),
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
    const left = await this.outbox.drain(timeoutMs);
    this.outbox.close();
    return left;
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
    const verdict = judge(stored, pending.reg, pending.basis);
    if (verdict === 'stored' && stored) this.outbox.settleIfStored(key, stored);
    if (verdict === 'stored' || verdict === 'lost') return stored;
    const data = managementSecretData(pending.reg);
    const copy: V1Secret = stored
      ? {
          ...stored,
          metadata: {
            ...stored.metadata,
            annotations: { ...withoutTransient(stored.metadata?.annotations), ...pending.annotations },
          },
          data,
        }
      : newManagementSecret(cr, name, data, pending.annotations);
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
    // Not in the cache: absent, not ours (no label), or the cache lags. Ask.
    return cached ?? this.read(cr.metadata.namespace as string, name);
  }

  read(namespace: string, name: string): Promise<V1Secret | undefined> {
    return readSecret(this.rest, namespace, name);
  }

  create(
    cr: OidcClient,
    name: string,
    reg: StoredRegistration | undefined,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    return this.createWith(this.rest, cr, name, reg, annotations);
  }

  private async createWith(
    rest: KubeRest,
    cr: OidcClient,
    name: string,
    reg: StoredRegistration | undefined,
    annotations: Record<string, string>,
  ): Promise<V1Secret> {
    const ns = cr.metadata.namespace as string;
    const body = newManagementSecret(cr, name, reg ? managementSecretData(reg) : {}, annotations);
    try {
      const created = await rest.create<V1Secret>(`/api/v1/namespaces/${ns}/secrets`, body);
      this.written.set(clientKey(cr), { supersededRv: undefined, secret: created });
      return created;
    } catch (error) {
      if (!isKubeStatus(error, 409)) throw error;
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
        annotations: { ...withoutTransient(current.metadata?.annotations), ...annotations },
        finalizers,
      },
      data,
    };
    const replaced = await rest.replace<V1Secret>(
      secretPath(cr.metadata.namespace as string, current.metadata?.name as string),
      body,
    );
    this.written.set(clientKey(cr), { supersededRv: current.metadata?.resourceVersion, secret: replaced });
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
    reg: StoredRegistration,
    annotations: Record<string, string> = REGISTERED,
    opts: { onConflict?: () => Promise<void> } = {},
  ): Promise<V1Secret> {
    const base = this.overlays.has(mgmt) ? this.overlays.get(mgmt) : mgmt;
    return this.outbox.write({
      cr,
      name: mgmt.metadata?.name as string,
      reg,
      annotations,
      base,
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
      // The finalizer list changed under us: retry on the fresh object.
      const fresh = await this.rest.get<V1Secret>(path).catch(() => undefined);
      if (fresh) await this.release(fresh);
    }
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

function withoutTransient(annotations: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => !TRANSIENT_ANNOTATIONS.has(k)));
}

/** A short, non-reversible fingerprint: enough to recognise a token, useless to an attacker. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}
