// Scenario 2: a logout without any hint (a plain GET of /session/end, as from a bookmark). The
// gateway asks first; the person clicks its button; the browser's own session (found by the OP
// cookie) ends for every RP: all three front-channel iframes load with their own sids, all three
// RPs get a logout token, and no RP stays signed in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../lib/proc.js';
import { assertBackchannel, assertFrontchannel, assertScreenshot, clickAndWait, signInEverywhere, useStack } from './helpers.js';

const ctx = useStack('logout-without-hint');

test('the browser signs in to all three RPs', async () => {
  await signInEverywhere(ctx);
});

test('GET /session/end without parameters shows the gateway\'s confirmation page and logs out nobody yet (RPI-14, T9)', async () => {
  const { page, stack } = ctx;
  const response = await page.goto(`${stack.issuer}/session/end`);
  assert.equal(response.status(), 200);
  assert.equal(await page.$$eval('form[method="post"] button[type="submit"]', (b) => b.length), 1, 'one confirmation button');
  await assertScreenshot(page, 'gateway-confirmation-page');
  for (const rp of stack.rps) {
    assert.deepEqual(rp.records.frontchannel, [], `${rp.clientId} not notified before the click`);
  }
});

test('clicking the button logs out every RP: the logged-out page loads all three iframes with iss and each RP\'s sid', async () => {
  const { page, stack } = ctx;
  await clickAndWait(page, 'form[method="post"] button[type="submit"]');
  assert.equal(page.url(), `${stack.issuer}/session/end/confirm`, 'the gateway\'s own page, no redirect');
  // The page marks itself when every iframe loaded (templates/frontchannel.hbs).
  await page.waitForSelector('body[data-logout="loaded"]');
  assert.equal(await page.$$eval('iframe', (f) => f.length), 3);
  assertFrontchannel(stack.rps, stack.issuer);
  await assertScreenshot(page, 'gateway-logged-out-page');
});

test('every RP received a valid logout token for its own sid', async () => {
  await assertBackchannel(ctx.stack.rps, ctx.stack.issuer);
});

test('no RP is signed in any more, and silent sign-in answers login_required', async () => {
  const { page, stack } = ctx;
  for (const rp of stack.rps) {
    await page.goto(`${rp.origin}/`);
    assert.equal(await page.$eval('#status', (e) => e.dataset.state), 'signed-out', `${rp.clientId} dropped its local session`);
  }
  const [, rp2] = stack.rps;
  await page.goto(`${rp2.origin}/login?prompt=none`);
  await waitFor('rp2 to get the OP\'s answer', 10_000, () => rp2.records.authErrors.length > 0);
  assert.equal(rp2.records.authErrors[0].error, 'login_required');
});
