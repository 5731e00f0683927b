/**
 * The dashboard end to end: Debian's Chromium (headless, driven by playwright-core; no browser download) against a
 * real platform in this process (process runtime, examples/iris, real gateway). Signs in, sees the deployment,
 * changes the traffic split in the page and sees the gateway split requests that way, watches the requests/s chart
 * move while a bounded load runs, follows logs filtered by replica, tries a viewer token (no controls, and the
 * API refuses it), drives sign-in -> deployment -> traffic change with the keyboard only, and rolls out a canary
 * from the page, promotes it and undoes it. Every page is
 * saved as a screenshot in test-results/dashboard/ (git-ignored); with FERRY_UPDATE_SCREENSHOTS=1 the
 * deployment page with a canary waiting also goes to docs/images/dashboard.png, which the README shows.
 * Waits on conditions only (the page's elements, the gateway's answers), never on fixed sleeps.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { isWebFresh } from '../scripts/build-web.mjs';
import type { ControlClient } from '../src/control/index.ts';
import type { Platform } from '../src/platform/index.ts';
import { HANG_MS } from './hang.ts';
import { ROOT, tempDir, until } from './helpers.ts';
import { steadyLoad } from './load.ts';
import { IRIS_BODY as BODY, deployIris, startTestPlatform } from './platform-fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-results', 'dashboard');
const README_IMAGE = join(ROOT, 'docs', 'images', 'dashboard.png');

describe('the dashboard in headless Chromium', { skip: !existsSync(CHROMIUM) && `no ${CHROMIUM}` }, () => {
  const home = tempDir('ferry-dashboard-');
  let platform: Platform;
  let admin: ControlClient;
  let adminToken: string;
  let viewerToken: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const consoleErrors: string[] = [];

  /** Answers of the gateway by revision, over `n` requests. */
  const gatewaySplit = async (n: number) => {
    const by: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${platform.gatewayUrl}/v2/models/iris/infer`, {
        method: 'POST',
        body: BODY,
        headers: { 'content-type': 'application/json' },
      });
      await res.arrayBuffer();
      if (res.status === 200) {
        const rev = res.headers.get('x-ferry-revision') ?? '?';
        by[rev] = (by[rev] ?? 0) + 1;
      }
    }
    return by;
  };
  const shot = async (name: string, p: Page = page) => {
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const newPage = async (ctx: BrowserContext) => {
    const p = await ctx.newPage();
    p.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    p.on('pageerror', (e) => consoleErrors.push(e.message));
    return p;
  };

  before(async () => {
    assert.ok(isWebFresh(), 'dist/web is built from web/ (scripts/test.mjs builds it)');
    mkdirSync(SHOTS, { recursive: true });
    ({ platform, client: admin, token: adminToken } = await startTestPlatform(home.path));
    ui = `${platform.apiUrl}/ui/`;
    await deployIris({ platform, client: admin }, { replicas: 1, wait: 'none' });
    // A second revision, rolled out: the split can then be changed between two revisions.
    await admin.update('iris', { env: { FERRY_DEMO_STEP: 'two' } });
    await until('revision 2 rolled out', async () => (await admin.rollout('iris'))?.phase === 'succeeded');
    await until('the gateway serves revision 2', async () => (await gatewaySplit(1))['2'] === 1);
    viewerToken = (await admin.createToken('watcher', 'viewer')).token;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await newPage(context);
  });

  after(async () => {
    await browser?.close();
    await platform?.stop({ removeReplicas: true });
    home.remove();
  });

  test('sign in with the admin token and see the demo deployment', async () => {
    await page.goto(ui);
    await page.getByLabel('API token').waitFor();
    await shot('sign-in');
    await page.getByLabel('API token').fill('ferry_0000000000000000_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'FERRY_UNAUTHORIZED' }).waitFor();
    await page.getByLabel('API token').fill(adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').filter({ hasText: 'platform-admin' }).waitFor();
    const row = page.getByTestId('deployments').getByRole('row', { name: /iris/ });
    await row.waitFor();
    assert.match(String(await row.textContent()), /r2/);
    await shot('deployments');
    // Functions run in the page are written as strings: this file is type-checked without the DOM's types.
    const stored = await page.evaluate("sessionStorage.getItem('ferry.token')");
    assert.equal(stored, adminToken, 'the token is kept in sessionStorage');
    assert.ok(!page.url().includes(adminToken));
  });

  test('a #token= fragment signs in and leaves the address bar', async () => {
    const p = await newPage(await browser.newContext());
    await p.goto(`${ui}#token=${encodeURIComponent(adminToken)}`);
    await p.getByTestId('role').filter({ hasText: 'platform-admin' }).waitFor();
    assert.ok(!p.url().includes('token'), `the fragment is gone: ${p.url()}`);
    await p.context().close();
  });

  test('the deployment page: status, replicas, timeline; a traffic split set there is applied by the gateway', async () => {
    await page.getByRole('link', { name: 'iris', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'iris' }).waitFor();
    await page.getByTestId('timeline').getByText('RolloutSucceeded').first().waitFor();
    await page.getByTestId('replicas').getByRole('row', { name: /r2/ }).first().waitFor();
    await shot('deployment');
    // An invalid split is refused in the page before it reaches the API.
    await page.getByLabel('r1', { exact: true }).fill('30');
    await page.getByTestId('traffic-sum').filter({ hasText: 'add up to 130%' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Apply split' }).isDisabled(), true);
    await page.getByLabel('r2', { exact: true }).fill('70');
    await page.getByTestId('traffic-sum').filter({ hasText: 'Total 100%' }).waitFor();
    await page.getByLabel('r1', { exact: true }).fill('50');
    await page.getByLabel('r2', { exact: true }).fill('50');
    await page.getByRole('button', { name: 'Apply split' }).click();
    await page.getByTestId('announcer').filter({ hasText: 'Traffic set: r1 50%, r2 50%' }).waitFor();
    // Applied: the page shows it, and the gateway sends requests to both revisions.
    await page.getByTestId('traffic-now').filter({ hasText: 'r1 50%, r2 50%' }).waitFor({ timeout: HANG_MS });
    const split = await until('the gateway to split between r1 and r2', async () => {
      const by = await gatewaySplit(40);
      return (by['1'] ?? 0) > 0 && (by['2'] ?? 0) > 0 ? by : undefined;
    });
    assert.deepEqual(
      (await admin.getTraffic('iris')).map((t) => [t.revision, t.percent]),
      [
        [1, 50],
        [2, 50],
      ],
    );
    // Scale from the page: the API takes it and the page shows the new count.
    await page.getByLabel('Replicas wanted').fill('2');
    await page.getByRole('button', { name: 'Scale', exact: true }).click();
    await page.getByTestId('announcer').filter({ hasText: 'Scaled iris to 2 replica(s)' }).waitFor();
    await until('2 replicas wanted', async () => (await admin.getDeployment('iris')).replicas === 2);
    await shot('deployment-split');

    assert.ok(split);
  });

  test('the charts move while a bounded load runs', async () => {
    await page.getByRole('link', { name: 'Charts' }).click();
    await page.getByRole('heading', { level: 1, name: 'iris: live charts' }).waitFor();
    const chart = page.getByTestId('chart-rps');
    await chart.waitFor();
    const before = Number(await chart.getAttribute('data-points'));
    const load = steadyLoad({
      url: `${platform.gatewayUrl}/v2/models/iris/infer`,
      body: BODY,
      rps: 20,
      maxDurationMs: HANG_MS,
    });
    try {
      await until('the requests/s chart to show the load', async () => {
        const points = Number(await chart.getAttribute('data-points'));
        const summary = (await page.getByTestId('summary-rps').textContent()) ?? '';
        return points > before + 1 && /r\d+ (?!0\.00)\d/.test(summary) ? summary : undefined;
      });
    } finally {
      const result = await load.stop();
      assert.deepEqual(result.failures, []);
    }
    await shot('charts');
  });

  test('logs: the last lines, followed as they come, filtered by replica', async () => {
    await page.goto(`${ui}deployments/iris/logs`);
    await page.getByRole('heading', { level: 1, name: 'iris: logs' }).waitFor();
    const log = page.getByTestId('log');
    await log.locator('li').first().waitFor();
    // A request the model refuses makes its replica write a line (4xx at warn): it arrives on the open stream.
    const count = await log.locator('li').count();
    await until('a line written after the page opened', async () => {
      const res = await fetch(`${platform.gatewayUrl}/v2/models/iris/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.status, 400, await res.text());
      return (await log.locator('li').count()) > count;
    });
    const replicas = [...new Set(await log.locator('.replica').allInnerTexts())];
    assert.ok(replicas.length >= 2, `lines of several replicas: ${replicas}`);
    const one = replicas[0]!;
    await page.getByLabel('Replica', { exact: true }).selectOption(one);
    await until('only its lines', async () => {
      const shown = await log.locator('.replica').allInnerTexts();
      return shown.length > 0 && shown.every((r) => r === one);
    });
    await shot('logs');
  });

  test('events, models and the audit log', async () => {
    await page.getByRole('link', { name: 'Events' }).click();
    await page.getByTestId('events').getByText('TrafficRequested').first().waitFor();
    await shot('events');
    await page.getByRole('link', { name: 'Models' }).click();
    await page.getByTestId('model').getByRole('heading', { name: 'iris' }).waitFor();
    await shot('models');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit').getByText('setTraffic').first().waitFor();
    await shot('audit');
  });

  test('a viewer token: no controls, and the API refuses a change', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await newPage(ctx);
    await p.goto(ui);
    await p.getByLabel('API token').fill(viewerToken);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByTestId('role').filter({ hasText: 'viewer' }).waitFor();
    assert.equal(await p.getByRole('link', { name: 'Audit log' }).count(), 0, 'no audit log link');
    await p.getByRole('link', { name: 'iris', exact: true }).click();
    await p.getByRole('heading', { level: 1, name: 'iris' }).waitFor();
    await p.getByTestId('replicas').waitFor();
    for (const name of ['Apply split', 'Promote', 'Abort', 'Undo', 'Scale'])
      assert.equal(await p.getByRole('button', { name }).count(), 0, `no ${name} button`);
    assert.equal(await p.getByTestId('traffic-form').count(), 0);
    await shot('viewer-deployment', p);
    // The page hides the controls; the API decides: the same change with this token is refused.
    const status = (await p.evaluate(async (token) => {
      const res = await fetch('/v1/deployments/iris/traffic', {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ traffic: [{ revision: 2, percent: 100 }] }),
      });
      return { status: res.status, body: await res.json() };
    }, viewerToken)) as { status: number; body: { code?: string } };
    assert.equal(status.status, 403);
    assert.equal(status.body.code, 'FERRY_FORBIDDEN');
    // The audit page, reached by its address, shows the API's refusal.
    await p.goto(`${ui}audit`);
    await p.getByRole('alert').filter({ hasText: '403 FERRY_FORBIDDEN' }).waitFor();
    await ctx.close();
  });

  test('keyboard only: sign in, open the deployment, change the split', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await newPage(ctx);
    await p.goto(ui);
    const focused = () =>
      p.evaluate(`(() => {
        const el = document.activeElement;
        return (el?.tagName.toLowerCase() ?? '') + '#' + (el?.id ?? '') + ':' + (el?.textContent ?? '').trim().slice(0, 40);
      })()`) as Promise<string>;
    /** Presses Tab until the focused element matches (at most `max` presses). */
    const tabTo = async (pattern: RegExp, max = 60) => {
      for (let i = 0; i < max; i++) {
        await p.keyboard.press('Tab');
        if (pattern.test(await focused())) return;
      }
      throw new Error(`Tab never reached ${pattern} (last: ${await focused()})`);
    };
    await tabTo(/^a#:Skip to content/);
    await tabTo(/^input#token/);
    await p.keyboard.type(adminToken);
    await p.keyboard.press('Enter');
    await p.getByTestId('role').filter({ hasText: 'platform-admin' }).waitFor();
    await tabTo(/^a#:iris$/);
    await p.keyboard.press('Enter');
    await p.getByRole('heading', { level: 1, name: 'iris' }).waitFor();
    assert.match(await focused(), /^h1#page-title/, 'the new page heading has the focus');
    await tabTo(/^input#weight-r1/);
    await p.keyboard.press('Control+A');
    await p.keyboard.type('0');
    await tabTo(/^input#weight-r2/);
    await p.keyboard.press('Control+A');
    await p.keyboard.type('100');
    await tabTo(/^button#:Apply split/);
    await p.keyboard.press('Enter');
    await p.getByTestId('announcer').filter({ hasText: 'Traffic set: r2 100%' }).waitFor();
    await until('the split back on r2 alone', async () => {
      const traffic = await admin.getTraffic('iris');
      return traffic.length === 1 && traffic[0]!.revision === 2 && traffic[0]!.percent === 100;
    });
    await shot('keyboard-split', p);
    await ctx.close();
  });

  test('a canary rolled out from the page waits at its step, is promoted, then undone', async () => {
    await page.goto(`${ui}deployments/iris`);
    await page.getByRole('heading', { level: 1, name: 'iris' }).waitFor();
    await page.getByLabel('Set variable').fill('DEMO_STEP');
    await page.getByLabel('to', { exact: true }).fill('canary');
    await page.getByLabel('Strategy').selectOption('canary');
    await page.getByLabel('Canary steps (%)').fill('50');
    await page.getByRole('button', { name: 'Roll out' }).click();
    await page.getByTestId('announcer').filter({ hasText: 'Rolling out revision 3 (canary)' }).waitFor();
    const rollout = page.getByTestId('rollout');
    await rollout.filter({ hasText: 'paused' }).waitFor({ timeout: HANG_MS });
    await page.getByTestId('timeline').getByText('RolloutPaused').first().waitFor();
    assert.equal(await page.getByRole('progressbar').getAttribute('aria-valuenow'), '50');
    await shot('canary-paused');
    // The README's picture: the first screen of this page, a canary waiting at 50%.
    if (process.env.FERRY_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(join(ROOT, 'docs', 'images'), { recursive: true });
      await page.evaluate('window.scrollTo(0, 0)');
      await page.screenshot({ path: README_IMAGE });
    }
    await page.getByRole('button', { name: 'Promote' }).click();
    await until(
      'the canary promoted to 100%',
      async () => (await admin.rollout('iris'))?.phase === 'succeeded',
    );
    await rollout.filter({ hasText: 'succeeded' }).waitFor({ timeout: HANG_MS });
    // Undo: the revision before (r2's spec) comes back as r4.
    await page.getByRole('button', { name: 'Undo' }).click();
    await page
      .getByTestId('announcer')
      .filter({ hasText: /^Undo: / })
      .waitFor();
    await until('undone as revision 4', async () => {
      const r = await admin.rollout('iris');
      return r?.to === 4 && r.phase === 'succeeded';
    });
    await shot('undone');
  });

  test('text contrast: at least 4.5:1 (3:1 for large text) on every page', async (t) => {
    const failures: string[] = [];
    for (const path of [
      '',
      'deployments/iris',
      'deployments/iris/charts',
      'deployments/iris/logs',
      'events',
      'models',
    ]) {
      await page.goto(`${ui}${path}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      // Its content comes after the heading (the API's answers): sampled once there is some.
      const samples = await until(`text on /ui/${path}`, async () => {
        const found = (await page.evaluate(CONTRAST_SAMPLES)) as ContrastSample[];
        return found.length > 10 ? found : undefined;
      });
      let lowest = { ratio: Number.POSITIVE_INFINITY, text: '' };
      for (const s of samples) {
        const need = s.large ? 3 : 4.5;
        const ratio = contrastOf(s.fg, s.bg);
        if (ratio < lowest.ratio) lowest = { ratio, text: s.text };
        if (ratio < need) failures.push(`/ui/${path} "${s.text}": ${ratio.toFixed(2)} (${s.fg} on ${s.bg})`);
      }
      t.diagnostic(
        `/ui/${path}: ${samples.length} texts, the lowest ${lowest.ratio.toFixed(2)}:1 ("${lowest.text}")`,
      );
    }
    assert.deepEqual(failures, []);
  });

  test('no errors in the browser console, no CSP violation', () => {
    // Chromium logs every non-2xx fetch; the refusals above (401, 403) are asked for, the rest would be a bug.
    assert.deepEqual(
      consoleErrors.filter(
        (e) => !/^Failed to load resource: the server responded with a status of (401|403)/.test(e),
      ),
      [],
    );
  });
});

interface ContrastSample {
  text: string;
  fg: number[];
  bg: number[];
  large: boolean;
}

/**
 * Run in the page (a string: the test is type-checked without the DOM's types): every visible element with text of
 * its own, not disabled, with its text colour and the first opaque background behind it (rgba arrays; a
 * translucent colour blended over what is behind it).
 */
const CONTRAST_SAMPLES = `(() => {
  const rgba = (c) => (c.match(/[\\d.]+/g) || []).map(Number).concat([1]).slice(0, 4);
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3])).concat([1]);
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join(' ').trim();
    if (!own || el.closest(':disabled, [aria-hidden="true"], .u-legend, option')) continue;
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || Number(st.opacity) === 0) continue;
    const bg = behind(el);
    const size = parseFloat(st.fontSize);
    const bold = Number(st.fontWeight) >= 700;
    out.push({ text: own.slice(0, 40), fg: over(rgba(st.color), bg), bg, large: size >= 24 || (bold && size >= 18.66) });
  }
  return out;
})()`;

/** WCAG 2 contrast ratio of two opaque sRGB colours (0-255 channels). */
function contrastOf(a: number[], b: number[]): number {
  const lum = (c: number[]) => {
    const [r, g, bl] = c.slice(0, 3).map((v) => {
      const x = v / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}
