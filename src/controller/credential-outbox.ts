// Credentials a provider handed out but the management Secret does not hold yet: a new
// registration, or a registration access token the provider rotated (Keycloak issues a new one on
// every call and invalidates the old). Losing either is unrecoverable (an orphaned client, a client
// no one can manage), so each is kept in memory, newest per client, and written until stored.
//
// Every write is a compare-and-swap on what the Secret held when the provider was called, never a
// blind overwrite: a token replaces exactly the token it was rotated from, and a new registration
// goes only into the Secret still carrying this attempt's `pending` marker. That makes the writes
// safe whoever holds the Lease, so they go through the unfenced client and continue after a leader
// lost its term. A registration that loses (another attempt stored first) is deleted at the
// provider instead of overwriting the winner.
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OidcClient } from '../api/types.generated.js';
import { errorMessage } from '../kube/informer.js';
import { isKubeStatus, KubeApiError, type KubeRest } from '../kube/rest.js';
import { readSecret } from '../kube/secrets.js';
import { clientKey } from './names.js';
import { ReconcileError } from './outcome.js';
import {
  isManaged,
  isOwnedBy,
  mergeAnnotations,
  readStored,
  type StoredRegistration,
  type UnmanagedRegistration,
} from './secrets.js';

/** What the provider handed out: a managed registration (with its token) or an unmanaged one. */
export type AnyRegistration = StoredRegistration | UnmanagedRegistration;

/**
 * What the Secret must still hold for a pending write to be the right one. `ours` are the tokens of
 * answers this pending chain already tried to write and then replaced with a newer answer: a write
 * that timed out may still have landed, so finding one of them stored means our own earlier write,
 * not someone else's.
 */
export type WriteBasis =
  /** A new registration: no credentials stored, and (when known) this attempt's marker. */
  | { kind: 'new'; attempt: string | undefined; ours?: readonly string[] }
  /** A changed registration (rotated token): the token the provider call used is still stored. */
  | { kind: 'update'; token: string; ours?: readonly string[] };

function tokenOf(reg: AnyRegistration): string | undefined {
  return isManaged(reg) ? reg.registrationAccessToken : undefined;
}

/** Another attempt's registration (or a newer token set by someone else) is stored: ours lost. */
export class RegistrationConflictError extends ReconcileError {
  constructor(message: string) {
    super(message, 200);
    this.name = 'RegistrationConflictError';
  }
}

/** Not stored yet: kept in memory and retried in the background; the reconcile retries too. */
export class WritePendingError extends ReconcileError {
  constructor(message: string) {
    super(message, 1000);
    this.name = 'WritePendingError';
  }
}

export interface WriteRequest {
  cr: OidcClient;
  name: string;
  reg: AnyRegistration;
  /** The Secret data to write: the registration (and a previous one during a re-registration). */
  data: Record<string, string>;
  annotations: Record<string, string>;
  /**
   * The stored Secret the provider call was based on (undefined: none is stored); its content is
   * the basis of the compare-and-swap.
   */
  base: V1Secret | undefined;
  /** Called once when a new registration lost: undo it at the provider. */
  onConflict?: () => Promise<void>;
}

export interface SecretWriter {
  replace(
    rest: KubeRest,
    cr: OidcClient,
    current: V1Secret,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret>;
  create(
    rest: KubeRest,
    cr: OidcClient,
    name: string,
    data: Record<string, string>,
    annotations: Record<string, string>,
  ): Promise<V1Secret>;
}

interface Pending {
  key: string;
  cr: OidcClient;
  namespace: string;
  name: string;
  reg: AnyRegistration;
  data: Record<string, string>;
  annotations: Record<string, string>;
  basis: WriteBasis;
  onConflict: (() => Promise<void>) | undefined;
  /** The Secret to try first (null: read it; 'absent': none was there, create it). */
  hint: V1Secret | null | 'absent';
  failures: number;
  done: Promise<V1Secret>;
  resolve: (s: V1Secret) => void;
  reject: (e: Error) => void;
}

type Verdict = 'stored' | 'apply' | 'missing' | 'lost';

function sameMap(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b).length && ka.every((k) => a?.[k] === b[k]);
}

