// Whether the operator may create Secrets in a namespace, asked before a first registration: its
// management Secret is created only with the provider's answer, so without this check a missing
// `create secrets` grant would be found only after the POST (the client is then deleted at the
// provider again, on every retry). A SelfSubjectAccessReview answers it without storing anything;
// during a burst one answer per namespace serves every client for two seconds (concurrent asks
// share one request). An answer serves only clients created no later than the second it was asked
// in, so a grant revoked before a client was created is always seen by that client.
import { KubeApiError, type KubeRest } from '../kube/rest.js';

const ALLOWED_FOR_MS = 2_000;

interface Review {
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

export class SecretAccess {
  /** When the last allowing answer per namespace was asked for. */
  private readonly allowedAt = new Map<string, number>();
  private readonly asking = new Map<string, { startedAt: number; done: Promise<void> }>();

  constructor(private readonly rest: KubeRest) {}

  /**
   * Throws a 403 KubeApiError when creating Secrets in `namespace` is not allowed. `notBefore`
   * (ms; the client's creation time, whole seconds as the apiserver keeps it): an answer asked for
   * earlier than that is not reused.
   */
  assertCanCreate(namespace: string, notBefore = 0): Promise<void> {
    const at = this.allowedAt.get(namespace);
    if (at !== undefined && at >= notBefore && Date.now() - at < ALLOWED_FOR_MS) return Promise.resolve();
    const current = this.asking.get(namespace);
    if (current && current.startedAt >= notBefore) return current.done;
    const startedAt = Date.now();
    const done = this.ask(namespace, startedAt).finally(() => {
      if (this.asking.get(namespace)?.done === done) this.asking.delete(namespace);
    });
    this.asking.set(namespace, { startedAt, done });
    return done;
  }

  private async ask(namespace: string, startedAt: number): Promise<void> {
    const path = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';
    let review: Review;
    try {
      review = await this.rest.create<Review>(path, {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace, verb: 'create', resource: 'secrets' } },
      });
    } catch (error) {
      // Cannot ask (a cluster that forbids access reviews): the create itself will tell.
      if (error instanceof KubeApiError) return;
      throw error;
    }
    if (review.status?.allowed) {
      if ((this.allowedAt.get(namespace) ?? 0) < startedAt) this.allowedAt.set(namespace, startedAt);
      if (this.allowedAt.size > 10_000) this.allowedAt.clear();
      return;
    }
    this.allowedAt.delete(namespace);
    throw new KubeApiError(
      403,
      'Forbidden',
      `secrets is forbidden: cannot create resource "secrets" in the namespace "${namespace}" (SelfSubjectAccessReview before registering${review.status?.reason ? `: ${review.status.reason}` : ''})`,
      'POST',
      `/api/v1/namespaces/${namespace}/secrets`,
    );
  }
}
