// Drives node A's dashboard in headless Chromium (Debian's /usr/bin/chromium)
// while node B writes: run by tests/cluster/dashboard_browser.py, which starts
// the nodes and passes what it set up as one JSON argument:
//   {urlA, urlB, nodeB, deviceB, conflict, screenshot, timeoutMs}
// Prints one line per step; exits non-zero on the first failure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const t0 = Date.now();
const step = (text) => console.log(`[browser ${((Date.now() - t0) / 1000).toFixed(2)} s] ${text}`);
const attached = { state: 'attached', timeout: cfg.timeoutMs };

// A write on B through B's own HTTP API, as a script of the user's would do it.
async function callOnB(method, arg) {
  const session = await (await fetch(cfg.urlB + '/api/session')).json();
  const res = await fetch(cfg.urlB + '/api/call', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Replog-CSRF': session.csrf },
    body: JSON.stringify({ method, arg }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`call on B: ${res.status} ${body.error}`);
  return body.id;
}

async function run(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(cfg.urlA);
  await page.waitForSelector('#live.on', attached);
  step('the dashboard of A is open and its event stream is live');

  const peerRow = `#peers tbody tr[data-node-id="${cfg.nodeB}"]`;
  await page.waitForFunction((sel) => document.querySelector(sel)?.querySelector('.sync')?.textContent === 'in sync',
    peerRow, { timeout: cfg.timeoutMs });
  const how = await page.textContent(`${peerRow} .how`);
  const rowText = await page.textContent(peerRow);
  if (how !== 'static') throw new Error(`B was found by "${how}", expected static`);
  if (!rowText.includes(cfg.deviceB)) throw new Error(`B's row lacks its device key ${cfg.deviceB}: ${rowText}`);
  step(`B is listed as a peer: found by ${how}, in sync, device key shown`);

  const verified = await page.textContent(`#origins tr[data-origin="${cfg.nodeB}"] td:nth-child(3)`, attached);
  if (!/^#\d+$/.test(verified)) throw new Error(`B's origin shows no verified head: "${verified}"`);
  step(`B's origin is listed with its verified head (${verified})`);

  const card = `.conflict[data-update="${cfg.conflict}"]`;
  await page.waitForSelector(card, attached);
  const sides = await page.$$eval(`${card} .side`, (els) => els.map((e) => e.textContent));
  if (sides.length !== 2 || !sides[0].includes('from b') || !sides[1].includes('from a'))
    throw new Error(`the conflict does not show both updates side by side: ${JSON.stringify(sides)}`);
  step(`the conflict on ${cfg.conflict} shows B's skipped create beside A's create it ran into`);

  const color = await page.textContent('[data-path="Note.n1.color"] .type.enum', attached);
  const due = await page.getAttribute('[data-path="Note.n1.due"] time', 'datetime', attached);
  const type = await page.textContent('[data-path="Note.n1"] > summary .type.record', attached);
  if (color !== 'enum Color' || due !== '2026-12-24T18:00:00Z' || type !== 'Note')
    throw new Error(`the tree lost types: color "${color}", due "${due}", record "${type}"`);
  step('the state tree shows the record as a Note, its color as an enum of Color, its due as a time');

  const when = new Date().toISOString();
  const start = Date.now();
  const id = await callOnB('set', { path: 'live.when', value: { $time: when } });
  const committed = Date.now() - start;
  await page.waitForSelector(`#feed li[data-id="${id}"]`, attached);
  const inFeed = Date.now() - start;
  await page.waitForSelector('[data-path="live.when"] .type.time', attached);
  const inTree = Date.now() - start;
  step(`a call on B (${id}), committed on B after ${committed} ms, was in A's live feed after ${inFeed} ms ` +
       `and in its state tree, as a time, after ${inTree} ms`);
  if (inFeed > 1000 || inTree > 1000) throw new Error(`the call took more than a second to show (${inFeed} / ${inTree} ms)`);

  await page.fill(`${card} .followup-method`, 'update');
  await page.fill(`${card} .followup-arg`, '{"type": "Note", "id": "n1", "fields": {"text": "merged"}}');
  await page.click(`${card} button.resolve`);
  await page.waitForSelector(card, { state: 'detached', timeout: cfg.timeoutMs }).catch(async (e) => {
    throw new Error(`${e.message}; the card says: ${await page.textContent(`${card} .followup`).catch(() => '?')}`);
  });
  await page.waitForFunction(() => document.getElementById('conflict-count').textContent === '0', null,
    { timeout: cfg.timeoutMs });
  step('the conflict was resolved from the page: a follow-up update of the note, then resolve; none is left');

  // The header's count catches up with the node's before the picture is taken.
  const updates = (await (await fetch(cfg.urlA + 'api/status')).json()).updates;
  await page.waitForFunction((n) => document.getElementById('update-count').textContent === String(n), updates,
    { timeout: cfg.timeoutMs });
  await page.screenshot({ path: cfg.screenshot, fullPage: true });
  step(`screenshot: ${cfg.screenshot}`);
  if (errors.length) throw new Error(`the page threw: ${errors.join('; ')}`);
}

const profile = mkdtempSync(join(tmpdir(), 'replog-chromium-'));
let context;
let failed = false;
try {
  // launchPersistentContext passes --user-data-dir=profile (fresh) and --headless.
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
    timeout: cfg.timeoutMs,
  });
  const page = context.pages()[0] || await context.newPage();
  await run(page);
} catch (e) {
  failed = true;
  console.log(`FAIL: ${e.message}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
