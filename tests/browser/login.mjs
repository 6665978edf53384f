// The browser test: Debian's headless Chromium, driven by playwright-core, clicks through the
// development provider's login on the real page, checks the logged-in page, a phone-sized
// viewport and logout, and that the page never asks anything of another host.
//
//   node tests/browser/login.mjs http://127.0.0.1:PORT
//
// Started by tests/api/browser.rs against an app it spawns. Exit 0 on success, 1 with a message.
// LOGINWITH_SCREENSHOT=/path/shot.png saves the logged-in page there, and beside it
// shot-start.png, shot-provider.png, shot-phone.png (375 px wide) and, on failure, shot-failure.png.
// Never downloads a browser: it runs /usr/bin/chromium (`bash tests/browser/install.sh`).

import {
  check,
  clickForPost,
  Failure,
  foreignRequests,
  freshContext,
  launchChromium,
  log,
  pageText,
  PHONE,
  shotPath,
  startWatchdog,
} from './common.mjs';

const SESSION_COOKIE = 'loginwith_session';

async function main() {
  const base = process.argv[2];
  if (!base) {
    console.error('usage: node tests/browser/login.mjs BASE_URL   (for example http://127.0.0.1:5000)');
    return 1;
  }
  const baseUrl = new URL(base);
  const home = new URL('/', baseUrl).href;
  const screenshot = process.env.LOGINWITH_SCREENSHOT || '';

  const watchdog = startWatchdog();

  let browser;
  let page;
  const requests = [];
  const posts = []; // POST requests, with their Origin header shown when something fails
  const consoleErrors = [];
  const pageErrors = [];
  try {
    browser = await launchChromium();

    const context = await freshContext(browser);
    context.on('request', (request) => {
      requests.push(request.url());
      if (request.method() === 'POST') posts.push(request);
    });
    page = await context.newPage();
    page.on('console', (message) => {
      // /api/me's 401 after logout is expected; anything else is worth a note.
      if (message.type() === 'error' && !(message.location().url || '').endsWith('/api/me')) consoleErrors.push(`${message.text()} (${message.location().url || page.url()})`);
    });
    page.on('pageerror', (error) => pageErrors.push(String(error)));

    // 1. The start page offers the development provider.
    const response = await page.goto(home, { waitUntil: 'load' });
    check(response && response.ok(), `GET ${home} answered ${response ? response.status() : 'nothing'}`);
    const loginLink = page.getByRole('link', { name: 'Login with Dev' });
    await loginLink.waitFor({ state: 'visible' });
    log(`start page: "${await page.title()}" shows "Login with Dev"`);
    if (screenshot) await page.screenshot({ path: shotPath(screenshot, 'start'), fullPage: true });

    // 2. Login with Dev -> the development provider's page.
    await loginLink.click();
    await page.waitForURL((url) => url.pathname === '/dev-provider/authorize', { waitUntil: 'load' });
    const devOnly = page.getByText('for development only');
    await devOnly.first().waitFor({ state: 'visible' });
    check(await devOnly.first().isVisible(), 'the development provider page must say "for development only"');
    log('dev provider page says "for development only"');
    if (screenshot) await page.screenshot({ path: shotPath(screenshot, 'provider'), fullPage: true });

    // 3. Type a new address, mark it verified, Allow.
    const email = `browser-${Date.now()}@example.com`;
    await page.locator('#email').fill(email);
    await page.getByLabel('Mark this address as verified').check();
    const consent = await clickForPost(page, page.locator('button[name="decision"][value="allow"]'), '/dev-provider/authorize');
    check(consent.status() === 303, `Allow: POST /dev-provider/authorize answered ${consent.status()}, expected 303 back to the app`);
    await page.waitForURL((url) => url.origin === baseUrl.origin && url.pathname === '/', { waitUntil: 'load' });
    log(`back at ${page.url()}`);

    // 4. The logged-in page.
    const shownEmail = page.locator('#user-email');
    await shownEmail.waitFor({ state: 'visible' });
    const shownEmailText = (await shownEmail.textContent())?.trim();
    check(shownEmailText === email, `#user-email shows "${shownEmailText}", expected "${email}"`);
    const username = (await page.locator('#user-username').textContent())?.trim() ?? '';
    check(username.length > 0, '#user-username is empty');
    check(await page.locator('#logout').isVisible(), 'the logged-in page has no visible #logout button');
    log(`logged in: email ${shownEmailText}, username ${username}`);

    // 5. The session cookie cannot be read by scripts nor sent by other sites' forms.
    const cookies = await context.cookies(home);
    const session = cookies.find((c) => c.name === SESSION_COOKIE);
    check(session, `no ${SESSION_COOKIE} cookie after login (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'})`);
    check(session.httpOnly === true, `${SESSION_COOKIE} is not HttpOnly`);
    check(session.sameSite === 'Lax', `${SESSION_COOKIE} has SameSite=${session.sameSite}, expected Lax`);
    log(`${SESSION_COOKIE}: HttpOnly, SameSite=Lax`);
    if (screenshot) {
      await page.screenshot({ path: screenshot, fullPage: true });
      log(`screenshot: ${screenshot}`);
    }

    // 6. On a phone: no horizontal scrolling.
    await page.setViewportSize(PHONE);
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      client: document.documentElement.clientWidth,
    }));
    check(
      widths.scroll <= PHONE.width,
      `at ${PHONE.width}x${PHONE.height} the page is ${widths.scroll} px wide: it scrolls sideways on a phone`,
    );
    log(`phone ${PHONE.width}x${PHONE.height}: page width ${widths.scroll} px, no sideways scrolling`);
    if (screenshot) {
      await page.screenshot({ path: shotPath(screenshot, 'phone'), fullPage: true });
      log(`screenshot: ${shotPath(screenshot, 'phone')}`);
    }

    // 7. Log out: the login link is back, the account is gone, /api/me says 401.
    const logout = await clickForPost(page, page.locator('#logout'), '/logout');
    if (logout.status() !== 303) {
      await page.waitForLoadState('load').catch(() => {});
      const origin = (await logout.request().allHeaders().catch(() => ({}))).origin ?? 'none';
      throw new Failure(
        `Log out: POST /logout answered ${logout.status()}, expected 303 to /; the browser sent ` +
          `Origin: ${origin}; the page says: ${await pageText(page)}`,
      );
    }
    await page.waitForURL((url) => url.origin === baseUrl.origin && url.pathname === '/', { waitUntil: 'load' });
    await page.getByRole('link', { name: 'Login with Dev' }).waitFor({ state: 'visible' });
    const stillShown = await page.locator('#user-email').count();
    check(stillShown === 0, 'after logout the page still shows #user-email');
    // The pages' Content-Security-Policy (default-src 'none': no connect-src) forbids fetch() from
    // them, so the browser asks /api/me by opening it, with the same cookies.
    const meResponse = await page.goto(new URL('/api/me', baseUrl).href);
    const me = { status: meResponse ? meResponse.status() : 0, body: meResponse ? await meResponse.text() : '' };
    check(me.status === 401, `after logout /api/me answered ${me.status}: ${me.body}`);
    check(/"unauthenticated"/.test(me.body), `after logout /api/me says ${me.body}`);
    log('logged out: "Login with Dev" is back, /api/me answers 401');

    // 8. Self-contained: every request went to the app itself (no CDN, works offline).
    const foreign = foreignRequests(requests, baseUrl);
    check(foreign.length === 0, `the page requested other hosts:\n  ${foreign.join('\n  ')}`);
    log(`${requests.length} requests, all to ${baseUrl.host}`);

    check(pageErrors.length === 0, `script errors on the page:\n  ${pageErrors.join('\n  ')}`);
    if (consoleErrors.length > 0) {
      log(`note: console errors (not failing the test):\n  ${consoleErrors.join('\n  ')}`);
    }

    console.log('browser test passed');
    return 0;
  } catch (error) {
    const why = error instanceof Failure ? error.message : error && error.stack ? error.stack : String(error);
    console.error(`browser test FAILED: ${why}`);
    if (page) {
      try {
        console.error(`  at page ${page.url()}`);
        console.error(`  page text: ${await pageText(page)}`);
        if (screenshot) {
          await page.screenshot({ path: shotPath(screenshot, 'failure'), timeout: 5_000 });
        }
      } catch {
        // the page may be gone; the message above is what matters
      }
    }
    if (requests.length > 0) console.error(`  requests: ${requests.join(' ')}`);
    for (const post of posts) {
      const headers = await post.allHeaders().catch(() => ({}));
      console.error(`  form post: POST ${post.url()} (Origin: ${headers.origin ?? 'none'})`);
    }
    return 1;
  } finally {
    if (browser) {
      await browser.close().catch(() => {});
    }
    clearTimeout(watchdog);
  }
}

process.exitCode = await main();
