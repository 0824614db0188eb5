// The official Admin UI dashboard (@socket.io/admin-ui's ui/dist, served by the chat example
// under /admin-ui/) in headless Chromium, connected to our server: it must list the test
// clients' sockets, their rooms and the server. Two chat users connect with socket.io-client
// first (one on long-polling, one on WebSocket that moves to room "lobby").
// Then, in a fresh browser context, the dashboard's login form against a second server with
// basic auth (user admin, password changeit): a wrong password is refused, the right one in.
// Usage: node admin.mjs <base url> <screenshot path> <server id> <auth server url>.
// Prints "OK" when every check held.
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';

const [base, shot, serverId, authUrl] = process.argv.slice(2);
const executablePath = process.env.TSIO_CHROMIUM || '/usr/bin/chromium';
const fail = (msg) => { console.error('FAIL: ' + msg); process.exitCode = 1; throw new Error(msg); };
const check = (cond, msg) => { if (!cond) fail(msg); console.log('ok - ' + msg); };
const timeout = 15000;

const connected = (s) => new Promise((resolve, reject) => {
  s.once('connect', resolve);
  s.once('connect_error', reject);
});
const alice = io(base, { forceNew: true, transports: ['polling'], auth: { nickname: 'alice', token: 'a' } });
const bob = io(base, { forceNew: true, transports: ['websocket'], auth: { nickname: 'bob', token: 'b' } });
await Promise.all([connected(alice), connected(bob)]);
const joined = await bob.timeout(timeout).emitWithAck('join', 'lobby');
check(joined.room === 'lobby', 'bob moved to room lobby');

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // The page links fonts and icons from CDNs: no network here, so answer those at once.
  await ctx.route((url) => !url.href.startsWith(base), (route) => route.abort());
  // What the dashboard's connection form saves: the server URL (namespace /admin).
  await ctx.addInitScript((url) => {
    if (!localStorage.getItem('server_url')) localStorage.setItem('server_url', url);
  }, base);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error('page error: ' + e.message));
  const shows = (text) => page.waitForFunction((t) => document.body.innerText.includes(t), text, { timeout });

  await page.goto(base + '/admin-ui/#/sockets');
  await shows(alice.id);
  await shows(bob.id);
  check(true, 'the sockets page lists both clients');
  await shows('HTTP long-polling');
  await shows('WebSocket');
  check(true, 'with their transports');

  await page.goto(base + '/admin-ui/#/rooms');
  await shows('general');
  await shows('lobby');
  check(true, 'the rooms page lists the rooms general and lobby');

  await page.goto(base + `/admin-ui/#/n/%2F/sockets/${bob.id}`);
  await shows('lobby');
  check(true, "bob's page shows his room");

  await page.goto(base + '/admin-ui/#/servers');
  await shows(serverId);
  check(true, `the servers page lists ${serverId}`);
  await page.screenshot({ path: shot.replace(/\.png$/, '-servers.png'), fullPage: true });

  await page.goto(base + '/admin-ui/#/sockets');
  await shows(alice.id);
  await page.screenshot({ path: shot, fullPage: true });
  check(true, 'screenshot saved');

  // A socket that leaves disappears from the list.
  const aliceId = alice.id;
  alice.close();
  await page.waitForFunction((t) => !document.body.innerText.includes(t), aliceId, { timeout });
  check(true, 'a disconnected client leaves the list');

  // Login form, against the server with basic auth (another origin: CORS).
  const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx2.route((url) => !url.href.startsWith(base) && !url.href.startsWith(authUrl), (route) => route.abort());
  const login = await ctx2.newPage();
  login.on('pageerror', (e) => console.error('page error: ' + e.message));
  await login.goto(base + '/admin-ui/#/servers');
  const url = login.getByLabel('Server URL');
  await url.waitFor({ timeout });
  await url.fill(authUrl);
  await login.getByLabel('Username').fill('admin');
  await login.getByLabel('Password').fill('wrong');
  await login.getByRole('button', { name: /connect/i }).click();
  await login.waitForFunction(() => /invalid credentials/i.test(document.body.innerText), null, { timeout });
  check(true, 'a wrong password is refused with "Invalid credentials"');
  await login.getByLabel('Password').fill('changeit');
  await login.getByRole('button', { name: /connect/i }).click();
  await login.waitForFunction(() => document.body.innerText.includes('auth-test'), null, { timeout });
  check(true, 'the right password logs in: the servers page lists auth-test');
  await login.screenshot({ path: shot.replace(/\.png$/, '-login.png'), fullPage: true });
  console.log('OK');
} finally {
  await browser.close();
  bob.close();
  alice.close();
}
