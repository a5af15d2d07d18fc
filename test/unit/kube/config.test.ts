import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inCluster, KubeConfigError, loadKubeConnection } from '../../../src/kube/config.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('loadKubeConnection', () => {
  let dir: string;
  const env = { ...process.env };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubeconfig-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    process.env = { ...env };
  });

  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads the current context of a YAML kubeconfig: server, namespace, embedded certificates', async () => {
    const path = write(
      'config',
      `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster: {server: https://other:6443}
- name: c
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: ${b64('CA')}
    tls-server-name: kubernetes
users:
- name: u
  user:
    client-certificate-data: ${b64('CERT')}
    client-key-data: ${b64('KEY')}
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: team}
current-context: ctx
`,
    );
    const conn = await loadKubeConnection(path);
    expect(conn.server).toBe('https://10.0.0.1:6443');
    expect(conn.namespace).toBe('team');
    const creds = await conn.credentials();
    expect(creds.authorization).toBeUndefined();
    expect(creds.tls.ca?.toString()).toBe('CA');
    expect(creds.tls.cert?.toString()).toBe('CERT');
    expect(creds.tls.key?.toString()).toBe('KEY');
    expect(creds.tls.servername).toBe('kubernetes');
    expect(creds.tls.rejectUnauthorized).toBe(true);
  });

  it('resolves relative file paths against the kubeconfig and merges $KUBECONFIG files first-wins', async () => {
    write('ca.crt', 'FILE-CA');
    write('token', 'file-token\n');
    const first = write(
      'a',
      `clusters: [{name: c, cluster: {server: 'https://a', certificate-authority: ca.crt}}]
users: [{name: u, user: {tokenFile: token}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`,
    );
    const second = write(
      'b',
      `clusters: [{name: c, cluster: {server: 'https://ignored'}}]
current-context: ignored
`,
    );
    process.env.KUBECONFIG = [join(dir, 'missing'), first, second].join(':');
    const conn = await loadKubeConnection();
    expect(conn.server).toBe('https://a');
    const creds = await conn.credentials();
    expect(creds.tls.ca?.toString()).toBe('FILE-CA');
    expect(creds.authorization).toBe('Bearer file-token');
  });

  it('sends a static token, or basic credentials, as the Authorization header', async () => {
    const token = write(
      'token.yaml',
      `clusters: [{name: c, cluster: {server: 'https://a', insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: abc}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`,
    );
    const creds = await (await loadKubeConnection(token)).credentials();
    expect(creds.authorization).toBe('Bearer abc');
    expect(creds.tls.rejectUnauthorized).toBe(false);
    const basic = write(
      'basic.yaml',
      `clusters: [{name: c, cluster: {server: 'https://a'}}]
users: [{name: u, user: {username: me, password: pw}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`,
    );
    expect((await (await loadKubeConnection(basic)).credentials()).authorization).toBe(
      `Basic ${b64('me:pw')}`,
    );
  });

  it('says clearly what is wrong with a broken kubeconfig', async () => {
    await expect(loadKubeConnection(join(dir, 'nope'))).rejects.toThrow(/cannot read kubeconfig/);
    const noCtx = write('noctx', 'clusters: []\n');
    await expect(loadKubeConnection(noCtx)).rejects.toThrow(/no current-context/);
    const badCtx = write('badctx', 'current-context: x\ncontexts: []\n');
    await expect(loadKubeConnection(badCtx)).rejects.toThrow(/context "x" not found/);
    const bad = write('bad', 'clusters: [\n');
    await expect(loadKubeConnection(bad)).rejects.toBeInstanceOf(KubeConfigError);
  });

  it('in a pod: the service account token is re-read, so a rotated token is picked up', async () => {
    write('ca.crt', 'SA-CA');
    write('namespace', 'operators');
    write('token', 'one');
    process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
    process.env.KUBERNETES_SERVICE_PORT = '443';
    const conn = inCluster(dir, 0);
    expect(conn.server).toBe('https://[fd00::1]:443');
    expect(conn.namespace).toBe('operators');
    expect((await conn.credentials()).authorization).toBe('Bearer one');
    write('token', 'two');
    await new Promise((r) => setTimeout(r, 5));
    const creds = await conn.credentials();
    expect(creds.authorization).toBe('Bearer two');
    expect(creds.tls.ca?.toString()).toBe('SA-CA');
  });

  it('takes a client-node KubeConfig as it is (tests build those)', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://k:6443', caData: b64('CA'), skipTLSVerify: false }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'ctx', cluster: 'c', user: 'u', namespace: 'ns' }],
      currentContext: 'ctx',
    });
    const conn = await loadKubeConnection(kc);
    expect(conn.server).toBe('https://k:6443');
    expect(conn.namespace).toBe('ns');
    const creds = await conn.credentials();
    expect(creds.authorization).toBe('Bearer t');
    expect(creds.tls.ca?.toString()).toBe('CA');
  });

  it('leaves exec plugins to client-node, loaded only then', async () => {
    const path = write(
      'exec.yaml',
      `clusters: [{name: c, cluster: {server: 'https://a'}}]
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${process.execPath}
      args: ['-e', 'console.log(JSON.stringify({apiVersion:"client.authentication.k8s.io/v1",kind:"ExecCredential",status:{token:"from-exec"}}))']
      interactiveMode: Never
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`,
    );
    const conn = await loadKubeConnection(path);
    expect((await conn.credentials()).authorization).toBe('Bearer from-exec');
  });
});
