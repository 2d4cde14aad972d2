import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { serve } from '@hono/node-server';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeProfiles } from '../../analytics/index.js';
import { createApp } from '../../api/index.js';
import { EventLog } from '../../core/index.js';
import { findBubblewrap } from '../../tasks/index.js';
import { buildDashboardLog, type DashboardLog, DEEP_STEP } from '../support/dashboard-log.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const skipReason = `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the dashboard's browser tests`;
if (!hasChromium) console.warn(`skipping the dashboard's browser tests: ${skipReason}`);

/*
 * The dashboard in Debian's Chromium, against the real app served over HTTP with a token, over a log built by
 * `buildDashboardLog`. Code that runs in the page is given as text: the project compiles without the DOM's types, and
 * the test runner would rewrite a dynamic import written here.
 */
const TOKEN = 'dashboard-test-token';
const hasBubblewrap = findBubblewrap() !== undefined;
/** Set to a folder to keep the screenshots (they are checked either way). */
const screenshotFolder = process.env.SELFHARNESS_DASHBOARD_SCREENSHOTS;

/**
 * The distinct colours of a PNG (8-bit RGB or RGBA, not interlaced, as Chromium writes them): a blank page has one.
 * Decoded here with zlib and the five PNG row filters, so the check needs no image library.
 */
function distinctColours(png: Buffer): number {
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('ascii', offset + 4, offset + 8);
    const body = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const colourType = body[9];
      if (body[8] !== 8 || body[12] !== 0 || (colourType !== 2 && colourType !== 6))
        throw new Error(
          `unexpected PNG format: bit depth ${body[8]}, colour type ${colourType}, interlace ${body[12]}`,
        );
      channels = colourType === 6 ? 4 : 3;
    } else if (type === 'IDAT') data.push(body);
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  let previous = Buffer.alloc(stride);
  const colours = new Set<number>();
  for (let row = 0; row < height; row++) {
    const start = row * (stride + 1);
    const filter = raw[start];
    const line = Buffer.from(raw.subarray(start + 1, start + 1 + stride));
    for (let index = 0; index < stride; index++) {
      const left = index >= channels ? line[index - channels]! : 0;
      const up = previous[index]!;
      const upLeft = index >= channels ? previous[index - channels]! : 0;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) {
        const estimate = left + up - upLeft;
        const [toLeft, toUp, toUpLeft] = [estimate - left, estimate - up, estimate - upLeft].map(Math.abs) as [
          number,
          number,
          number,
        ];
        predictor = toLeft <= toUp && toLeft <= toUpLeft ? left : toUp <= toUpLeft ? up : upLeft;
      }
      line[index] = (line[index]! + predictor) & 0xff;
    }
    for (let pixel = 0; pixel < stride; pixel += channels)
      colours.add((line[pixel]! << 16) | (line[pixel + 1]! << 8) | line[pixel + 2]!);
    previous = line;
  }
  return colours.size;
}

