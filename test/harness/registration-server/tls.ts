// A private CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI
// (node:crypto cannot issue X.509 certificates). EC P-256 keeps generation to a few milliseconds.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OPENSSL = process.env.OPENSSL ?? 'openssl';

export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

// Our own config so the system openssl.cnf cannot add or duplicate extensions.
const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = registration-server test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier = keyid
`;

export async function makeTlsMaterial(): Promise<TlsMaterial> {
  const dir = await mkdtemp(join(tmpdir(), 'registration-server-tls-'));
  const file = (name: string): string => join(dir, name);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  try {
    await writeFile(file('openssl.cnf'), CONFIG);
    const config = ['-config', file('openssl.cnf')];
    await run(OPENSSL, [
      'req',
      '-x509',
      ...config,
      '-extensions',
      'v3_ca',
      ...newKey,
      '-days',
      '2',
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.pem'),
    ]);
    await run(OPENSSL, [
      'req',
      '-new',
      ...config,
      ...newKey,
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      file('server.key'),
      '-out',
      file('server.csr'),
    ]);
    await run(OPENSSL, [
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-extfile',
      file('openssl.cnf'),
      '-extensions',
      'v3_server',
      '-out',
      file('server.pem'),
    ]);
    const [caPem, certPem, keyPem] = await Promise.all(
      ['ca.pem', 'server.pem', 'server.key'].map((name) => readFile(file(name), 'utf8')),
    );
    return { caPem: caPem!, certPem: certPem!, keyPem: keyPem! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
