// The operator's writes to an OidcClient's own metadata: its finalizer and the marker of a first
// registration attempt. A new client gets both in ONE write, right before its registration POST:
// the finalizer is only needed once something may exist at the provider, and the marker must be
// stored before the POST (a crash after it is then reported instead of silently orphaning a
// client). Without this, a new client cost a finalizer patch plus a management Secret created only
// to hold the marker and rewritten with the result.
import { API_GROUP_VERSION } from '../api/schema.js';
import type { OidcClient } from '../api/types.generated.js';
import { isKubeStatus, type KubeRest } from '../kube/rest.js';
import { Reason } from './conditions.js';
import { ANNOTATION_ATTEMPT, FINALIZER } from './names.js';
import { OutcomeError } from './outcome.js';

type JsonPatchOp = { op: 'add' | 'remove' | 'test'; path: string; value?: unknown };

/** RFC 6901: '~' and '/' in a key are escaped in a JSON pointer. */
function pointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function hasFinalizer(cr: OidcClient): boolean {
  return (cr.metadata.finalizers ?? []).includes(FINALIZER);
}

/**
 * Nothing was ever registered for this OidcClient nor attempted: no marker, no client in its
 * status. Its Secrets can only exist if someone else made them (or an attempt of another replica
 * that the resourceVersion-guarded marker write would notice).
 */
/**
 * When the OidcClient was created (epoch ms, whole seconds: creationTimestamp has no fraction). A
 * list of Secrets taken since then shows every Secret made before the OidcClient, except one made
 * in the same second after the list.
 */
export function createdAfter(cr: OidcClient): number {
  const t = Date.parse(String(cr.metadata.creationTimestamp ?? ''));
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

export function neverRegistered(cr: OidcClient): boolean {
  return !cr.metadata.annotations?.[ANNOTATION_ATTEMPT] && !cr.status?.clientId;
}

export class ClientMetadata {
  constructor(private readonly rest: KubeRest) {}

  /**
   * Adds the finalizer (when missing) and, when `attempt` is given, the registration-attempt marker,
   * in one JSON patch guarded by the resourceVersion the decision was made on: a client changed
   * since (a new spec, a deletion) is observed again instead of being registered as it was.
   * Returns the patched OidcClient; nothing is sent when nothing would change.
   */
  async mark(cr: OidcClient, attempt?: string): Promise<OidcClient> {
    const ops: JsonPatchOp[] = [];
    if (!cr.metadata.finalizers) ops.push({ op: 'add', path: '/metadata/finalizers', value: [FINALIZER] });
    else if (!hasFinalizer(cr)) ops.push({ op: 'add', path: '/metadata/finalizers/-', value: FINALIZER });
    if (attempt !== undefined) {
      if (!cr.metadata.annotations)
        ops.push({ op: 'add', path: '/metadata/annotations', value: { [ANNOTATION_ATTEMPT]: attempt } });
      else
        ops.push({ op: 'add', path: `/metadata/annotations/${pointer(ANNOTATION_ATTEMPT)}`, value: attempt });
    }
    if (ops.length === 0) return cr;
    try {
      return await this.rest.patch<OidcClient>(this.path(cr), 'json', [
        { op: 'test', path: '/metadata/resourceVersion', value: cr.metadata.resourceVersion },
        ...ops,
      ]);
    } catch (error) {
      // 422: the resourceVersion test failed; 409: a concurrent write. The change wakes the key.
      if (!isKubeStatus(error, 422) && !isKubeStatus(error, 409)) throw error;
      throw new OutcomeError({
        kind: 'retry',
        reason: Reason.Progressing,
        message: 'the OidcClient changed while it was being prepared for registration; looking again',
        retryAfterMs: 200,
      });
    }
  }

  /**
   * Removes the marker of an attempt that certainly registered nothing (the provider refused it, or
   * the request never left), so the next attempt does not warn about a possible orphan. Best
   * effort: a marker changed meanwhile stays. Returns the patched OidcClient, if patched.
   */
  async clearAttempt(cr: OidcClient, attempt: string): Promise<OidcClient | undefined> {
    const at = `/metadata/annotations/${pointer(ANNOTATION_ATTEMPT)}`;
    try {
      return await this.rest.patch<OidcClient>(this.path(cr), 'json', [
        { op: 'test', path: at, value: attempt },
        { op: 'remove', path: at },
      ]);
    } catch {
      return undefined;
    }
  }

  async removeFinalizer(cr: OidcClient): Promise<void> {
    const idx = (cr.metadata.finalizers ?? []).indexOf(FINALIZER);
    if (idx < 0) return;
    try {
      await this.rest.patch(this.path(cr), 'json', [
        { op: 'test', path: `/metadata/finalizers/${idx}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${idx}` },
      ]);
    } catch (error) {
      if (isKubeStatus(error, 404)) return;
      throw error;
    }
  }

  private path(cr: OidcClient): string {
    return `/apis/${API_GROUP_VERSION}/namespaces/${cr.metadata.namespace}/oidcclients/${cr.metadata.name}`;
  }
}
