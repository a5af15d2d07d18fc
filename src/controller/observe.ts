// The observation one decision needs (client-state.ts decides on it): the OidcClient's spec and
// access, its management Secret (also one under a former name), what the operator remembers of a
// deleted one, and whether a rotation is due. Read from the caches, plus a GET where the cache may lag.
import type { OidcClient, OidcClientStatus } from '../api/types.generated.js';
import { validateOidcClientSpec } from '../api/validate.js';
import type { KubeRest } from '../kube/rest.js';
import { parseProviderForms } from '../registration/metadata.js';
import type { ClientAccess } from './access.js';
import { desiredMetadata, metadataFingerprint } from './client-lifecycle.js';
import type { Observation, RemoteObservation } from './client-state.js';
import { Reason } from './conditions.js';
import type { ManagementSecrets } from './management-secrets.js';
import { ANNOTATION_PROVIDER_FORMS, clientKey, LABEL_ORPHANED, managementSecretName } from './names.js';
import { dueRotation } from './rotation.js';
import { rotationInput } from './rotation-steps.js';
import { isOwnedBy, readStored } from './secrets.js';

export interface ObserverDeps {
  rest: KubeRest;
  access: ClientAccess;
  mgmtSecrets: ManagementSecrets;
}

export class Observer {
  constructor(private readonly d: ObserverDeps) {}

  /** Everything one decision needs, read from the caches (plus a GET where the cache may lag). */
  async observe(
    cr: OidcClient,
    status: OidcClientStatus,
    o: { specChanged: boolean; resyncDue: boolean; remote: RemoteObservation | undefined },
  ): Promise<Observation> {
    const key = clientKey(cr);
    const issues = validateOidcClientSpec(cr.spec, { name: cr.metadata.name });
    const mgmtName = managementSecretName(cr);
    const desired = desiredMetadata(cr);
    const desiredHash = metadataFingerprint(desired);
    for (const f of status.ignoredFields ?? []) delete desired[f];
    const obs: Observation = {
      cr,
      status,
      mgmtName,
      mgmtOwned: false,
      mgmtClaimable: false,
      stored: { kind: 'empty' },
      remembered: false,
      namespaceTerminating: false,
      rejectedTokenInUse: false,
      specChanged: o.specChanged,
      resyncDue: o.resyncDue,
      desired,
      desiredHash,
    };
    if (issues.length > 0) {
      obs.specIssues = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      obs.specIssuesReason = issues.every((i) => i.path.startsWith('/spec/secretTemplate'))
        ? Reason.InvalidSecretTemplate
        : Reason.InvalidSpec;
      return obs;
    }
    const refused = this.d.access.check(cr);
    if (refused) {
      obs.refused = refused;
      return obs;
    }
    if (o.remote) obs.remote = o.remote;
    const mgmt = await this.d.mgmtSecrets.current(cr, mgmtName);
    if (mgmt) {
      obs.mgmt = mgmt;
      obs.mgmtOwned = isOwnedBy(mgmt, cr);
      obs.mgmtClaimable =
        !obs.mgmtOwned &&
        mgmt.metadata?.labels?.[LABEL_ORPHANED] === 'true' &&
        cr.spec.adoptFrom?.secretRef.name === mgmtName;
      if (obs.mgmtOwned) {
        obs.stored = readStored(mgmt);
        obs.providerForms = parseProviderForms(mgmt.metadata?.annotations?.[ANNOTATION_PROVIDER_FORMS]);
      }
      if (mgmt.metadata?.deletionTimestamp) obs.namespaceTerminating = await this.namespaceTerminating(cr);
    }
    const formerName = status.managementSecretName;
    if (formerName && formerName !== mgmtName) {
      const former = await this.d.mgmtSecrets.read(cr.metadata.namespace as string, formerName);
      if (former && isOwnedBy(former, cr))
        obs.former = { name: formerName, secret: former, stored: readStored(former) };
    }
    obs.remembered = !mgmt && this.d.mgmtSecrets.remembered(key) !== undefined;
    if (mgmt && obs.stored.kind === 'managed' && !obs.stored.previous) {
      const trigger = dueRotation(rotationInput(cr, status, mgmt, obs.stored.reg.clientId, o.remote)).trigger;
      if (trigger) obs.rotation = trigger;
    }
    if (obs.stored.kind === 'managed')
      obs.rejectedTokenInUse = this.d.mgmtSecrets.rejectedTokenInUse(mgmt, obs.stored.reg);
    return obs;
  }

  private async namespaceTerminating(cr: OidcClient): Promise<boolean> {
    try {
      const ns = await this.d.rest.get<{ status?: { phase?: string } }>(
        `/api/v1/namespaces/${cr.metadata.namespace}`,
      );
      return ns.status?.phase === 'Terminating';
    } catch {
      return false;
    }
  }
}
