// Who may read /metrics: the same check kubebuilder's secure metrics (and kube-rbac-proxy) make.
// The Bearer token is authenticated with a TokenReview, then a SubjectAccessReview asks whether
// that user may `get` the non-resource URL /metrics. Decisions are cached briefly (by a hash of
// the token, never the token itself), so a scrape every 15–30 s costs the apiserver little.
import { createHash } from 'node:crypto';
import type { KubeRest } from '../kube/rest.js';

export type MetricsDecision = { ok: true } | { ok: false; status: 401 | 403 | 503; message: string };

export interface MetricsAuthorizer {
  authorize(authorization: string | undefined): Promise<MetricsDecision>;
}

export interface KubernetesMetricsAuthOptions {
  /** How long an allowed token stays allowed without asking again. Default 60 s. */
  allowTtlMs?: number;
  /** How long a refused token stays refused. Default 10 s. */
  denyTtlMs?: number;
  /** Cached decisions at most (oldest dropped first). Default 256. */
  maxEntries?: number;
}

interface TokenReview {
  status?: {
    authenticated?: boolean;
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
}

interface SubjectAccessReview {
  status?: { allowed?: boolean; denied?: boolean };
}

export class KubernetesMetricsAuth implements MetricsAuthorizer {
  readonly #cache = new Map<string, { decision: MetricsDecision; until: number }>();
  readonly #inFlight = new Map<string, Promise<MetricsDecision>>();
  readonly #allowTtlMs: number;
  readonly #denyTtlMs: number;
  readonly #maxEntries: number;

  constructor(
    private readonly rest: KubeRest,
    opts: KubernetesMetricsAuthOptions = {},
  ) {
    this.#allowTtlMs = opts.allowTtlMs ?? 60_000;
    this.#denyTtlMs = opts.denyTtlMs ?? 10_000;
    this.#maxEntries = opts.maxEntries ?? 256;
  }

  async authorize(authorization: string | undefined): Promise<MetricsDecision> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = match?.[1];
    if (!token) return { ok: false, status: 401, message: 'a Bearer token is required' };
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.#cache.get(key);
    if (cached && cached.until > Date.now()) return cached.decision;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#review(token).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    const decision = await pending;
    // An unavailable apiserver is not a decision about the token: ask again next time.
    if (decision.ok || decision.status !== 503) this.#remember(key, decision);
    return decision;
  }

  async #review(token: string): Promise<MetricsDecision> {
    try {
      const review = await this.rest.create<TokenReview>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token },
      });
      const user = review.status?.user;
      if (!review.status?.authenticated || !user?.username) {
        return { ok: false, status: 401, message: 'the token was not accepted' };
      }
      const access = await this.rest.create<SubjectAccessReview>(
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            ...(user.uid ? { uid: user.uid } : {}),
            ...(user.groups ? { groups: user.groups } : {}),
            ...(user.extra ? { extra: user.extra } : {}),
            nonResourceAttributes: { path: '/metrics', verb: 'get' },
          },
        },
      );
      if (!access.status?.allowed) {
        return { ok: false, status: 403, message: `${user.username} may not get /metrics` };
      }
      return { ok: true };
    } catch {
      return { ok: false, status: 503, message: 'cannot check the token now' };
    }
  }

  #remember(key: string, decision: MetricsDecision): void {
    const until = Date.now() + (decision.ok ? this.#allowTtlMs : this.#denyTtlMs);
    this.#cache.delete(key);
    this.#cache.set(key, { decision, until });
    while (this.#cache.size > this.#maxEntries) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }
}
