// Drives the chat example in headless Chromium: two users, one on long-polling only and one
// upgrading to WebSocket; a refused nickname; acked messages; the typing indicator; a binary
// file. Usage: node chat.mjs <base url> <screenshot path>. Prints "OK" when every check held.
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
const executablePath = process.env.TSIO_CHROMIUM || '/usr/bin/chromium';
const fail = (msg) => { console.error('FAIL: ' + msg); process.exitCode = 1; throw new Error(msg); };
const check = (cond, msg) => { if (!cond) fail(msg); console.log('ok - ' + msg); };

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const timeout = 10000;
try {
  const ctx = await browser.newContext({ viewport: { width: 900, height: 600 } });
  const login = async (nick, pollingOnly) => {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => console.error(nick + ' page error: ' + e.message));
    await page.goto(base + '/');
    await page.fill('#nickname', nick);
    if (pollingOnly) await page.check('#polling');
    await page.click('#login-button');
    return page;
  };

  const alice = await login('alice', true);
  await alice.waitForSelector('#login', { state: 'hidden', timeout });
  const bob = await login('bob', false);
  await bob.waitForSelector('#login', { state: 'hidden', timeout });
  await alice.waitForFunction(() => document.querySelector('#users').textContent.includes('bob'), null, { timeout });
  check(true, 'both users logged in and see each other');

  // Transports: alice stays on polling, bob upgrades.
  await bob.waitForFunction(() => document.querySelector('#transport').textContent === 'via websocket', null, { timeout });
  check((await alice.textContent('#transport')) === 'via polling', 'alice is on long-polling');
  check(true, 'bob upgraded to websocket');

  // A taken nickname is refused with a visible reason.
  const eve = await login('alice', false);
  await eve.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0, null, { timeout });
  check((await eve.textContent('#login-error')).includes('taken'), 'a taken nickname is refused with its reason');
  const empty = await login('', false);
  await empty.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0, null, { timeout });
  check((await empty.textContent('#login-error')).includes('nickname'), 'an empty nickname is refused with its reason');
  await eve.close();
  await empty.close();

  // Typing indicator reaches the other user, and clears on send.
  await alice.type('#text', 'hello bob', { delay: 20 });
  await bob.waitForFunction(() => document.querySelector('#typing').textContent.includes('alice is typing'), null, { timeout });
  check(true, 'bob sees "alice is typing..."');

  // Messages with acks: alice's message is delivered and acknowledged.
  await alice.click('#send');
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages li.message')].some((li) => li.textContent.includes('hello bob')), null, { timeout });
  check(true, 'bob received the message');
  await alice.waitForFunction(() => document.querySelector('#messages li.mine')?.dataset.status === 'delivered', null, { timeout });
  check(true, "alice's message was acknowledged as delivered");
  await bob.waitForFunction(() => document.querySelector('#typing').textContent === '', null, { timeout });
  check(true, 'the typing indicator cleared on send');

  // Reply the other way, over the websocket.
  await bob.fill('#text', 'hi alice');
  await bob.click('#send');
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages li.message')].some((li) => li.textContent.includes('hi alice')), null, { timeout });
  check(true, 'alice received the reply');

  // Binary: bob sends a small PNG, alice receives it as binary with the same byte count.
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAKklEQVQ4y2NkYPhfz0ABYKJEMwMDAwMjI+P/UQcMBgcMBgcMBgcMBgcMBgcAx5UEH6mJpLQAAAAASUVORK5CYII=',
    'base64');
  await bob.setInputFiles('#file', { name: 'dot.png', mimeType: 'image/png', buffer: png });
  await alice.waitForFunction((n) => [...document.querySelectorAll('#messages li.file')].some((li) => Number(li.dataset.bytes) === n), png.length, { timeout });
  check(true, `alice received the ${png.length}-byte file as binary`);
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages li.mine')].some((li) => li.textContent.includes('dot.png') && li.dataset.status === 'delivered'), null, { timeout });
  check(true, "bob's file was acknowledged");

  // Rooms: bob moves to #random; a message there does not reach alice in #general.
  await bob.fill('#room-input', 'random');
  await bob.press('#room-input', 'Enter');
  await bob.waitForFunction(() => document.querySelector('.room.current')?.dataset.room === 'random', null, { timeout });
  await bob.fill('#text', 'only in random');
  await bob.click('#send');
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages li.mine')].pop()?.dataset.status === 'delivered', null, { timeout });
  await alice.waitForTimeout(300);
  const leaked = await alice.evaluate(() => document.querySelector('#messages').textContent.includes('only in random'));
  check(!leaked, 'a message in #random does not reach #general');

  if (shot) {
    const a = await alice.screenshot();
    const b = await bob.screenshot();
    const combo = await ctx.newPage();
    await combo.setViewportSize({ width: 1800, height: 600 });
    await combo.setContent(
      `<body style="margin:0;display:flex"><img src="data:image/png;base64,${a.toString('base64')}"><img src="data:image/png;base64,${b.toString('base64')}"></body>`);
    await combo.screenshot({ path: shot });
    console.log('screenshot ' + shot);
  }
  console.log('OK');
} catch (e) {
  console.error(e && e.stack || String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
