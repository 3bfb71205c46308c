// A second real OP: Glewlwyd (Debian's package) behind the gateway, with its default settings,
// so its ID tokens carry no `sid`: the gateway keys the session by Glewlwyd's session cookie.
// Apache with mod_auth_openidc as the RPs (two by back-channel, one by both channels). The
// browser signs in through Glewlwyd's sign-in API (what its sign-in page calls) and its
// continue step, logs out from one RP with mod_auth_openidc's own `?logout=<url>`; afterwards
// no RP lets it in, the old Glewlwyd cookie is refused, and signing in again works (no loop).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { GLEWLWYD_USER } from '../lib/glewlwyd.js';
import { artifactsDir } from '../lib/paths.js';
import { assertScreenshot, promptNoneAt, useStack, userinfoStatusAt, waitForPage } from './helpers.js';

const ctx = useStack('glewlwyd', {
  op: 'glewlwyd',
  apache: [
    { clientId: 'glw-back', name: 'Apache (back-channel)', logout: 'back' },
    { clientId: 'glw-back-2', name: 'Apache (back-channel, 2)', logout: 'back' },
    { clientId: 'glw-both', name: 'Apache (both)', logout: 'both' },
  ],
  apacheLogPath: join(artifactsDir(), 'glewlwyd-apache.log'),
  opLogPath: join(artifactsDir(), 'glewlwyd-op.log'),
});

let glwCookie; // Glewlwyd's session cookie before the logout
let accessToken; // an RP's access token (mod_auth_openidc's info hook), before the logout

/**
 * Open `rp`'s protected page. Glewlwyd sends every authorization request to its sign-in page
 * first; there the browser does what that page does: sign in (when `password`), grant the
 * client `openid`, and continue. Resolves 'in', or where it ended.
 */
async function signInAt(rp, { password = false } = {}) {
  const { page, stack } = ctx;
  await page.goto(rp.protectedUrl, { waitUntil: 'load' });
  if (page.url() === rp.protectedUrl && (await page.$('#in'))) return 'in (no sign-in page)';
  const at = new URL(page.url());
  assert.equal(
    `${at.origin}${at.pathname}`,
    `${stack.origin}/login.html`,
    `Glewlwyd's sign-in page, through the gateway: ${page.url()} ${ctx.visited.slice(-4).join(' ')}\n${stack.apache.errorLog().slice(-1500)}`,
  );
  const callback = at.searchParams.get('callback_url');
  const statuses = await page.evaluate(
    async ({ user, clientId, signIn }) => {
      const out = [];
      const json = { 'content-type': 'application/json' };
      if (signIn) out.push((await fetch('/api/auth/', { method: 'POST', headers: json, body: JSON.stringify(user) })).status);
      out.push((await fetch(`/api/auth/grant/${clientId}`, { method: 'PUT', headers: json, body: JSON.stringify({ scope: 'openid' }) })).status);
      return out;
    },
    { user: GLEWLWYD_USER, clientId: rp.clientId, signIn: password },
  );
  assert.ok(statuses.every((s) => s === 200), `sign-in API: ${statuses}`);
  await page.goto(`${callback}&g_continue`, { waitUntil: 'load' });
  if (page.url() === rp.protectedUrl && (await page.$('#in'))) return 'in';
  return page.url();
}

/** Open `rp`'s protected page without signing in: 'in', or 'sign-in' (sent to Glewlwyd's page). */
async function visit(rp) {
  const { page, stack } = ctx;
  await page.goto(rp.protectedUrl, { waitUntil: 'load' });
  if (page.url().startsWith(`${stack.origin}/login.html`)) return 'sign-in';
  if (page.url() === rp.protectedUrl && (await page.$('#in'))) return 'in';
  return page.url();
}

const rps = () => ctx.stack.rps;

test('the browser signs in at Glewlwyd once and to every RP with that session', async () => {
  const { page, stack } = ctx;
  const [first, ...others] = rps();
  assert.equal(await signInAt(first, { password: true }), 'in');
  for (const rp of others) assert.equal(await signInAt(rp), 'in', rp.clientId);
  glwCookie = (await page.cookies(stack.origin)).find((c) => c.name === 'GLEWLWYD2_SESSION_ID');
  assert.ok(glwCookie, 'the browser holds Glewlwyd\'s session cookie');
  await page.goto(`${rps()[1].redirectUri}?info=json`, { waitUntil: 'load' });
  accessToken = JSON.parse(await page.$eval('body', (b) => b.innerText)).access_token;
  assert.equal(await userinfoStatusAt(ctx.stack, accessToken), 200, 'the access token is good before the logout');
  const m = await (await fetch(`${stack.gateway.admin}/metrics`)).text();
  assert.match(m, /logout_gateway_id_tokens_without_sid_total\{seen="learned"\} [3-9]/, 'ID tokens without sid, learned');
});

test('logging out from one RP ends every RP\'s session: logout tokens name the subject only', async () => {
  const { page, stack } = ctx;
  const first = rps()[0];
  await page.goto(first.logoutUrl, { waitUntil: 'load' });
  await waitForPage(page, first.loggedOutUrl, 20_000);
  await assertScreenshot(page, 'glewlwyd-logged-out');
  const m = await (await fetch(`${stack.gateway.admin}/metrics`)).text();
  assert.match(m, /logout_gateway_id_tokens_without_sid_total\{seen="hint"\} 1/, 'a hint without sid');
  assert.match(m, /logout_gateway_logouts_total\{outcome="redirect"\} 1/, 'logged out at once, no confirmation');
  for (const rp of rps()) assert.equal(await visit(rp), 'sign-in', `${rp.clientId} no longer lets the browser in`);
});

test('the old Glewlwyd cookie is refused, and signing in again gives a new session (no loop)', async () => {
  const { page, stack } = ctx;
  assert.equal(await userinfoStatusAt(ctx.stack, accessToken), 401, 'the old access token is refused');
  await page.setCookie({ ...glwCookie });
  // Glewlwyd answers prompt=none without a session so: the old cookie never reached it.
  assert.match(await promptNoneAt(ctx, rps()[1]), /^(interaction_required|login_required)$/);
  assert.equal(await visit(rps()[1]), 'sign-in');
  // Glewlwyd's own check of the session, through the gateway: the old cookie is stripped.
  const check = await page.evaluate(async () => (await fetch('/api/auth/scheme/?scope=openid')).json());
  assert.notEqual(check?.openid?.password_authenticated, true, JSON.stringify(check));
  assert.equal(await signInAt(rps()[1], { password: true }), 'in');
  const fresh = (await page.cookies(stack.origin)).find((c) => c.name === 'GLEWLWYD2_SESSION_ID');
  assert.notEqual(fresh?.value, glwCookie.value, 'a new Glewlwyd session');
});
