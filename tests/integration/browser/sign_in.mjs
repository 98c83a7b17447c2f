// Signs in through gatewayd's browser_login with Debian's headless Chromium, as a person would: open a page of the
// app, get sent to the OpenID provider, fill its login form and consent, come back, and use the app. Prints one
// JSON object with what the browser saw; the Python test (test_browser_chromium.py) asserts on it and on what the
// upstream received.
//
// Environment: START_URL (a page behind the gateway), LOGIN (a user of provider.mjs), CHROMIUM (default
// /usr/bin/chromium). Every wait is bounded; the whole run gives up after 60 s.
import { chromium } from 'playwright-core';

const START_URL = process.env.START_URL;
const LOGIN = process.env.LOGIN || 'alice';
const gateway = new URL(START_URL).origin;
const deadline = setTimeout(() => { console.error('sign_in.mjs: gave up after 60 s'); process.exit(2); }, 60000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // No sandbox: the tests run as root. The rest keeps Chromium from calling out or needing a GPU.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
         '--disable-component-update', '--no-first-run', '--disable-sync'],
});
const out = { hops: [] };
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('response', (r) => { if (r.request().isNavigationRequest()) out.hops.push(`${r.status()} ${r.url()}`); });

  await page.goto(START_URL);
  out.login_page = page.url();
  await page.fill('input[name="login"]', LOGIN);
  await page.fill('input[name="password"]', 'any');
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  if (page.url().includes('/interaction/')) {  // the consent form
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  }
  await page.waitForURL((u) => u.origin === gateway, { timeout: 15000 });
  out.final_url = page.url();
  out.page = JSON.parse(await page.textContent('body'));
  out.cookies = (await context.cookies()).filter((c) => c.name.startsWith('obsgw'))
    .map(({ name, httpOnly, sameSite, path }) => ({ name, httpOnly, sameSite, path }));
  out.document_cookie = await page.evaluate(() => document.cookie);
  // A script of the app calling its API with the session (same origin, cookies sent).
  out.api_status = await page.evaluate(async () => (await fetch('/api/user', { headers: { Accept: 'application/json' } })).status);
  const signed_in_hops = out.hops.length;
  await page.goto(`${gateway}/oauth2/sign_out`);
  out.sign_out_hops = out.hops.slice(signed_in_hops);
  out.after_sign_out = page.url();
} finally {
  await browser.close();
  clearTimeout(deadline);
}
console.log(JSON.stringify(out));
