// The suite's test CA and the gateway's certificate (for 127.0.0.1 and localhost), made with
// OpenSSL. Every client trusts the CA: Node's fetch through NODE_EXTRA_CA_CERTS (read when Node
// starts, so scripts/e2e makes the files first: `node lib/tls.js <dir>`, then runs the tests with
// NODE_EXTRA_CA_CERTS=<dir>/ca.pem), Apache's mod_auth_openidc through OIDCCABundlePath, and
// Chromium through --ignore-certificate-errors-spki-list with the certificate's key hash.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const openssl = (args, input) => execFileSync('openssl', args, { input, stdio: ['pipe', 'pipe', 'pipe'] });

/** Make the CA and the server pair in `dir` (kept when they exist). */
export function makeTls(dir) {
  mkdirSync(dir, { recursive: true });
  const f = (n) => join(dir, n);
  if (!existsSync(f('server.pem'))) {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '7', '-subj', '/CN=logout-gateway e2e test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    openssl(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
    writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
    openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f('server.pem'), '-days', '7', '-extfile', f('server.ext')]);
  }
  return tlsIn(dir);
}

function tlsIn(dir) {
  const cert = join(dir, 'server.pem');
  const pub = openssl(['x509', '-in', cert, '-pubkey', '-noout']);
  const der = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
  const spki = openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
  return { dir, ca: join(dir, 'ca.pem'), cert, key: join(dir, 'server.key'), spki };
}

/**
 * The suite's TLS files: those next to NODE_EXTRA_CA_CERTS (so Node trusts them), else null
 * (then the stack runs over plain http, as the demo does).
 */
export function suiteTls() {
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  if (!ca || !existsSync(ca) || !existsSync(join(dirname(ca), 'server.pem'))) return null;
  if (readFileSync(ca, 'utf8') !== readFileSync(join(dirname(ca), 'ca.pem'), 'utf8')) return null;
  return tlsIn(dirname(ca));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t = makeTls(process.argv[2]);
  console.log(t.ca);
}