/** Judges the Secret as it is now against a pending write of `data` and `annotations`. */
export function judge(
  current: V1Secret | undefined,
  data: Record<string, string>,
  annotations: Record<string, string>,
  basis: WriteBasis,
): Verdict {
  if (!current) return 'missing';
  const annotated = current.metadata?.annotations ?? {};
  if (sameMap(current.data, data) && sameMap(annotated, mergeAnnotations(annotated, annotations)))
    return 'stored';
  const stored = readStored(current);
  if (stored.kind === 'managed' && basis.ours?.includes(stored.reg.registrationAccessToken)) return 'apply';
  if (basis.kind === 'update') {
    return stored.kind === 'managed' && stored.reg.registrationAccessToken === basis.token ? 'apply' : 'lost';
  }
  if (stored.kind !== 'empty') return 'lost';
  return basis.attempt === undefined || stored.attempt === basis.attempt ? 'apply' : 'lost';
}

export function basisOf(secret: V1Secret | undefined): WriteBasis {
  const stored = readStored(secret);
  return stored.kind === 'managed'
    ? { kind: 'update', token: stored.reg.registrationAccessToken }
    : { kind: 'new', attempt: stored.kind === 'empty' ? stored.attempt : undefined };
}

const MAX_BACKOFF_MS = 10_000;

export class CredentialOutbox {
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(
    /** Unfenced: these writes are compare-and-swap and must outlive a lost term. */
    private readonly rest: KubeRest,
    private readonly writer: SecretWriter,
    private readonly log: Logger | undefined,
    /** How long persist() waits for the write before the reconcile moves on (the write does not). */
    private readonly waitMs = 5_000,
  ) {}

  /** The newest unstored registration for this client and Secret, if any. */
  peek(key: string, name: string): Pick<Pending, 'reg' | 'data' | 'annotations' | 'basis'> | undefined {
    const p = this.pending.get(key);
    return p && p.name === name ? p : undefined;
  }

  /** The Secret now holds what was pending (seen in the cache or read): nothing left to write. */
  settleIfStored(key: string, current: V1Secret): void {
    const p = this.pending.get(key);
    if (p && current.metadata?.name === p.name && judge(current, p.data, p.annotations, p.basis) === 'stored')
      this.settle(p, current);
  }

  /**
   * Records `req` as the newest registration for its client and writes it; resolves with the stored
   * Secret, or rejects with RegistrationConflictError (ours lost) or WritePendingError (not stored
   * within waitMs; it stays queued and is retried with backoff until stored).
   */
  async write(req: WriteRequest): Promise<V1Secret> {
    const key = clientKey(req.cr);
    let p = this.pending.get(key);
    if (p && p.name === req.name) {
      // A newer answer for a write still pending (the reconcile used the in-memory token): the
      // basis stays what the Secret holds, the value becomes the newest. The replaced answer may
      // have been stored by a write whose response was lost: that token counts as ours.
      const replaced = tokenOf(p.reg);
      if (replaced !== undefined && replaced !== tokenOf(req.reg)) {
        p.basis = { ...p.basis, ours: [...(p.basis.ours ?? []), replaced] };
      }
      p.reg = req.reg;
      p.data = req.data;
      p.annotations = req.annotations;
      p.cr = req.cr;
      if (req.onConflict) p.onConflict = req.onConflict;
    } else {
      p = this.enqueue(key, req);
    }
    const waited = await Promise.race([p.done, delay(this.waitMs).then(() => undefined)]);
    if (waited) return waited;
    throw new WritePendingError(
      `the management Secret ${req.name} did not accept the provider's answer within ${this.waitMs / 1000} s; it is kept in memory and written as soon as the API server accepts it`,
    );
  }

  /** Forgets the client (it is gone, or its Secret was handled otherwise). */
  forget(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    p.reject(new WritePendingError('the pending write was dropped'));
  }

  /**
   * On shutdown: waits up to timeoutMs for every pending write to be stored or resolved. A new
   * registration still not stored then is undone at the provider (the process is going away with
   * the only copy; a successor registers again); a rotated token still not stored is lost, which is
   * logged. Returns how many tokens were lost.
   */
  async drain(timeoutMs: number): Promise<number> {
    const all = [...this.pending.values()].map((p) => p.done.catch(() => undefined));
    await Promise.race([Promise.all(all), delay(timeoutMs)]);
    let lost = 0;
    for (const p of [...this.pending.values()]) {
      this.pending.delete(p.key);
      if (p.basis.kind === 'new' && p.onConflict) {
        this.log?.warn(
          { oidcclient: p.key, clientId: p.reg.clientId },
          'new registration not stored before shutdown; deleting it at the provider',
        );
        await p.onConflict().catch(() => undefined);
        p.reject(new RegistrationConflictError('not stored before shutdown; undone at the provider'));
      } else {
        lost++;
        this.log?.error(
          { oidcclient: p.key, clientId: p.reg.clientId },
          'shutting down with a registration access token the management Secret does not hold; the client may need a new token',
        );
        p.reject(new WritePendingError('not stored before shutdown'));
      }
    }
    return lost;
  }

