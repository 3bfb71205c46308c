// Benchmark helper (bench/op-logout.sh), not a test: node-oidc-provider alone on 127.0.0.1:PORT,
// signing with the test fixture key (kid rsa1, as examples/mint_hints.rs), one client rp-c whose
// post-logout URI is https://c.example.com/out, so the same hints the gateway benchmark uses are
// valid here and node-oidc-provider's own end_session can be measured.
//
// Usage: node e2e/bench/op-end-session.js PORT PEM_FILE
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [port, pemPath] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const jwk = { ...createPrivateKey(readFileSync(pemPath, 'utf8')).export({ format: 'jwk' }), kid: 'rsa1', alg: 'RS256', use: 'sig' };
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'rp-c',
    client_secret: 'bench-secret',
    redirect_uris: ['https://c.example.com/cb'],
    post_logout_redirect_uris: ['https://c.example.com/out'],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ['bench-cookie-signing-key-0123456789'], long: { sameSite: 'lax' } },
  features: { devInteractions: { enabled: false } },
});
createServer(provider.callback()).listen(Number(port), '127.0.0.1', () => console.log(`op ready ${issuer}`));