describe.skipIf(!hasChromium)(`the dashboard in Chromium (${hasChromium ? CHROMIUM : skipReason})`, () => {
  let folder: string;
  let log: EventLog;
  let fixture: DashboardLog;
  let server: ReturnType<typeof serve>;
  let address: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'selfharness-dashboard-'));
    log = await EventLog.open(join(folder, 'log.duckdb'));
    fixture = await buildDashboardLog(log);
    const app = createApp({ log, token: TOKEN });
    const [port, launched] = await Promise.all([
      new Promise<number>((resolvePort) => {
        server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) =>
          resolvePort(info.port),
        );
      }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }),
    ]);
    address = `http://127.0.0.1:${port}`;
    browser = launched;
    if (screenshotFolder) mkdirSync(screenshotFolder, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolveClose) => (server ? server.close(resolveClose) : resolveClose(undefined)));
    log?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${address}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...init.headers },
    });

  /** A fresh tab (its own session storage), with the token already entered unless `withToken` is false. */
  async function openPage(hash: string, options: { withToken?: boolean; height?: number } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: options.height ?? 860 } });
    contexts.push(context);
    if (options.withToken !== false) {
      await context.addInitScript({
        content: `sessionStorage.setItem('selfharness-token', ${JSON.stringify(TOKEN)});`,
      });
    }
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      // Refused requests (401, 400, 404) are logged by the browser; the views show them, and the tests check that.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
        errors.push(message.text());
    });
    (page as Page & { errors: string[] }).errors = errors;
    await page.goto(`${address}/dashboard/${hash}`);
    return page;
  }

  async function ready(page: Page, view: string) {
    await page.locator(`main[data-ready="${view}"]`).waitFor();
  }

  async function screenshot(page: Page, name: string) {
    const png = await page.screenshot({ fullPage: false });
    if (screenshotFolder) writeFileSync(join(screenshotFolder, `${name}.png`), png);
    const colours = distinctColours(png);
    expect(colours, `${name} screenshot has ${colours} colours`).toBeGreaterThan(20);
    expect((page as Page & { errors: string[] }).errors, `${name}: errors in the page`).toEqual([]);
    // A value left out must not show up as the text "null" or "undefined".
    const strayTexts = await page.evaluate(`(() => {
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      const found = [];
      while (walker.nextNode()) if (/^(null|undefined)$/.test(walker.currentNode.nodeValue)) found.push(walker.currentNode.parentElement.outerHTML.slice(0, 200));
      return found;
    })()`);
    expect(strayTexts, `${name}: stray texts`).toEqual([]);
  }

  it('serves the page and its modules without a token, and the data only with one', async () => {
    const root = await fetch(`${address}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/dashboard/');
    const page = await fetch(`${address}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const script = await fetch(`${address}/dashboard/views/run.js`);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    const missing = await fetch(`${address}/dashboard/nothing.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { detail: string }).detail).toBe(
      'The dashboard has no file nothing.js: open /dashboard/ for the page.',
    );
    expect((await fetch(`${address}/v1/weaknesses`)).status).toBe(401);
  });

  it('asks for the token, refuses a wrong one, and shows the clusters with the right one', async () => {
    const page = await openPage('', { withToken: false });
    expect(page.url()).toBe(`${address}/dashboard/`);
    const form = page.locator('#token-form');
    await form.waitFor();
    await expect(form.locator('#token-reason').textContent()).resolves.toContain('This server needs a token');
    await screenshot(page, 'token-form');

    await form.locator('input[name=token]').fill('wrong-token');
    await form.locator('button[type=submit]').click();
    await page.locator('#token-reason', { hasText: 'The server refused this token' }).waitFor();
    expect(await form.isVisible()).toBe(true);

    await form.locator('input[name=token]').fill(TOKEN);
    await form.locator('button[type=submit]').click();
    await ready(page, 'weaknesses');
    expect(await form.isVisible()).toBe(false);
    const labels = await page.locator('.card.cluster h2.label').allTextContents();
    expect(labels).toEqual(fixture.mining.clusters.map((card) => card.label));
    expect(await page.evaluate("sessionStorage.getItem('selfharness-token')")).toBe(TOKEN);

    await page.reload();
    await ready(page, 'weaknesses');
    expect(await form.isVisible()).toBe(false);
    expect(await page.locator('.card.cluster').count()).toBe(fixture.mining.clusters.length);
  });

  it('goes from a cluster to its evidence and on to the cited step of the run, scrolled into view', async () => {
    const page = await openPage('#/weaknesses', { height: 700 });
    await ready(page, 'weaknesses');
    const numpy = fixture.mining.clusters.find((card) => card.label.startsWith('Missing dependency'))!;
    const card = page.locator(`.card.cluster[data-cluster="${numpy.clusterId}"]`);
    expect(await card.locator('.runs').textContent()).toBe(String(numpy.runCount));
    expect(await card.locator('.models').textContent()).toBe(numpy.models.join(', '));
    await screenshot(page, 'weaknesses');

    await card.locator('.card-link').click();
    await ready(page, 'weaknesses');
    const items = page.locator('.evidence-list .evidence-link');
    expect(await items.count()).toBe(numpy.evidence.length);
    const deep = page.locator('.evidence-link[data-run="deep-2"]');
    expect(await deep.locator('.reference').textContent()).toBe(`deep-2 · step ${DEEP_STEP}`);
    await screenshot(page, 'cluster-evidence');

    await deep.click();
    await ready(page, 'runs');
    expect(await page.locator('h1').textContent()).toContain('deep-2');
    expect(await page.locator('.step').count()).toBe(DEEP_STEP);
    const target = page.locator('.step.target');
    expect(await target.getAttribute('data-step')).toBe(String(DEEP_STEP));
    const excerpt = numpy.evidence.find((evidence) => evidence.runId === 'deep-2')!.excerpt;
    expect(await target.locator('.evidence-note .excerpt').textContent()).toBe(excerpt);
    expect(await target.locator('.output mark').textContent()).toBe(excerpt);
    expect(await target.locator('.command').textContent()).toBe('python3 solve.py');
    const box = await target.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y + box!.height).toBeLessThanOrEqual(700);
    expect(await page.evaluate<number>('window.scrollY')).toBeGreaterThan(1000);
    expect(await page.locator('.verifications tbody tr').count()).toBe(1);
    await screenshot(page, 'run-viewer');
  });

  it('draws one bar group per model, a bar per mechanism sized by its rate, and the tests', async () => {
    const profiles = await computeProfiles(log);
    expect(profiles.models.length).toBe(2);
    const page = await openPage('#/profiles');
    await ready(page, 'profiles');
    const groups = page.locator('svg.profile-chart g.bar-group');
    expect(await groups.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-model')))).toEqual(
      profiles.models.map((model) => model.model),
    );
    for (const model of profiles.models) {
      const bars = page.locator(`g.bar-group[data-model="${model.model}"] rect.bar`);
      expect(await bars.count()).toBe(profiles.mechanisms.length);
      const heights = await bars.evaluateAll((nodes) => nodes.map((node) => Number(node.getAttribute('height'))));
      expect(heights.map((height) => Math.round((height / 240) * 100))).toEqual(
        model.mechanisms.map((entry) => Math.round(entry.rate * 100)),
      );
      const intervals = page.locator(`g.bar-group[data-model="${model.model}"] line.interval`);
      expect(await intervals.count()).toBe(3 * profiles.mechanisms.length);
    }
    const rows = page.locator('table.tests tbody tr');
    expect(await rows.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-mechanism')))).toEqual(
      profiles.comparisons.map((comparison) => comparison.mechanism),
    );
    await screenshot(page, 'profiles');
  });

  it('shows the harness timeline, the diff of the promoted version, and the decisions behind it', async () => {
    const page = await openPage('#/harness');
    await ready(page, 'harness');
    const versions = page.locator('.timeline .version');
    expect(await versions.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-version')))).toEqual([
      fixture.defaultVersion.versionId,
      fixture.promoted.versionId,
    ]);
    expect(await page.locator(`.version[data-version="${fixture.promoted.versionId}"] .badge`).textContent()).toBe(
      'current',
    );

    await page.locator(`.version[data-version="${fixture.promoted.versionId}"] .version-link`).click();
    await page.waitForURL(`**/#/harness/${fixture.promoted.versionId}`);
    await ready(page, 'harness');
    const operations = page.locator('.patch .operation');
    expect(await operations.count()).toBe(2);
    const texts = await operations.allInnerTexts();
    expect(texts.find((text) => text.includes('middleware › 0'))).toMatch(
      /^Added\s+middleware › 0[\s\S]*failed-command-guard/,
    );
    expect(texts.find((text) => text.includes('instructions › recovery'))).toContain(
      'When a Python module is missing, install it.',
    );
    const proposals = page.locator('.decisions .proposal');
    expect(await proposals.evaluateAll((nodes) => nodes.map((node) => node.getAttribute('data-proposal')))).toEqual([
      'p-loop',
      'p-recovery',
    ]);
    expect(await page.locator('.proposal[data-proposal="p-loop"] tr[data-stage]').allInnerTexts()).toEqual([
      expect.stringMatching(/gate \(paper\)\s+gate: accepted/),
      expect.stringMatching(/merge\s+merge: accepted\s+Merged into harness/),
    ]);
    await screenshot(page, 'harness');

    await page.locator(`.version[data-version="${fixture.defaultVersion.versionId}"] .version-link`).click();
    await page.waitForURL(`**/#/harness/${fixture.defaultVersion.versionId}`);
    await ready(page, 'harness');
    expect(await page.locator('.version-detail').textContent()).toContain('This version has no parent');
    expect(await page.locator('table.proposals tbody tr').allInnerTexts()).toEqual([
      expect.stringMatching(/^p-loop.*merge: accepted$/),
      expect.stringMatching(/^p-recovery.*merge: accepted$/),
      expect.stringMatching(/^p-budget.*gate: rejected$/),
    ]);
  });

  it('runs a query and shows its rows, and shows why a write is refused', async () => {
    const page = await openPage('#/sql');
    await ready(page, 'sql');
    const sql = "SELECT run_id, task, model FROM runs WHERE outcome = 'failed' ORDER BY run_id";
    const expected = await log.query<{ run_id: string }>(sql);
    await page.locator('textarea[name=sql]').fill(sql);
    await page.locator('.sql-form button[type=submit]').click();
    await page.locator('table.sql-result').waitFor();
    expect(await page.locator('table.sql-result th').allTextContents()).toEqual(['run_id', 'task', 'model']);
    expect(await page.locator('table.sql-result tbody tr td:first-child').allTextContents()).toEqual(
      expected.map((row) => row.run_id),
    );
    expect(await page.locator('.result-summary').textContent()).toMatch(new RegExp(`^${expected.length} rows in`));
    await screenshot(page, 'sql');

    const write = 'DELETE FROM events';
    const refused = (await (await api('/v1/sql', { method: 'POST', body: JSON.stringify({ sql: write }) })).json()) as {
      title: string;
      detail: string;
    };
    await page.locator('textarea[name=sql]').fill(write);
    await page.locator('textarea[name=sql]').press('Control+Enter');
    const error = page.locator('.sql-output .error');
    await error.waitFor();
    expect(await error.locator('strong').textContent()).toBe(`The query was refused (HTTP 400 ${refused.title})`);
    expect(await error.locator('.detail').textContent()).toBe(refused.detail);
    expect(await log.query('SELECT count(*) AS n FROM events')).not.toEqual([{ n: 0n }]);
    await screenshot(page, 'sql-refused');
  });

  it('lists improve jobs with a start form, or shows the API’s error when it has no job routes', async () => {
    const listed = await api('/v1/jobs');
    const page = await openPage('#/jobs');
    await ready(page, 'jobs');
    expect(await page.locator('form.start-job input[name=model]').count()).toBe(1);
    if (listed.ok) {
      const body = (await listed.json()) as { jobs?: unknown[] } | unknown[];
      const jobs = Array.isArray(body) ? body : (body.jobs ?? []);
      if (jobs.length === 0) await page.locator('.job-list .empty').waitFor();
      else expect(await page.locator('table.jobs tbody tr').count()).toBe(jobs.length);
    } else {
      const problem = (await listed.json()) as { detail: string };
      const error = page.locator('.job-list .error');
      await error.waitFor();
      expect(await error.locator('.detail').textContent()).toBe(problem.detail);
      expect(await error.locator('strong').textContent()).toContain(`HTTP ${listed.status}`);
    }
    await screenshot(page, 'jobs');

    const refusedJob = { model: 'no-such-model' };
    const refused = (await (await api('/v1/improve', { method: 'POST', body: JSON.stringify(refusedJob) })).json()) as {
      detail: string;
    };
    await page.locator('form.start-job input[name=model]').fill(refusedJob.model);
    await page.locator('form.start-job button[type=submit]').click();
    const formError = page.locator('form.start-job .error');
    await formError.waitFor();
    expect(await formError.locator('.detail').textContent()).toBe(refused.detail);

    // The stream parser the live progress reads with, fed chunks cut in awkward places.
    // Given as text: the test runner would rewrite a dynamic import written in this file.
    const events = await page.evaluate(`(async () => {
      const { createEventStreamParser } = await import('/dashboard/api.js');
      const seen = [];
      const push = createEventStreamParser((event) => seen.push(event));
      const chunks = [
        ': keep-alive\\n\\nevent: progress\\ndata: {"id":"j1","status":"running",',
        '"progress":{"phase":"trials","done":1,"total":4}}\\r',
        '\\n\\r\\nevent: end\\ndata: {"id":"j1",\\ndata: "status":"succeeded"}\\n',
        '\\n',
      ];
      for (const chunk of chunks) push(chunk);
      return seen;
    })()`);
    expect(events).toEqual([
      {
        event: 'progress',
        data: '{"id":"j1","status":"running","progress":{"phase":"trials","done":1,"total":4}}',
        id: undefined,
      },
      { event: 'end', data: '{"id":"j1",\n"status":"succeeded"}', id: undefined },
    ]);
  });

  // Last: the job adds trial runs to the log the other tests read.
  it.skipIf(!hasBubblewrap)(
    'follows a running improve job live until its end (needs bubblewrap for the trials)',
    async () => {
      const started = await api('/v1/improve', {
        method: 'POST',
        body: JSON.stringify({
          model: 'sim:late-artifacts',
          iterations: 1,
          candidates: 1,
          attempts: 1,
          gate: 'paper',
          seed: 0,
          heldIn: ['dedupe-emails'],
          heldOut: ['file-manifest'],
          sealed: [],
        }),
      });
      expect(started.status).toBe(202);
      const { job } = (await started.json()) as { job: { id: string } };
      const page = await openPage(`#/jobs/${job.id}`);
      await ready(page, 'jobs');
      const summary = page.locator('.job-summary');
      await page.locator('.job-summary[data-status="succeeded"], .job-summary[data-status="failed"]').waitFor();
      const final = (
        (await (await api(`/v1/jobs/${job.id}`)).json()) as { job: { status: string; progress: { message: string } } }
      ).job;
      expect(await summary.getAttribute('data-status')).toBe(final.status);
      expect(await summary.locator('.progress-text').textContent()).toContain(final.progress.message);
      const history = await page.locator('.job-history li').allTextContents();
      expect(history.length).toBeGreaterThan(2);
      expect(history.at(-1)).toContain(final.progress.message);
      await screenshot(page, 'job');
    },
  );
});