  /** Stops the background writes (process shutdown after drain). */
  close(): void {
    this.closed = true;
  }

  private enqueue(key: string, req: WriteRequest): Pending {
    let resolve!: (s: V1Secret) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<V1Secret>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // awaited by persist() or not at all
    const p: Pending = {
      key,
      cr: req.cr,
      namespace: req.cr.metadata.namespace as string,
      name: req.name,
      reg: req.reg,
      data: req.data,
      annotations: req.annotations,
      basis: basisOf(req.base),
      onConflict: req.onConflict,
      // No Secret yet (a first registration): create it at once; a 409 reads and judges again.
      hint: req.base?.metadata?.resourceVersion ? req.base : req.base === undefined ? 'absent' : null,
      failures: 0,
      done,
      resolve,
      reject,
    };
    this.pending.set(key, p);
    void this.flush(p);
    return p;
  }

  private settle(p: Pending, stored: V1Secret): void {
    if (this.pending.get(p.key) === p) this.pending.delete(p.key);
    p.resolve(stored);
  }

  private async lose(p: Pending, why: string): Promise<void> {
    if (this.pending.get(p.key) === p) this.pending.delete(p.key);
    if (p.basis.kind === 'new' && p.onConflict) {
      this.log?.warn(
        { oidcclient: p.key, clientId: p.reg.clientId, reason: why },
        'another registration was stored first; deleting ours at the provider',
      );
      await p.onConflict().catch(() => undefined);
    } else {
      this.log?.info({ oidcclient: p.key, reason: why }, 'pending registration superseded; not writing it');
    }
    p.reject(new RegistrationConflictError(why));
  }

  private async flush(p: Pending): Promise<void> {
    for (;;) {
      if (this.closed || this.pending.get(p.key) !== p) return;
      const reg = p.reg;
      const data = p.data;
      const annotations = p.annotations;
      try {
        const current =
          p.hint === 'absent' ? undefined : (p.hint ?? (await readSecret(this.rest, p.namespace, p.name)));
        p.hint = null;
        if (current && !isOwnedBy(current, p.cr)) {
          // Someone else's Secret took the name: never written into; ours cannot be stored.
          return await this.lose(p, `Secret ${p.name} exists and is not owned by this OidcClient`);
        }
        const verdict = judge(current, data, annotations, p.basis);
        if (verdict === 'stored' && current) {
          if (p.reg === reg) return this.settle(p, current);
          p.basis = basisOf(current);
          continue;
        }
        if (verdict === 'lost') {
          const why =
            p.basis.kind === 'new'
              ? `Secret ${p.name} changed under this registration attempt (another attempt's registration or marker is stored)`
              : `Secret ${p.name} holds a registration access token other than the one this answer replaces`;
          return await this.lose(p, why);
        }
        const written = current
          ? await this.writer.replace(this.rest, p.cr, current, data, annotations)
          : await this.writer.create(this.rest, p.cr, p.name, data, annotations);
        if (p.reg === reg) return this.settle(p, written);
        // A newer answer arrived while this one was being written: it replaces what we just stored.
        p.basis = basisOf(written);
        p.hint = written;
      } catch (error) {
        if (isKubeStatus(error, 409) || isKubeStatus(error, 404)) continue; // re-read and judge again
        if (p.basis.kind === 'new' && isPermanent(error)) {
          return await this.lose(p, `storing the registration failed: ${errorMessage(error)}`);
        }
        p.failures += 1;
        const wait =
          Math.min(MAX_BACKOFF_MS, 200 * 2 ** Math.min(p.failures - 1, 10)) * (0.75 + Math.random() * 0.5);
        if (p.failures === 1 || p.failures % 10 === 0) {
          this.log?.warn(
            { oidcclient: p.key, attempts: p.failures, err: errorMessage(error) },
            'management Secret write failed; the provider answer is kept in memory and retried',
          );
        }
        await delay(wait);
      }
    }
  }
}

/** Errors retrying cannot fix (forbidden, invalid): anything but 409, 404, 429, 5xx and network failures. */
function isPermanent(error: unknown): boolean {
  return error instanceof KubeApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
  });
}
