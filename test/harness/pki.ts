import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runToolOrThrow } from './exec.js';

const OPENSSL = '/usr/bin/openssl';

export interface Pki {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  /** RSA pair for ServiceAccount tokens: the apiserver signs TokenRequests with it. */
  saPublicKey: string;
  saPrivateKey: string;
}

// Short-lived: the certificates only need to outlive one test run (or a KEEP_CONTROL_PLANE session).
const DAYS = '7';

async function newKey(path: string): Promise<void> {
  // P-256 keys are generated instantly, unlike RSA; Kubernetes accepts ECDSA for TLS and client certs.
  await runToolOrThrow(OPENSSL, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    path,
  ]);
}

async function signedCert(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
  ca: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  await newKey(key);
  await writeFile(ext, `${extensions.join('\n')}\n`);
  await runToolOrThrow(OPENSSL, ['req', '-new', '-key', key, '-subj', subject, '-out', csr]);
  await runToolOrThrow(OPENSSL, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    // Random serials: two certificates from one CA must never share one.
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    DAYS,
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** Creates a throw-away CA, the apiserver serving cert, an admin client cert and the SA key pair. */
export async function createPki(dir: string): Promise<Pki> {
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  await newKey(caKey);
  await runToolOrThrow(OPENSSL, [
    'req',
    '-x509',
    '-new',
    '-key',
    caKey,
    '-subj',
    '/CN=control-plane-harness-ca',
    '-days',
    DAYS,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '-out',
    caCert,
  ]);
  const ca = { cert: caCert, key: caKey };

  const [serving, admin] = await Promise.all([
    signedCert(
      dir,
      'apiserver',
      '/CN=kube-apiserver',
      [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        // 10.0.0.1 is the `kubernetes` Service IP of --service-cluster-ip-range 10.0.0.0/24.
        'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      ],
      ca,
    ),
    signedCert(
      dir,
      'admin',
      // O=system:masters bypasses RBAC: the admin identity must work before any Role exists.
      '/O=system:masters/CN=admin',
      ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'],
      ca,
    ),
  ]);

  const sa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const saPublicKey = join(dir, 'sa.pub');
  const saPrivateKey = join(dir, 'sa.key');
  await writeFile(saPublicKey, sa.publicKey);
  await writeFile(saPrivateKey, sa.privateKey, { mode: 0o600 });

  return {
    caCert,
    caKey,
    servingCert: serving.cert,
    servingKey: serving.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saPublicKey,
    saPrivateKey,
  };
}
