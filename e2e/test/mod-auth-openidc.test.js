// Real RP software: four Apache virtual hosts with mod_auth_openidc (Debian's packages), each its
// own site (127.0.0.2-5), in front of node-oidc-provider behind the gateway. One logs out by
// front-channel only (`?logout=get`), two by back-channel only (`?logout=backchannel`), one by
// both. The browser signs in to all four (one login, SSO for the others), logs out from a
// back-channel one with mod_auth_openidc's own `?logout=<url>`, and afterwards no RP and no OP
// session lets it in: each protected page sends it back to the OP's login form. A mod_auth_openidc
// session outlives the OP's unless its RP is told, so the front-channel-only RP proves the
// iframe found its session by iss and sid, and the other back-channel-only RP proves its logout
// token verified against the gateway's published keys.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { artifactsDir } from '../lib/paths.js';
import { assertScreenshot, clickAndWait, promptNoneAt, useStack, userinfoStatusAt, waitForPage } from './helpers.js';

const ctx = useStack('mod-auth-openidc', {
  apache: [
    { clientId: 'apache-front', name: 'Apache (front-channel)', logout: 'front' },
    { clientId: 'apache-back', name: 'Apache (back-channel)', logout: 'back' },
    { clientId: 'apache-back-2', name: 'Apache (back-channel, 2)', logout: 'back' },
    { clientId: 'apache-both', name: 'Apache (both)', logout: 'both' },
  ],
  apacheLogPath: join(artifactsDir(), 'mod-auth-openidc-apache.log'),
});

const apache = () => ctx.stack.rps.filter((r) => r.kind === 'apache');
let opCookie; // the OP's session cookie before the logout
let accessToken; // the front-channel RP's access token, from mod_auth_openidc's info hook

/** Open `rp`'s protected page; resolves 'in' (served) or 'op-login' (sent to the OP's form). */
async function visit(rp) {
  const { page, stack } = ctx;
  await page.goto(rp.protectedUrl, { waitUntil: 'load' });
  if (page.url().startsWith(`${stack.issuer}/interaction/`)) return 'op-login';
  if (page.url() === rp.protectedUrl && (await page.$('#in'))) return 'in';
  return `elsewhere: ${page.url()} ${(await page.content()).slice(0, 300)}`;
}

test('the browser signs in to the first Apache RP at the OP and to the others by single sign-on', async () => {
  const { page, stack } = ctx;
  const [first, ...others] = apache();
  assert.equal(await visit(first), 'op-login');
  await page.type('#login', 'alice');
  await page.type('#password', 'wonderland');
  await clickAndWait(page, '#sign-in');
  await waitForPage(page, first.protectedUrl);
  assert.ok(await page.$('#in'), `signed in at ${first.clientId}: ${page.url()}`);
  for (const rp of others) {
    assert.equal(await visit(rp), 'in', `${rp.clientId} by SSO`);
  }
  opCookie = (await page.cookies(stack.issuer)).find((c) => c.name === '_session');
  assert.ok(opCookie, 'the browser holds the OP session cookie');
  const front = apache().find((r) => r.logout === 'front');
  await page.goto(`${front.redirectUri}?info=json`, { waitUntil: 'load' });
  accessToken = JSON.parse(await page.$eval('body', (b) => b.innerText)).access_token;
  assert.ok(accessToken, 'mod_auth_openidc holds an access token');
  assert.equal(await userinfoStatusAt(ctx.stack, accessToken), 200, 'good before the logout');
  // The gateway learned the session from the token responses it proxied.
  const m = await (await fetch(`${stack.gateway.admin}/metrics`)).text();
  assert.match(m, /logout_gateway_learned_total\{kind="session"\} [4-9]/, 'four sign-ins learned');
});

test('mod_auth_openidc\'s own logout ends every RP: front-channel iframes find sessions by iss and sid, back-channel tokens verify', async () => {
  const { page } = ctx;
  // The back-channel-only RP logs out: the front-channel-only one can only hear of it through
  // the gateway's iframe, the back-channel ones only through a logout token.
  const first = apache().find((r) => r.logout === 'back');
  await page.goto(first.logoutUrl, { waitUntil: 'load' });
  // Through the gateway's front-channel page (two front-channel RPs) to the first RP's page.
  await waitForPage(page, first.loggedOutUrl, 20_000);
  assert.ok(await page.$('#out'), page.url());
  await assertScreenshot(page, 'mod-auth-openidc-logged-out');
  for (const rp of apache()) {
    assert.equal(await visit(rp), 'op-login', `${rp.clientId} no longer lets the browser in (nor does the OP)`);
  }
  const log = ctx.stack.apache.errorLog();
  assert.doesNotMatch(log, /could not find key|logout token.*(invalid|failed)/i, log);
});

test('afterwards the edge refuses what is left: prompt=none, the old OP cookie, the old access token (GW-02)', async () => {
  const { page } = ctx;
  const front = apache().find((r) => r.logout === 'front');
  assert.equal(await promptNoneAt(ctx, front), 'login_required');
  await page.setCookie({ name: opCookie.name, value: opCookie.value, domain: opCookie.domain, path: opCookie.path, httpOnly: true });
  assert.equal(await promptNoneAt(ctx, front), 'login_required', 'the old OP cookie, put back, is refused');
  assert.equal(await userinfoStatusAt(ctx.stack, accessToken), 401);
});

