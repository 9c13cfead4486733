import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { MetricsModule } from '../../src/metrics/metrics.module.js';
import { MetricsService, apiKeyLabel } from '../../src/metrics/metrics.service.js';

/** One sample of the Prometheus text format: `name{label="value",…} number`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format 0.0.4 (the subset prom-client writes), checking HELP/TYPE lines on the way. */
function parseMetrics(text: string): { samples: Sample[]; types: Record<string, string> } {
  const samples: Sample[] = [];
  const types: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      types[type[1]] = type[2]!;
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]!;
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

/** The value of the one sample with this name and (at least) these labels; undefined when absent. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples match ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

const scrape = async (metrics: MetricsService) => parseMetrics(await metrics.scrape());

// Collector failures are logged as warnings; keep the test output clean.
beforeAll(() => Logger.overrideLogger(false));

describe('MetricsService', () => {
  it('counts submitted, completed and failed jobs per engine', async () => {
    const metrics = new MetricsService();
    metrics.jobSubmitted('whisper-rocm');
    metrics.jobSubmitted('whisper-rocm');
    metrics.jobSubmitted('pocketsphinx');
    metrics.jobFinished({ engine: 'whisper-rocm', status: 'completed', durationSec: 12, audioSec: 60, processingSec: 6 });
    metrics.jobFinished({ engine: 'whisper-rocm', status: 'failed', durationSec: 40, audioSec: 60, processingSec: 0 });

    const { samples, types } = await scrape(metrics);
    expect(types.gateway_jobs_total).toBe('counter');
    expect(value(samples, 'gateway_jobs_total', { engine: 'whisper-rocm', status: 'submitted' })).toBe(2);
    expect(value(samples, 'gateway_jobs_total', { engine: 'whisper-rocm', status: 'completed' })).toBe(1);
    expect(value(samples, 'gateway_jobs_total', { engine: 'whisper-rocm', status: 'failed' })).toBe(1);
    expect(value(samples, 'gateway_jobs_total', { engine: 'pocketsphinx', status: 'submitted' })).toBe(1);
    expect(value(samples, 'gateway_jobs_total', { engine: 'pocketsphinx', status: 'completed' })).toBeUndefined();
  });

  it('puts completed jobs into duration and RTF histogram buckets; failed jobs stay out', async () => {
    const metrics = new MetricsService();
    metrics.jobFinished({ engine: 'whisperx', status: 'completed', durationSec: 12, audioSec: 60, processingSec: 6 }); // RTF 0.1
    metrics.jobFinished({ engine: 'whisperx', status: 'completed', durationSec: 700, audioSec: 100, processingSec: 150 }); // RTF 1.5
    metrics.jobFinished({ engine: 'whisperx', status: 'failed', durationSec: 5, audioSec: 100, processingSec: 1 });

    const { samples, types } = await scrape(metrics);
    expect(types.gateway_job_duration_seconds).toBe('histogram');
    expect(types.gateway_rtf).toBe('histogram');
    const bucket = (name: string, le: string) => value(samples, `${name}_bucket`, { engine: 'whisperx', le });
    // Cumulative buckets: 12 s falls in le=30 and above, 700 s in le=1200 and above.
    expect(bucket('gateway_job_duration_seconds', '10')).toBe(0);
    expect(bucket('gateway_job_duration_seconds', '30')).toBe(1);
    expect(bucket('gateway_job_duration_seconds', '600')).toBe(1);
    expect(bucket('gateway_job_duration_seconds', '1200')).toBe(2);
    expect(bucket('gateway_job_duration_seconds', '+Inf')).toBe(2);
    expect(value(samples, 'gateway_job_duration_seconds_count', { engine: 'whisperx' })).toBe(2);
    expect(value(samples, 'gateway_job_duration_seconds_sum', { engine: 'whisperx' })).toBe(712);

    expect(bucket('gateway_rtf', '0.05')).toBe(0);
    expect(bucket('gateway_rtf', '0.1')).toBe(1);
    expect(bucket('gateway_rtf', '1')).toBe(1);
    expect(bucket('gateway_rtf', '1.5')).toBe(2);
    expect(value(samples, 'gateway_rtf_count', { engine: 'whisperx' })).toBe(2);
    expect(value(samples, 'gateway_rtf_sum', { engine: 'whisperx' })).toBeCloseTo(1.6, 10);
  });

  it('labels audio seconds with a short hash of the API key, never the key', async () => {
    const key = 'gw_live_4f9a8c2e61d04b7a9e3c5f1b2d7a6e80';
    const metrics = new MetricsService();
    metrics.jobFinished({ engine: 'riva', status: 'completed', durationSec: 3, audioSec: 42.5, processingSec: 1, apiKey: key });
    metrics.jobFinished({ engine: 'riva', status: 'completed', durationSec: 3, audioSec: 7.5, processingSec: 1, apiKey: key });
    metrics.jobFinished({ engine: 'riva', status: 'completed', durationSec: 3, audioSec: 10, processingSec: 1 });
    // A label computed at submission (so the key never travels in the job payload) counts the same.
    metrics.jobFinished({ engine: 'riva', status: 'completed', durationSec: 3, audioSec: 5, processingSec: 1, keyLabel: apiKeyLabel(key) });
    metrics.jobFinished({ engine: 'riva', status: 'failed', durationSec: 3, audioSec: 99, processingSec: 1, apiKey: key });

    const text = await metrics.scrape();
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(0, 12));
    const label = createHash('sha256').update(key).digest('hex').slice(0, 8);
    expect(apiKeyLabel(key)).toBe(label);
    expect(label).toMatch(/^[0-9a-f]{8}$/);
    const { samples } = parseMetrics(text);
    expect(value(samples, 'gateway_audio_seconds_total', { engine: 'riva', api_key: label })).toBe(55);
    expect(value(samples, 'gateway_audio_seconds_total', { engine: 'riva', api_key: 'anonymous' })).toBe(10);
    expect(apiKeyLabel('')).toBe('anonymous');
    expect(apiKeyLabel(null)).toBe('anonymous');
    expect(apiKeyLabel('another-key')).not.toBe(label);
  });

  it('skips audio and RTF when the audio duration is unknown', async () => {
    const metrics = new MetricsService();
    metrics.jobFinished({ engine: 'pocketsphinx', status: 'completed', durationSec: 2, audioSec: 0, processingSec: 1 });
    const { samples } = await scrape(metrics);
    expect(value(samples, 'gateway_jobs_total', { engine: 'pocketsphinx', status: 'completed' })).toBe(1);
    expect(value(samples, 'gateway_audio_seconds_total', { engine: 'pocketsphinx' })).toBeUndefined();
    expect(value(samples, 'gateway_rtf_count', { engine: 'pocketsphinx' })).toBeUndefined();
  });

  it('reads queue depth through the collectors on every scrape', async () => {
    const metrics = new MetricsService();
    let calls = 0;
    let counts: Record<string, number> = { waiting: 4, active: 2, delayed: 1, failed: 0 };
    metrics.setQueueDepthCollector(async () => {
      calls++;
      return counts;
    });
    metrics.setQueueDepthCollector(() => ({ waiting: 9, active: 1 }), 'chunks-whisper-rocm');
    expect(calls).toBe(0);

    const first = await scrape(metrics);
    const { types } = first;
    let { samples } = first;
    expect(calls).toBe(1);
    expect(types.gateway_queue_depth).toBe('gauge');
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'waiting' })).toBe(4);
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'active' })).toBe(2);
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'failed' })).toBe(0);
    expect(value(samples, 'gateway_queue_depth', { queue: 'chunks-whisper-rocm', state: 'waiting' })).toBe(9);

    // The next scrape reads again; a state no longer reported disappears.
    counts = { waiting: 0, active: 1 };
    ({ samples } = await scrape(metrics));
    expect(calls).toBe(2);
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'waiting' })).toBe(0);
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'delayed' })).toBeUndefined();
  });

  it('reports what waits per queue, engine and API key, and the oldest wait, through the backlog collector', async () => {
    const metrics = new MetricsService();
    let rows = [
      { queue: 'chunks-whisper-rocm', engine: 'whisper-rocm', api_key: 'aaaaaaaa', waiting: 11, oldest_wait_sec: 24.5 },
      { queue: 'chunks-whisper-rocm', engine: 'whisper-rocm', api_key: 'bbbbbbbb', waiting: 6, oldest_wait_sec: 0.2 },
      { queue: 'transcription', engine: 'pocketsphinx', api_key: 'anonymous', waiting: 0, oldest_wait_sec: null },
    ];
    metrics.setBacklogCollector(() => rows);
    const { samples, types } = await scrape(metrics);
    expect([types.gateway_queue_waiting, types.gateway_queue_oldest_wait_seconds]).toEqual(['gauge', 'gauge']);
    expect(value(samples, 'gateway_queue_waiting', { queue: 'chunks-whisper-rocm', engine: 'whisper-rocm', api_key: 'aaaaaaaa' })).toBe(11);
    expect(value(samples, 'gateway_queue_oldest_wait_seconds', { queue: 'chunks-whisper-rocm', api_key: 'aaaaaaaa' })).toBe(24.5);
    expect(value(samples, 'gateway_queue_waiting', { api_key: 'bbbbbbbb' })).toBe(6);
    expect(value(samples, 'gateway_queue_waiting', { queue: 'transcription', api_key: 'anonymous' })).toBe(0);
    // No wait, no age.
    expect(value(samples, 'gateway_queue_oldest_wait_seconds', { queue: 'transcription' })).toBeUndefined();

    // A key with nothing waiting any more is no longer reported.
    rows = rows.slice(1);
    const next = await scrape(metrics);
    expect(value(next.samples, 'gateway_queue_waiting', { api_key: 'aaaaaaaa' })).toBeUndefined();
    expect(value(next.samples, 'gateway_queue_waiting', { api_key: 'bbbbbbbb' })).toBe(6);
  });

  it('reports engine availability through the health collector', async () => {
    const metrics = new MetricsService();
    let { samples } = await scrape(metrics);
    expect(samples.some((s) => s.name === 'gateway_engine_up')).toBe(false);

    let calls = 0;
    metrics.setEngineHealthCollector(() => {
      calls++;
      return { pocketsphinx: true, 'whisper-rocm': false };
    });
    ({ samples } = await scrape(metrics));
    expect(calls).toBe(1);
    expect(value(samples, 'gateway_engine_up', { engine: 'pocketsphinx' })).toBe(1);
    expect(value(samples, 'gateway_engine_up', { engine: 'whisper-rocm' })).toBe(0);
  });

  it('keeps scraping when a collector fails, and counts the failure', async () => {
    const metrics = new MetricsService();
    metrics.jobSubmitted('pocketsphinx');
    metrics.setQueueDepthCollector(() => Promise.reject(new Error('Redis connection refused')));
    metrics.setQueueDepthCollector(() => ({ waiting: 3 }), 'chunks-riva');
    metrics.setEngineHealthCollector(() => {
      throw new Error('not ready');
    });
    const { samples } = await scrape(metrics);
    expect(value(samples, 'gateway_jobs_total', { engine: 'pocketsphinx', status: 'submitted' })).toBe(1);
    expect(value(samples, 'gateway_queue_depth', { queue: 'transcription', state: 'waiting' })).toBeUndefined();
    expect(value(samples, 'gateway_queue_depth', { queue: 'chunks-riva', state: 'waiting' })).toBe(3);
    expect(value(samples, 'gateway_metrics_collector_errors_total', { collector: 'queue:transcription' })).toBe(1);
    expect(value(samples, 'gateway_metrics_collector_errors_total', { collector: 'engines' })).toBe(1);
  });

  it('prefixes the Node process metrics and every other metric with gateway_', async () => {
    const { samples, types } = await scrape(new MetricsService());
    expect(types.gateway_process_cpu_user_seconds_total).toBe('counter');
    expect(types.gateway_nodejs_heap_size_used_bytes).toBe('gauge');
    expect(Object.keys(types).filter((n) => !n.startsWith('gateway_'))).toEqual([]);
    expect(samples.filter((s) => !s.name.startsWith('gateway_'))).toEqual([]);
  });

  it('keeps each instance on its own registry', async () => {
    const a = new MetricsService();
    const b = new MetricsService();
    a.jobSubmitted('riva');
    expect(value((await scrape(a)).samples, 'gateway_jobs_total', { engine: 'riva', status: 'submitted' })).toBe(1);
    expect(value((await scrape(b)).samples, 'gateway_jobs_total', { engine: 'riva', status: 'submitted' })).toBeUndefined();
  });
});

describe('GET /metrics', () => {
  it('serves the Prometheus text format from the module', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [MetricsModule.register()] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      app.get(MetricsService).jobSubmitted('pocketsphinx');
      const res = await request(app.getHttpServer()).get('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/);
      const { samples } = parseMetrics(res.text);
      expect(value(samples, 'gateway_jobs_total', { engine: 'pocketsphinx', status: 'submitted' })).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('registers no route when the process serves no metrics over HTTP', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [MetricsModule.register({ http: false })] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      expect(app.get(MetricsService)).toBeInstanceOf(MetricsService);
      expect((await request(app.getHttpServer()).get('/metrics')).status).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('imports neither the jobs nor the engines module (they report to it)', () => {
    const dir = path.join(process.cwd(), 'src/metrics');
    for (const file of readdirSync(dir)) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      const imports = [...source.matchAll(/from '(\.\.\/[^']+)'/g)].map((m) => m[1]);
      expect({ file, imports: imports.filter((i) => /^\.\.\/(jobs|engines)\//.test(i)) }).toEqual({ file, imports: [] });
    }
  });
});
