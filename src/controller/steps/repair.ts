// Steps that repair local state (the management Secret renamed, deleted or lost) or wait for it;
// they say AGAIN and the loop observes anew.
import type { V1Secret } from '@kubernetes/client-node';
import { API_GROUP_VERSION } from '../../api/schema.js';
import type { Observation } from '../client-state.js';
import { Reason } from '../conditions.js';
import { REGISTERED } from '../management-secrets.js';
import { AGAIN, type StepDeps, type StepTable } from './context.js';

/** Local repairs of the management Secret. */
export function repairSteps(
  d: StepDeps,
): Pick<
  StepTable,
  'ManagementSecretRenamed' | 'ManagementSecretDeleted' | 'ManagementSecretLost' | 'NamespaceTerminating'
> {
  return {
    ManagementSecretRenamed: async (s, c) => {
      const former = c.obs.former as NonNullable<Observation['former']>;
      // Copy first; the old Secret is released and deleted once the status names the new one
      // (publish), so a crash in between leaves both, never neither.
      await d.mgmtSecrets.create(c.obs.cr, c.obs.mgmtName, former.secret.data ?? {}, {
        ...ourAnnotations(former.secret),
        ...REGISTERED,
      });
      c.log.info({ from: s.from, to: c.obs.mgmtName }, 'management Secret copied to its new name');
      return AGAIN;
    },

    ManagementSecretDeleted: async (_s, c) => {
      // Someone deleted the management Secret: keep its content, let it go, write it anew.
      const mgmt = c.obs.mgmt as V1Secret;
      d.mgmtSecrets.remember(c.key, mgmt);
      await d.mgmtSecrets.release(mgmt);
      d.mgmtSecrets.forget(c.key);
      const still = await d.mgmtSecrets.waitGone(c.obs.cr.metadata.namespace as string, c.obs.mgmtName);
      if (still)
        return {
          kind: 'retry',
          reason: Reason.Progressing,
          message: 'restoring the management Secret',
          retryAfterMs: 500,
        };
      return AGAIN;
    },

    ManagementSecretLost: async (_s, c) => {
      const snapshot = d.mgmtSecrets.remembered(c.key);
      if (!snapshot) return AGAIN;
      await d.mgmtSecrets.create(c.obs.cr, c.obs.mgmtName, snapshot.data, {
        ...snapshot.annotations,
        ...REGISTERED,
      });
      d.events.record(c.obs.cr, 'Normal', 'SecretRestored', `management Secret ${c.obs.mgmtName} restored`);
      return AGAIN;
    },

    NamespaceTerminating: async () => ({
      kind: 'retry',
      reason: Reason.Deleting,
      message: 'namespace is terminating',
      retryAfterMs: 1000,
    }),
  };
}

/** Our annotations on a Secret (those of this API group), to carry over when it moves. */
function ourAnnotations(secret: V1Secret): Record<string, string> {
  const group = API_GROUP_VERSION.split('/')[0] as string;
  return Object.fromEntries(
    Object.entries(secret.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(`${group}/`)),
  );
}
