// Steps that change nothing at the provider: report a problem and wait for a person, or look at the
// provider (a drift check) and observe again.
import type { V1Secret } from '@kubernetes/client-node';
import { findCondition, Reason } from '../conditions.js';
import { secretConflict } from '../error-outcome.js';
import { LABEL_ORPHANED } from '../names.js';
import type { StoredState } from '../secrets.js';
import { AGAIN, type StepDeps, type StepTable } from './context.js';

/** Reports and drift checks. */
export function observeSteps(
  d: StepDeps,
): Pick<
  StepTable,
  'Invalid' | 'Refused' | 'AwaitingSpecChange' | 'SecretConflict' | 'TokenRejected' | 'CheckDue'
> {
  return {
    Invalid: async (s, c) => {
      d.events.record(c.obs.cr, 'Warning', s.reason, s.message);
      return { kind: 'stalled', reason: s.reason, message: s.message };
    },

    Refused: async (s) => s.outcome,

    AwaitingSpecChange: async (s) => ({ kind: 'stalled', reason: s.reason, message: s.message }),

    SecretConflict: async (s, c) => {
      if (s.secretName === c.obs.mgmtName && c.obs.mgmt?.metadata?.labels?.[LABEL_ORPHANED] === 'true') {
        // Left behind by deletionPolicy: Orphan: say how to take it back.
        const message = `Secret ${s.secretName} holds a registration orphaned by an earlier OidcClient; set spec.adoptFrom.secretRef.name: ${s.secretName} to take that client over, or delete the Secret to register a new one`;
        d.events.record(c.obs.cr, 'Warning', Reason.SecretConflict, message);
        return { kind: 'stalled', reason: Reason.SecretConflict, message };
      }
      return secretConflict(d.events, c.obs.cr, s.secretName);
    },

    TokenRejected: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      if (!s.probe) {
        const message =
          findCondition(c.obs.status.conditions, 'Ready')?.message ?? 'registration access token rejected';
        return { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message };
      }
      if (c.obs.mgmt) await d.mgmtSecrets.markRejected(c.obs.mgmt, stored.reg);
      const message = `the provider rejected the registration access token of client ${stored.reg.clientId} (client credentials ${s.probe === 'valid' ? 'still work' : 'could not be checked'}); put a valid token in Secret ${c.obs.mgmtName} key registration_access_token, or delete the OidcClient with deletionPolicy: Orphan`;
      d.events.record(c.obs.cr, 'Warning', Reason.RegistrationTokenRejected, message);
      return { kind: 'stalled', reason: Reason.RegistrationTokenRejected, message };
    },

    CheckDue: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      c.remote = await d.lifecycle.check(c.obs.cr, await c.provider(), c.obs.mgmt as V1Secret, stored.reg);
      return AGAIN;
    },
  };
}
