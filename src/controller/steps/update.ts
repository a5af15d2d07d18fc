// Steps that bring the provider and the application Secret in line with the spec: update the client
// (PUT), publish a client in sync, or publish a client the operator cannot manage.
import type { V1Secret } from '@kubernetes/client-node';
import type { RemoteObservation } from '../client-state.js';
import { Reason } from '../conditions.js';
import type { ExtraCondition } from '../outcome.js';
import type { StoredState } from '../secrets.js';
import type { StepDeps, StepTable } from './context.js';

/** Update and publish. */
export function updateSteps(d: StepDeps): Pick<StepTable, 'NeedsUpdate' | 'UpToDate' | 'Unmanaged'> {
  return {
    NeedsUpdate: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const remote = c.obs.remote as Extract<RemoteObservation, { kind: 'found' }>;
      await d.lifecycle.update(
        c.obs.cr,
        await c.provider(),
        c.obs.mgmt as V1Secret,
        c.obs.mgmtName,
        stored.reg,
        remote.client,
        c.obs.status,
        c.obs.specChanged,
        c.log,
      );
      d.resync.schedule(c.key);
      // A token rotated by the PUT was stored; the published credentials are the same.
      return d.publisher.publish(c, stored.reg, [], remote);
    },

    UpToDate: async (_s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      if (c.obs.remote?.kind === 'found') d.resync.schedule(c.key);
      return d.publisher.publish(c, stored.reg, [], c.obs.remote);
    },

    Unmanaged: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'unmanaged' }>;
      // Nothing to check at the provider; the interval only re-asserts the application Secret.
      if (c.obs.resyncDue || !d.resync.scheduled(c.key)) d.resync.schedule(c.key);
      const conditions: ExtraCondition[] = [
        {
          type: 'Managed',
          status: 'False',
          reason: Reason.ManagementUnsupported,
          message:
            'the provider gave no registration access token: the operator cannot update this client or delete it at the provider',
        },
      ];
      if (s.specDiffers) {
        const message = `spec changes cannot be sent to the provider (no RFC 7592 management for client ${stored.reg.clientId}); change the client at the provider by hand, or delete and recreate the OidcClient`;
        conditions.push({ type: 'Synced', status: 'False', reason: Reason.ManagementUnsupported, message });
        d.events.record(c.obs.cr, 'Warning', Reason.ManagementUnsupported, message);
      }
      return d.publisher.publish(c, stored.reg, conditions);
    },
  };
}
