// Scenario 1: RP-initiated single logout. The browser signs in to three RPs through the gateway
// (one login at node-oidc-provider, SSO for the others), logs out from rp1 with id_token_hint,
// post_logout_redirect_uri and state; every RP hears of it (front-channel in the browser,
// back-channel from the gateway), and the OP session is really gone (prompt=none answers
// login_required, even when the browser presents the old OP cookie again).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifactsDir } from '../lib/paths.js';
import { waitFor } from '../lib/proc.js';
import {
  assertBackchannel,
  assertScreenshot,
  assertFrontchannel,
  idTokenClaims,
  signInEverywhere,
  useStack,
  waitForPage,
} from './helpers.js';

const ctx = useStack('single-logout');
let opCookie; // the OP's session cookie as the browser held it before the logout

test('the browser signs in to rp1 at the OP login form (a wrong password first) and to rp2 and rp3 by single sign-on', async () => {
  await signInEverywhere(ctx, { screenshots: true, wrongFirst: true });
  const claims = ctx.stack.rps.map(idTokenClaims);
  assert.ok(claims.every((c) => c.iss === ctx.stack.issuer && c.sub === 'alice' && typeof c.sid === 'string'));
  // node-oidc-provider gives each client its own sid; the gateway must keep them apart.
  assert.equal(new Set(claims.map((c) => c.sid)).size, 3, `three different sids: ${claims.map((c) => c.sid)}`);
  const cookies = await ctx.page.cookies(ctx.stack.issuer);
  opCookie = cookies.find((c) => c.name === '_session');
  assert.ok(opCookie, `the browser holds the OP's _session cookie: ${cookies.map((c) => c.name)}`);
});

/** GET the userinfo endpoint (from discovery, through the gateway) with rp1's access token. */
async function userinfoStatus() {
  const doc = await (await fetch(`${ctx.stack.issuer}/.well-known/openid-configuration`)).json();
  const token = ctx.stack.rps[0].records.logins[0].accessToken;
  return (await fetch(doc.userinfo_endpoint, { headers: { authorization: `Bearer ${token}` } })).status;
}

test('over https: discovery names https URLs only, and the browser spoke HTTP/2 to the gateway', async () => {
  assert.ok(ctx.stack.tls, 'scripts/e2e runs the suite with its test CA (lib/tls.js)');
  assert.ok(ctx.stack.issuer.startsWith('https://'), ctx.stack.issuer);
  const doc = await (await fetch(`${ctx.stack.issuer}/.well-known/openid-configuration`)).json();
  const urls = Object.entries(doc).filter(([k, v]) => typeof v === 'string' && /^(issuer|.*_(endpoint|uri))$/.test(k));
  assert.ok(urls.length >= 6, `discovery's URLs: ${urls.map(([k]) => k)}`);
  for (const [k, v] of urls) assert.ok(v.startsWith(`${ctx.stack.issuer}/`) || v === ctx.stack.issuer, `${k}: ${v}`);
  // The gateway's access log names the version of each request: the sign-in went over h2 (ALPN).
  const log = readFileSync(join(artifactsDir(), 'single-logout-gateway.log'), 'utf8');
  const h2 = log.split('\n').filter((l) => l.includes('logout_gateway::access') && l.includes('http="2"'));
  assert.ok(h2.some((l) => l.includes('path=/auth')), `authorization requests over HTTP/2:\n${h2.slice(0, 5).join('\n')}`);
});

test('the access token is good at userinfo through the gateway before the logout', async () => {
  assert.equal(await userinfoStatus(), 200);
});

test('rp1 logs out with a hint: every iframe loads with iss and its RP\'s own sid, then rp1\'s post-logout page with the exact state (RPI-01, FCL-03, GW-03)', async () => {
  const { page, stack } = ctx;
  const [rp1] = stack.rps;
  await page.goto(`${rp1.origin}/`);
  const visitedFrom = ctx.visited.length;
  await page.click('#logout');
  await waitForPage(page, `${rp1.origin}/logged-out`);
  const [state] = rp1.records.logoutStates;
  assert.ok(state, 'rp1 sent a state');
  assert.equal(page.url(), `${rp1.origin}/logged-out?state=${state}`, 'exactly the registered URI plus the state rp1 sent');
  assert.equal(await page.$eval('#state', (e) => e.textContent), state);
  assertFrontchannel(stack.rps, stack.issuer);
  // The browser went through the gateway's front-channel page, not a direct redirect.
  const path = ctx.visited.slice(visitedFrom);
  assert.ok(path.some((u) => u.startsWith(`${stack.issuer}/session/end?`)), `via the gateway's end_session: ${path.join(' ')}`);
  await assertScreenshot(page, 'rp1-post-logout-page');
});

test('back-channel: each RP received a logout token that verifies against the jwks_uri, with its own sid and the subject (BCL, GW-04)', async () => {
  await assertBackchannel(ctx.stack.rps, ctx.stack.issuer);
});

test('prompt=none afterwards answers login_required at each RP\'s redirect_uri (GW-02)', async () => {
  const { page, stack } = ctx;
  for (const rp of stack.rps) {
    await page.goto(`${rp.origin}/login?prompt=none`);
    await waitFor(`${rp.clientId} to get the OP's answer`, 10_000, () => rp.records.authErrors.length > 0);
    assert.deepEqual(rp.records.authErrors.map((e) => [e.error, e.prompt, e.iss]), [['login_required', 'none', stack.issuer]]);
    assert.equal(await page.$eval('#status', (e) => e.dataset.state), 'signed-out');
  }
});

test('the old OP cookie, put back into the browser, is refused at the edge: still login_required (GW-02)', async () => {
  const { page, stack } = ctx;
  const [rp1] = stack.rps;
  assert.ok(opCookie, 'the first test captured the cookie');
  await page.setCookie({ name: opCookie.name, value: opCookie.value, domain: opCookie.domain, path: opCookie.path, httpOnly: true });
  const before = rp1.records.authErrors.length;
  await page.goto(`${rp1.origin}/login?prompt=none`);
  await waitFor('rp1 to get the OP\'s answer', 10_000, () => rp1.records.authErrors.length > before);
  assert.equal(rp1.records.authErrors.at(-1).error, 'login_required');
  assert.equal(rp1.records.logins.length, 1, 'no new sign-in happened');
});

test('the ended session\'s access token is refused at userinfo', async () => {
  assert.equal(await userinfoStatus(), 401);
});
