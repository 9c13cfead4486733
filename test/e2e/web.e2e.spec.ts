import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AppModule } from '../../src/app.module.js';
import { createValidationPipe } from '../../src/common/request-validation.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { buildEngines } from '../../src/engines/engines.module.js';
import { WebModule } from '../../src/web/web.module.js';
import { fixture, testConfig } from '../support/env.js';
import { submit } from '../support/http.js';
import { references, wordErrorRate } from '../support/wer.js';

/**
 * The web page at `/`, driven in headless Chromium (Debian's `chromium` through playwright-core)
 * against a real gateway (pocketsphinx): upload, live progress, transcript with clickable word
 * times, downloads, API errors, the API key and URL submission. Saves a screenshot and prints
 * its path.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// The callbacks passed to page.evaluate and friends run in the browser. The project compiles
// without the DOM library (Node code), so these are the few DOM shapes they use, for this file only.
interface DomElement {
  textContent: string | null;
  className: string;
  hidden: boolean;
  dataset: Record<string, string | undefined>;
  classList: { contains(name: string): boolean };
  querySelector(selector: string): DomElement | null;
}
interface DomAudio extends DomElement {
  currentTime: number;
  readyState: number;
  pause(): void;
}
declare const document: {
  getElementById(id: string): DomElement | null;
  querySelector(selector: string): DomElement | null;
  addEventListener(type: string, listener: () => void): void;
  activeElement: DomElement | null;
};
declare const window: { __stages: string[]; __chunks: string[] };
declare const localStorage: { getItem(key: string): string | null };
declare const MutationObserver: new (callback: () => void) => { observe(target: DomElement, options: Record<string, boolean>): void };
declare function getComputedStyle(element: DomElement): { color: string };
const API = '/api/transcribe/jobs';

/**
 * The api+worker application with the web module, wired as createApp does (global validation
 * pipe; the error filter comes with JobsModule). WebModule is imported beside AppModule so the
 * test does not depend on how the root module includes it (Nest instantiates a module once).
 */
