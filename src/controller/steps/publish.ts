// The end of every good path: the application Secret, Secrets left under old names, the status.
import type { V1Secret } from '@kubernetes/client-node';
import type { OidcClient, OidcClientStatus } from '../../api/types.generated.js';
import type { EventRecorder } from '../../kube/events.js';
import { isKubeStatus, type KubeRest } from '../../kube/rest.js';
import { secretPath } from '../../kube/secrets.js';
import type { AppSecrets } from '../app-secrets.js';
import type { RemoteObservation } from '../client-state.js';
import { findCondition, Reason } from '../conditions.js';
import type { ManagementSecrets } from '../management-secrets.js';
import { ANNOTATION_ADOPTED, appSecretName } from '../names.js';
import type { ExtraCondition, Outcome } from '../outcome.js';
import type { ResolvedProvider } from '../providers.js';
import { rotationStatusOf } from '../rotation-steps.js';
import { isManaged, type StoredRegistration, type UnmanagedRegistration } from '../secrets.js';
import type { Ctx } from './context.js';

export interface PublisherDeps {
  rest: KubeRest;
  events: EventRecorder;
  mgmtSecrets: ManagementSecrets;
  appSecrets: AppSecrets;
}

export class Publisher {
  /** Fingerprint of the client metadata last published as in sync with the provider, per key. */
  private readonly metadataSeen = new Map<string, string>();

  constructor(private readonly d: PublisherDeps) {}

  forget(key: string): void {
    this.metadataSeen.delete(key);
  }

  /** The fingerprint of the client metadata last published for this key, if any. */
  publishedMetadata(key: string): string | undefined {
    return this.metadataSeen.get(key);
  }

  /** The application Secret for this registration (written only when it differs). */
  async ensureAppSecret(
    cr: OidcClient,
    reg: StoredRegistration | UnmanagedRegistration,
    provider: ResolvedProvider,
  ): Promise<'unchanged' | 'created' | 'updated'> {
    return this.d.appSecrets.ensure(cr, {
      clientId: reg.clientId,
      clientSecret: reg.clientSecret,
      endpoints: provider.endpoints,
    });
  }

  /** The end of every good path: the application Secret, Secrets left under old names, the status. */
  async publish(
    c: Ctx,
    reg: StoredRegistration | UnmanagedRegistration,
    conditions: ExtraCondition[],
    remote?: RemoteObservation,
  ): Promise<Outcome> {
    const { cr, status } = c.obs;
    const provider = await c.provider();
    // A registration read from the Secret is checked before anything uses it (status included).
    if (isManaged(reg)) provider.client.assertManageable(reg.registrationClientUri, reg.clientId);
    const change = await this.ensureAppSecret(cr, reg, provider);
    this.metadataSeen.set(c.key, c.obs.desiredHash);
    const previousApp = status.secretName;
    if (previousApp && previousApp !== appSecretName(cr)) {
      // spec.secretName was changed: the new Secret exists now, the old one goes.
      await this.d.appSecrets.deleteIfOwned(cr, previousApp);
      this.d.events.record(
        cr,
        'Normal',
        'SecretMoved',
        `application Secret moved from ${previousApp} to ${appSecretName(cr)}`,
      );
    } else if (
      status.clientId === reg.clientId &&
      // A new spec (e.g. its secretTemplate) rewrites the Secret by design: that is no restore.
      status.observedGeneration === cr.metadata.generation &&
      (change === 'updated' || (change === 'created' && readyTrue(status)))
    ) {
      // A Secret that was there before and had to be rewritten or recreated was restored (a new
      // client_id is a switch to a new registration, reported as ReRegistered instead).
      this.d.events.record(
        cr,
        'Normal',
        'SecretRestored',
        `application Secret ${appSecretName(cr)} restored`,
      );
    }
    if (c.obs.former) await this.retireFormerManagementSecret(cr, c.obs.former.secret, c.obs.mgmtName);

    // An adopted client keeps saying so while it is the same client.
    const adopted = c.obs.mgmt?.metadata?.annotations?.[ANNOTATION_ADOPTED] === reg.clientId;
    // client_secret_expires_at belongs to one client: a new one starts without it until it is known.
    if (remote?.kind === 'found' && remote.clientId === reg.clientId) {
      if (remote.client.clientSecretExpiresAt !== undefined)
        status.clientSecretExpiresAt = remote.client.clientSecretExpiresAt;
    } else if (status.clientId !== reg.clientId) delete status.clientSecretExpiresAt;
    status.clientId = reg.clientId;
    status.rotation = rotationStatusOf(c.obs, reg.clientId);
    status.registrationClientUri = isManaged(reg) ? reg.registrationClientUri : undefined;
    status.secretName = appSecretName(cr);
    status.managementSecretName = c.obs.mgmtName;
    const ignored = status.ignoredFields ?? [];
    let message =
      ignored.length > 0
        ? `client ${reg.clientId} registered; the provider does not keep: ${ignored.join(', ')}`
        : `client ${reg.clientId} registered at ${provider.endpoints.issuer}`;
    if (!isManaged(reg)) message += ' (without RFC 7592 management: not updated or deleted by the operator)';
    return { kind: 'ready', reason: adopted ? Reason.Adopted : Reason.Registered, message, conditions };
  }

  /** The management Secret under the old spec.managementSecretName: release our finalizer, delete it. */
  private async retireFormerManagementSecret(cr: OidcClient, former: V1Secret, to: string): Promise<void> {
    const from = former.metadata?.name as string;
    await this.d.mgmtSecrets.release(former);
    await this.d.rest.delete(secretPath(cr.metadata.namespace as string, from)).catch((error: unknown) => {
      if (!isKubeStatus(error, 404)) throw error;
    });
    this.d.events.record(cr, 'Normal', 'SecretMoved', `management Secret moved from ${from} to ${to}`);
  }
}

function readyTrue(status: OidcClientStatus): boolean {
  return findCondition(status.conditions, 'Ready')?.status === 'True';
}
