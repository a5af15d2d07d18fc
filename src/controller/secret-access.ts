// Whether the operator may create Secrets in a namespace, asked before a first registration: its
// management Secret is created only with the provider's answer, so without this check a missing
// `create secrets` grant would be found only after the POST (the client is then deleted at the
// provider again, on every retry). A SelfSubjectAccessReview answers it without storing anything;
// during a burst one answer per namespace serves every client for two seconds (concurrent asks
// share one request), so a revoked or restored grant is seen almost at once.
import { KubeApiError, type KubeRest } from '../kube/rest.js';

const ALLOWED_FOR_MS = 2_000;

interface Review {
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

export class SecretAccess {
  private readonly allowedAt = new Map<string, number>();
  private readonly asking = new Map<string, Promise<void>>();

  constructor(private readonly rest: KubeRest) {}

  /** Throws a 403 KubeApiError when creating Secrets in `namespace` is not allowed. */
  assertCanCreate(namespace: string): Promise<void> {
    const at = this.allowedAt.get(namespace);
    if (at !== undefined && Date.now() - at < ALLOWED_FOR_MS) return Promise.resolve();
    let pending = this.asking.get(namespace);
    if (!pending) {
      pending = this.ask(namespace).finally(() => this.asking.delete(namespace));
      this.asking.set(namespace, pending);
    }
    return pending;
  }

  private async ask(namespace: string): Promise<void> {
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
      this.allowedAt.set(namespace, Date.now());
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