async function startWebGateway(config: AppConfig): Promise<{ app: INestApplication; url: string }> {
  @Module({ imports: [AppModule.forRoot(config, buildEngines({}).engines), WebModule] })
  class WebTestModule {}
  const app = await NestFactory.create(WebTestModule, { logger: false, abortOnError: false });
  app.enableShutdownHooks();
  app.useGlobalPipes(createValidationPipe());
  await app.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

/** Width and height from a PNG's IHDR chunk (bytes 16–23), after checking the signature. */
function pngSize(file: string): { width: number; height: number } {
  const head = readFileSync(file).subarray(0, 24);
  expect(head.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(head.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
}

describe('web page', () => {
  let gw: { app: INestApplication; url: string };
  let browser: Browser;
  let page: Page;
  /** Console errors and uncaught exceptions of the page (CSP violations show up here). */
  let pageErrors: string[];
  const shots = mkdtempSync(path.join(os.tmpdir(), 'gw-test-web-'));

  beforeAll(async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    gw = await startWebGateway(testConfig());
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.app.close();
  });
  beforeEach(async () => {
    pageErrors = [];
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => page?.close());

  it('is served at / beside the API, which it does not shadow', async () => {
    const index = await fetch(`${gw.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await index.text()).toContain('<script type="module" src="app.js"></script>');
    for (const [file, type] of [['app.js', 'text/javascript'], ['style.css', 'text/css']]) {
      const res = await fetch(`${gw.url}/${file}`);
      expect([res.status, res.headers.get('content-type')]).toEqual([200, `${type}; charset=utf-8`]);
      expect(res.headers.get('cache-control')).toBe('no-cache');
    }
    const engines = await fetch(`${gw.url}${API}/engines`);
    expect(engines.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await engines.json()) as { default_engine: string }).default_engine).toBe('pocketsphinx');
    // Unknown paths are still the API's JSON 404, and the project's files outside public/ stay private.
    for (const p of ['/nope.js', '/package.json', '/%2e%2e/package.json', '/.env']) {
      const res = await fetch(`${gw.url}${p}`);
      expect([p, res.status]).toEqual([p, 404]);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('uploads a recording, shows live progress, a clickable transcript and downloads', async () => {
    // Every label the progress line shows, in order, recorded in the page as it changes.
    await page.addInitScript(() => {
      const seen: string[] = [];
      window.__stages = seen;
      document.addEventListener('DOMContentLoaded', () => {
        const label = document.getElementById('progress-stage')!;
        new MutationObserver(() => {
          if (seen.at(-1) !== label.textContent) seen.push(label.textContent ?? '');
        }).observe(label, { childList: true, characterData: true, subtree: true });
      });
    });
    await page.goto(gw.url);
    await expect(page.title()).resolves.toBe('Transcription gateway');

    // Engines come from /engines; pocketsphinx cannot diarize, so the page turns that off.
    await page.waitForSelector('#engine:not([disabled]) option[value="pocketsphinx"]', { state: 'attached' });
    await page.selectOption('#engine', 'pocketsphinx');
    expect(await page.isDisabled('#diarize')).toBe(true);
    expect(await page.isDisabled('#min-speakers')).toBe(true);
    expect(await page.textContent('#diarize-hint')).toMatch(/does not tell speakers apart/);
    // Nor translate: the option is off and says which engines can.
    expect(await page.isDisabled('#translate')).toBe(true);
    expect(await page.textContent('#translate-hint')).toMatch(/cannot translate; pick an engine that can \(whisper-rocm, whisperx, openai\)/);
    expect(await page.textContent('#engine-info')).toMatch(/word times/);
    expect(await page.getAttribute('#language', 'placeholder')).toBe('default: en-US');

    await page.setInputFiles('#file', fixture('goforward.wav'));
    expect(await page.textContent('#file-name')).toBe('goforward.wav');
    await page.click('#submit');
    await page.waitForSelector('#result:not([hidden])', { timeout: 120_000 });

    const jobId = (await page.textContent('#job-id'))!;
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    expect(new URL(page.url()).hash).toBe(`#job=${jobId}`);
    expect(await page.textContent('#progress-percent')).toBe('100%');
    expect(await page.getAttribute('#progress-bar', 'aria-valuenow')).toBe('100');
    const stages = await page.evaluate(() => window.__stages);
    expect(stages[0]).toBe('uploading');
    expect(stages).toContain('transcribing');
    expect(stages.at(-1)).toBe('completed');
    // Stages the job went through are done; those a short file skips (splitting, merging) are marked so.
    const stageClasses = await page.$$eval('#stages li', (lis) => Object.fromEntries(lis.map((li) => [li.dataset.stage, li.className])));
    expect(stageClasses).toMatchObject({ upload: 'done', transcribing: 'done', saving: 'done', completed: 'done', splitting: 'skipped', merging: 'skipped' });

    // The transcript: words as buttons carrying their times, close to the reference.
    const words = await page.$$eval('#transcript .word', (els) => els.map((e) => ({ text: e.textContent ?? '', start: Number((e as DomElement).dataset.start), end: Number((e as DomElement).dataset.end) })));
    expect(words.length).toBeGreaterThan(1);
    expect(wordErrorRate([{ reference: references().get('goforward')!, hypothesis: words.map((w) => w.text).join(' ') }])).toBeLessThanOrEqual(0.5);
    const api = (await (await fetch(`${gw.url}${API}/result/${jobId}`)).json()) as { segments: { words: { word: string; start: number }[] }[]; audio_url: string };
    expect(words.map((w) => [w.text, w.start])).toEqual(api.segments.flatMap((s) => s.words.map((w) => [w.word, w.start])));
    expect(await page.textContent('#facts')).toMatch(/EnginepocketsphinxModelen-usLanguageen-USDuration0:0\d\.\d/);

    // Clicking a word seeks the player to the word's start (and highlights it).
    // The player plays audio_url (directly, or from a blob when the server cannot serve byte ranges).
    await page.waitForFunction(() => Boolean(document.getElementById('audio')!.dataset.source));
    expect(await page.getAttribute('#audio', 'data-source')).toBe(api.audio_url);
    await page.waitForFunction(() => (document.getElementById('audio') as DomAudio).readyState >= 1, undefined, { timeout: 20_000 });
    const target = words.length - 1;
    await page.click(`#transcript .word[data-index="${target}"]`);
    const time = await page.evaluate(() => (document.getElementById('audio') as DomAudio).currentTime);
    expect(time).toBeGreaterThanOrEqual(words[target].start - 0.01);
    expect(time).toBeLessThan(words[target].start + 0.5);
    await page.waitForFunction((i) => document.querySelector(`#transcript .word[data-index="${i}"]`)!.classList.contains('current'), target, { timeout: 5000 });
    await page.evaluate(() => (document.getElementById('audio') as DomAudio).pause());
    // Keyboard: one tab stop for the words (the clicked one), arrows move between them.
    await page.focus(`#transcript .word[data-index="${target}"]`);
    await page.keyboard.press('Home');
    expect(await page.evaluate(() => document.activeElement!.dataset.index)).toBe('0');
    expect(await page.$$eval('#transcript .word[tabindex="0"]', (els) => els.length)).toBe(1);

    // Downloads point at the result endpoint in each format, and those answer.
    for (const format of ['txt', 'srt', 'vtt', 'json']) {
      const href = await page.getAttribute(`#download-${format}`, 'href');
      expect(href).toBe(`${API}/result/${jobId}?format=${format}`);
      const res = await fetch(`${gw.url}${href}`);
      expect([format, res.status]).toEqual([format, 200]);
    }
    expect(await (await fetch(`${gw.url}${API}/result/${jobId}?format=srt`)).text()).toMatch(/^1\n00:00:0\d,\d{3} --> /);

    const shot = path.join(shots, 'web-transcript.png');
    await page.screenshot({ path: shot, fullPage: true });
    const { width, height } = pngSize(shot);
    expect(statSync(shot).size).toBeGreaterThan(10 * 1024);
    expect(width).toBeGreaterThanOrEqual(1024);
    expect(height).toBeGreaterThanOrEqual(700);
    console.log(`web page screenshot: ${shot} (${width}×${height})`);
    expect(pageErrors).toEqual([]);

    // A reload re-attaches to the job from the URL.
    await page.reload();
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    expect(await page.$$eval('#transcript .word', (els) => els.length)).toBe(words.length);
  });

  it('shows speakers in colour with their role names for a two-channel call, chunk by chunk', async () => {
    await page.addInitScript(() => {
      const chunks: string[] = [];
      window.__chunks = chunks;
      document.addEventListener('DOMContentLoaded', () => {
        const label = document.getElementById('progress-chunks')!;
        new MutationObserver(() => chunks.push(label.textContent ?? '')).observe(label, { childList: true, characterData: true, subtree: true });
      });
    });
    await page.goto(gw.url);
    await page.waitForSelector('#engine:not([disabled]) option[value="pocketsphinx"]', { state: 'attached' });
    await page.setInputFiles('#file', fixture('fw_stereo_diarization.wav'));
    expect(await page.isDisabled('#speaker-roles')).toBe(true);
    await page.check('#multichannel');
    await page.selectOption('#speaker-roles', 'first_speaker');
    await page.fill('#role-names', ' agent ,caller ');
    await page.click('#submit');
    await page.waitForSelector('#result:not([hidden])', { timeout: 120_000 });

    // Each channel is a piece of the job: the page showed them being done.
    expect(await page.evaluate(() => window.__chunks)).toEqual(expect.arrayContaining([expect.stringMatching(/^chunk [012] of 2$/)]));
    const jobId = (await page.textContent('#job-id'))!;
    const api = (await (await fetch(`${gw.url}${API}/result/${jobId}`)).json()) as { speaker_roles: Record<string, string>; segments: { speaker_tag: number }[] };
    expect(Object.values(api.speaker_roles).sort()).toEqual(['agent', 'caller']);

    // A legend entry and a colour per speaker; segments labelled with the role names.
    const legend = await page.$$eval('#speakers li', (lis) => lis.map((li) => [li.className, li.textContent]));
    expect(legend).toHaveLength(2);
    for (const [cls, text] of legend) {
      const tag = Number(/^spk-(\d)$/.exec(cls)![1]);
      expect(text).toBe(`${api.speaker_roles[String(tag)] === 'agent' ? 'Agent' : 'Caller'} · Speaker ${tag + 1}`);
    }
    const segments = await page.$$eval('#transcript .segment', (els) => els.map((e) => [e.className, e.querySelector('.speaker')?.textContent]));
    expect(segments.map(([cls]) => cls)).toEqual(api.segments.map((s) => `segment spk-${s.speaker_tag}`));
    expect(new Set(segments.map(([, name]) => name))).toEqual(new Set(['Agent', 'Caller']));
    const colours = await page.$$eval('#transcript .speaker', (els) => [...new Set(els.map((e) => getComputedStyle(e).color))]);
    expect(colours).toHaveLength(2);
    expect(await page.textContent('#facts')).toMatch(/Speakers2/);

    const shot = path.join(shots, 'web-multichannel.png');
    await page.screenshot({ path: shot, fullPage: true });
    const { width, height } = pngSize(shot);
    expect(statSync(shot).size).toBeGreaterThan(10 * 1024);
    expect([width >= 1024, height >= 700]).toEqual([true, true]);
    console.log(`web page screenshot (two speakers): ${shot} (${width}×${height})`);
    expect(pageErrors).toEqual([]);
  });

  it("shows the API's own error message when a submission is refused", async () => {
    const notAudio = path.join(shots, 'notes.wav');
    writeFileSync(notAudio, 'these are meeting notes, not audio\n'.repeat(20));
    const expected = await submit(gw.url, notAudio);
    expect(expected.status).toBeGreaterThanOrEqual(400);

    await page.goto(gw.url);
    await page.waitForSelector('#engine:not([disabled])', { state: 'attached' });
    await page.click('#submit');
    expect(await page.isVisible('#form-error')).toBe(true);
    expect(await page.textContent('#form-error')).toMatch(/Choose a recording/);

    await page.setInputFiles('#file', notAudio);
    await page.click('#submit');
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error-message')).toBe(expected.body.message);
    expect(await page.textContent('#error-code')).toBe(`${String(expected.body.code)} · HTTP ${expected.status}`);
    expect(await page.getAttribute('#stages li[data-stage="upload"]', 'class')).toBe('failed');
    // The progress line says the upload was refused, with the server's reason, not "failed 100%".
    expect(await page.textContent('#progress-stage')).toBe('refused');
    expect(await page.textContent('#progress-percent')).toBe('');
    expect(await page.textContent('#progress-message')).toBe(expected.body.message);
    expect(await page.getAttribute('#progress-bar', 'aria-valuenow')).toBe('0');
    expect(await page.isHidden('#result')).toBe(true);
    // The refused request is an error in the console (the browser logs failed responses); nothing else is.
    expect(pageErrors.filter((e) => !/status of 4\d\d/.test(e))).toEqual([]);
  });

  it('sends the stored API key with every request and submits a URL as audio_url', async () => {
    await page.goto(gw.url);
    await page.waitForSelector('#engine:not([disabled])', { state: 'attached' });
    await page.click('#api-key-panel summary');
    await page.fill('#api-key', 'k-123');
    const enginesRequest = page.waitForRequest((r) => r.url().endsWith(`${API}/engines`));
    await page.click('#api-key-form button[type="submit"]');
    expect((await enginesRequest).headers().authorization).toBe('Bearer k-123');
    expect(await page.textContent('#api-key-state')).toBe('set');
    expect(await page.evaluate(() => localStorage.getItem('transcription-gateway.api-key'))).toBe('k-123');

    // The key survives a reload (localStorage) and goes with the submission.
    await page.reload();
    await page.waitForSelector('#engine:not([disabled])', { state: 'attached' });
    expect(await page.inputValue('#api-key')).toBe('k-123');
    await page.click('label[for="source-url"]');
    expect(await page.isChecked('#source-url')).toBe(true);
    expect(await page.isVisible('#audio-url')).toBe(true);
    await page.fill('#audio-url', 'not a url');
    await page.click('#submit');
    expect(await page.textContent('#form-error')).toMatch(/http:\/\/ or https:\/\//);
    await page.fill('#audio-url', 'https://media.example.org/call.mp3');
    const post = page.waitForRequest((r) => r.method() === 'POST');
    await page.click('#submit');
    const request = await post;
    expect(request.url()).toBe(`${gw.url}${API}/transcribe`);
    expect(request.headers().authorization).toBe('Bearer k-123');
    const body = request.postData() ?? '';
    expect(body).toMatch(/name="audio_url"\r\n\r\nhttps:\/\/media\.example\.org\/call\.mp3\r\n/);
    expect(body).toMatch(/name="engine"\r\n\r\npocketsphinx\r\n/);
    expect(body).not.toContain('name="file"');
    expect(body).not.toContain('name="enable_diarization"');
    // Whatever the gateway makes of it (accepted, or refused by an older one), the page reports it.
    await page.waitForFunction(() => !document.getElementById('error')!.hidden || /^[0-9a-f-]{36}$/.test(document.getElementById('job-id')!.textContent ?? ''));

    await page.click('#api-key-panel summary');
    await page.click('#api-key-clear');
    expect(await page.evaluate(() => localStorage.getItem('transcription-gateway.api-key'))).toBeNull();
  });
});
