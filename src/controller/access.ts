// The tenancy gate in front of every provider call: may this OidcClient's namespace use the
// provider (ClusterOidcProvider spec.conditions), and does its spec stay within the provider's
// clientPolicy? It reads only informer caches, so a refused client costs no Secret read and no
// request to the provider. Refusals stall (no retry loop) until the provider, the namespace or the
// spec changes; the controller wakes the client then.
import type { V1Namespace } from '@kubernetes/client-node';
import type { ClusterOidcProvider, OidcClient, OidcProvider } from '../api/types.generated.js';
import type { EventRecorder } from '../kube/events.js';
import type { CacheReader } from '../kube/informer.js';
import { checkClientPolicy, policyProblems } from '../policy/client-policy.js';
import { namespaceAccess } from '../policy/namespace-access.js';
import { Reason } from './conditions.js';
import type { Outcome } from './outcome.js';

export interface ClientAccessDeps {
  providers: CacheReader<OidcProvider>;
  clusterProviders: CacheReader<ClusterOidcProvider>;
  namespaces: CacheReader<V1Namespace>;
  events: EventRecorder;
}

export class ClientAccess {
  constructor(private readonly d: ClientAccessDeps) {}

  /**
   * undefined = go ahead. A missing provider is left to the ProviderRegistry (ProviderNotFound).
   * Deletion does not pass through here: a registered client is always deleted with its own token.
   */
  check(cr: OidcClient): Outcome | undefined {
    const ns = cr.metadata.namespace as string;
    const ref = cr.spec.providerRef;
    const cluster = ref.kind === 'ClusterOidcProvider';
    const provider = cluster
      ? this.d.clusterProviders.get(ref.name)
      : this.d.providers.get(`${ns}/${ref.name}`);
    if (!provider) return undefined;
    const what = `${cluster ? 'ClusterOidcProvider' : 'OidcProvider'} ${ref.name}`;

    if (cluster) {
      const conditions = (provider as ClusterOidcProvider).spec.conditions;
      const decision = namespaceAccess(conditions, { name: ns, labels: this.labelsOf(ns) });
      if (decision.allowed === undefined) {
        // Just created and not in the namespaces cache yet: look again shortly.
        return {
          kind: 'retry',
          reason: Reason.Progressing,
          message: `waiting for namespace ${ns} to be known`,
          retryAfterMs: 1000,
        };
      }
      if (!decision.allowed) {
        const kept = cr.status?.clientId
          ? ` Client ${cr.status.clientId}, registered before, is left as it is at the provider and its Secrets are kept; nothing is sent for it until the namespace is allowed again (deleting the OidcClient still deletes it at the provider).`
          : '';
        return this.refuse(
          cr,
          Reason.NotAllowed,
          `namespace ${ns} is not allowed to use ${what} (see its spec.conditions); nothing was sent to the provider.${kept}`,
        );
      }
    }

    const policy = provider.spec.clientPolicy;
    const broken = policyProblems(policy);
    if (broken.length > 0) {
      return this.refuse(
        cr,
        Reason.PolicyViolation,
        `${what} has an invalid clientPolicy: ${broken.join('; ')}`,
      );
    }
    const violations = checkClientPolicy(policy, cr.spec);
    if (violations.length > 0) {
      return this.refuse(
        cr,
        Reason.PolicyViolation,
        `not allowed by the clientPolicy of ${what}: ${violations.map((v) => v.message).join('; ')}; nothing was sent to the provider`,
      );
    }
    return undefined;
  }

  private labelsOf(ns: string): Record<string, string> | undefined {
    const obj = this.d.namespaces.get(ns);
    return obj ? (obj.metadata?.labels ?? {}) : undefined;
  }

  private refuse(
    cr: OidcClient,
    reason: typeof Reason.NotAllowed | typeof Reason.PolicyViolation,
    message: string,
  ): Outcome {
    this.d.events.record(cr, 'Warning', reason, message);
    return { kind: 'stalled', reason, message };
  }
}
