import { getMetadataStorage } from 'class-validator';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { AppConfig, parseEnv } from '../../src/config/app-config.js';
import { OpenAiConfig, WhisperRocmConfig } from '../../src/engines/openai-compatible/openai-compatible.config.js';
import { PocketsphinxConfig } from '../../src/engines/pocketsphinx/pocketsphinx.config.js';
import { RivaConfig } from '../../src/engines/riva/riva.config.js';
import { WhisperxConfig } from '../../src/engines/whisperx/whisperx.config.js';

/**
 * The deployment files have no Docker daemon to run against here, so they are checked by
 * parsing: docker-compose.dev.yml (YAML with merge keys, as compose reads it), the gateway
 * Dockerfile and .env.example.
 */

const ROOT = process.cwd();
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

interface Healthcheck { test?: string[] | string; disable?: boolean; start_period?: string }
interface Service {
  image?: string;
  build?: string | { context: string; dockerfile?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  ports?: string[];
  container_name?: string;
  profiles?: string[];
  restart?: string;
  devices?: string[];
  group_add?: string[];
  security_opt?: string[];
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; capabilities?: string[] }[] } } };
}

const composeText = read('docker-compose.dev.yml');
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** Compose interpolation with no .env: `${VAR:-default}` / `${VAR-default}` → default, `${VAR}` → '', `$$` → `$`. */
const interpolate = (value: string) =>
  value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (match, _name: string | undefined, fallback: string | undefined) =>
    match === '$$' ? '$' : (fallback ?? ''),
  );

/** One-shot services (run to completion); every other service is long-running. */
const ONE_SHOT = ['minio-init', 'migrate'];
const longRunning = Object.keys(services).filter((name) => !ONE_SHOT.includes(name));

/** Variable names defined in .env.example, set (`VAR=`) or shown commented out (`# VAR=`). */
const envExample = read('.env.example');
const documented = new Set([...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

const gatewayEnv = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(services[name].environment ?? {}).map(([k, v]) => [k, interpolate(String(v ?? ''))]));

describe('docker-compose.dev.yml', () => {
  it('has the data services, the gateway roles, the one-shots and the engines', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'migrate', 'minio', 'minio-init', 'postgres', 'redis', 'riva', 'whisper-rocm', 'whisperx', 'worker'].sort(),
    );
  });

  it('gives every long-running service a healthcheck, and none to the one-shots', () => {
    for (const name of longRunning) {
      const hc = services[name].healthcheck;
      expect({ name, test: hc?.test, disabled: hc?.disable ?? false }).toEqual({ name, test: expect.anything(), disabled: false });
      const test = Array.isArray(hc!.test) ? hc!.test : ['CMD-SHELL', hc!.test!];
      expect(['CMD', 'CMD-SHELL']).toContain(test[0]);
      expect(test.length).toBeGreaterThan(1);
    }
    for (const name of ONE_SHOT) {
      expect(services[name].restart).toBe('no');
      expect(services[name].healthcheck?.test === undefined || services[name].healthcheck?.disable === true).toBe(true);
    }
  });

  it('orders start-up with depends_on conditions: healthy services, completed one-shots', () => {
    for (const role of ['api', 'worker']) {
      expect(services[role].depends_on).toEqual({
        postgres: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        'minio-init': { condition: 'service_completed_successfully' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
    expect(services.migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(services['minio-init'].depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    // Whatever depends on what: one-shots must have completed, long-running services be healthy.
    for (const [name, service] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect({ name, dep, known: dep in services }).toEqual({ name, dep, known: true });
        expect({ name, dep, condition }).toEqual({ name, dep, condition: ONE_SHOT.includes(dep) ? 'service_completed_successfully' : 'service_healthy' });
      }
    }
  });

  it('keeps the worker scalable: no container_name, no published ports', () => {
    const worker = services.worker;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(gatewayEnv('worker').APP_ROLE).toBe('worker');
    expect(gatewayEnv('api').APP_ROLE).toBe('api');
    expect(services.api.ports).toEqual(['${GATEWAY_PORT:-8000}:8000']);
    // No service pins a container name (it would block --scale and parallel projects).
    for (const [name, service] of Object.entries(services)) expect({ name, container_name: service.container_name }).toEqual({ name, container_name: undefined });
  });

  it('runs the api, worker and migrate from the gateway image built from the root Dockerfile', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      expect(services[name].build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
      expect(services[name].image).toBe(services.api.image);
    }
    expect(services.migrate.command).toEqual(['node', 'node_modules/typeorm/cli.js', 'migration:run', '-d', 'dist/src/database/data-source.js']);
    expect(existsSync(path.join(ROOT, 'src/database/data-source.ts'))).toBe(true);
  });

  it('wires the gateway to the compose services by their service names', () => {
    for (const role of ['api', 'worker', 'migrate']) {
      const env = gatewayEnv(role);
      const host = (url: string) => new URL(url.includes('://') ? url : `grpc://${url}`).hostname;
      expect(env).toMatchObject({
        REDIS_URL: 'redis://redis:6379',
        STORAGE_DRIVER: 'minio',
        WHISPER_ROCM_URL: 'http://whisper-rocm:9000',
        WHISPERX_SERVICE_URL: 'http://whisperx:9000',
        RIVA_URI: 'riva:50051',
      });
      for (const key of ['DATABASE_URL', 'REDIS_URL', 'MINIO_ENDPOINT', 'WHISPER_ROCM_URL', 'WHISPERX_SERVICE_URL', 'RIVA_URI']) {
        expect({ role, key, host: host(env[key]) in services }).toEqual({ role, key, host: true });
      }
      expect(host(env.DATABASE_URL)).toBe('postgres');
      expect(host(env.MINIO_ENDPOINT)).toBe('minio');
      // The MinIO credentials the gateway uses are the ones the server and the bucket job get.
      expect(env.MINIO_ACCESS_KEY).toBe(interpolate(String(services.minio.environment!.MINIO_ROOT_USER)));
      expect(env.MINIO_SECRET_KEY).toBe(interpolate(String(services.minio.environment!.MINIO_ROOT_PASSWORD)));
      // The database password matches the postgres service's.
      expect(new URL(env.DATABASE_URL).password).toBe(interpolate(String(services.postgres.environment!.POSTGRES_PASSWORD)));
      // GPU engines stay off until their profile is started and their flag set.
      expect([env.WHISPER_ROCM_ENABLED, env.WHISPERX_ENABLED, env.RIVA_ENABLED]).toEqual(['false', 'false', 'false']);
    }
  });

  it('gives the gateway an environment its own validation accepts, with every engine switched on', () => {
    const env = { ...gatewayEnv('api'), WHISPER_ROCM_ENABLED: 'true', WHISPERX_ENABLED: 'true', RIVA_ENABLED: 'true' };
    const sections: (new () => object)[] = [AppConfig, PocketsphinxConfig, WhisperRocmConfig, WhisperxConfig, RivaConfig];
    for (const cls of sections) expect({ section: cls.name, problems: parseEnv(cls, env).problems }).toEqual({ section: cls.name, problems: [] });
    expect(parseEnv(AppConfig, gatewayEnv('worker')).problems).toEqual([]);
  });

  it('runs Redis with the append-only file on a volume', () => {
    const command = services.redis.command as string[];
    expect(command[0]).toBe('redis-server');
    expect(command.join(' ')).toMatch(/--appendonly yes/);
    expect(command.join(' ')).toMatch(/--maxmemory-policy noeviction/);
    expect(services.redis.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('creates the bucket with a one-shot minio/mc job', () => {
    const init = services['minio-init'];
    expect(init.image).toMatch(/^minio\/mc:RELEASE\./);
    const script = ([] as string[]).concat(init.command ?? []).join('\n');
    expect(script).toMatch(/mc alias set local http:\/\/minio:9000/);
    expect(script).toMatch(/mc mb --ignore-existing "local\/\$\$MINIO_BUCKET_NAME"/);
    expect(interpolate(String(init.environment!.MINIO_BUCKET_NAME))).toBe(gatewayEnv('api').MINIO_BUCKET_NAME);
  });

  it('gives whisper-rocm the AMD GPU devices, groups and seccomp setting of its README', () => {
    const rocm = services['whisper-rocm'];
    expect(rocm.build).toEqual({ context: 'engines/whisper-rocm' });
    expect(existsSync(path.join(ROOT, 'engines/whisper-rocm/Dockerfile'))).toBe(true);
    expect(rocm.devices).toEqual(expect.arrayContaining(['/dev/kfd', '/dev/dri']));
    expect(rocm.group_add!.map(interpolate)).toEqual(expect.arrayContaining(['video', 'render']));
    expect(rocm.security_opt).toContain('seccomp=unconfined');
    expect(rocm.profiles).toEqual(['whisper-rocm']);
  });

  it('reserves an NVIDIA GPU for whisperx and riva', () => {
    for (const name of ['whisperx', 'riva']) {
      const devices = services[name].deploy?.resources?.reservations?.devices ?? [];
      expect(devices).toEqual([expect.objectContaining({ driver: 'nvidia', capabilities: ['gpu'] })]);
    }
    expect(services.whisperx.build).toEqual({ context: 'engines/whisperx' });
    expect(existsSync(path.join(ROOT, 'engines/whisperx/Dockerfile'))).toBe(true);
    expect(services.whisperx.environment).toHaveProperty('HF_TOKEN');
  });

  it('puts the Riva NIM behind the riva profile, with the NGC key', () => {
    const riva = services.riva;
    expect(riva.profiles).toEqual(['riva']);
    expect(interpolate(riva.image!)).toMatch(/^nvcr\.io\/nim\/nvidia\/[a-z0-9.-]+-asr:\d[\w.-]*$/);
    expect(riva.environment).toMatchObject({ NGC_API_KEY: '${NGC_API_KEY:-}', NIM_GRPC_API_PORT: '50051' });
    expect(gatewayEnv('api').RIVA_URI).toBe(`riva:${riva.environment!.NIM_GRPC_API_PORT}`);
  });

  it('keeps services that need a GPU out of the default profile', () => {
    const gpu = Object.entries(services).filter(([, s]) => s.devices?.length || s.deploy?.resources?.reservations?.devices?.length);
    expect(gpu.map(([n]) => n).sort()).toEqual(['riva', 'whisper-rocm', 'whisperx']);
    for (const [name, s] of gpu) expect({ name, profiles: s.profiles }).toEqual({ name, profiles: [name] });
  });

  it('pins every image to a tag other than latest', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, image: service.image }).toEqual({ name, image: expect.any(String) });
      const image = interpolate(service.image!);
      const lastPart = image.split('/').at(-1)!;
      expect({ name, image, tagged: /^[^:@]+(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/.test(lastPart) }).toEqual({ name, image, tagged: true });
      expect({ name, tag: lastPart.split(':')[1] }).not.toEqual({ name, tag: 'latest' });
    }
  });

  it('documents every variable it references in .env.example', () => {
    const referenced = new Set([...composeText.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]));
    expect(referenced.size).toBeGreaterThan(10);
    expect([...referenced].filter((v) => !documented.has(v))).toEqual([]);
  });

  it('declares every named volume it mounts', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const mount of (service as { volumes?: string[] }).volumes ?? []) {
        const source = mount.split(':')[0];
        if (!source.startsWith('.') && !source.startsWith('/')) expect({ name, source, declared: source in (compose.volumes ?? {}) }).toEqual({ name, source, declared: true });
      }
    }
  });
});

describe('.env.example', () => {
  /** Every variable a gateway config class validates (class-validator metadata), i.e. everything the gateway reads. */
  const configVariables = (cls: new () => object) =>
    [...new Set(getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName))];

  it.each([
    ['core', AppConfig],
    ['pocketsphinx', PocketsphinxConfig],
    ['whisper-rocm', WhisperRocmConfig],
    ['openai', OpenAiConfig],
    ['whisperx', WhisperxConfig],
    ['riva', RivaConfig],
  ] as [string, new () => object][])('lists every %s variable', (_section, cls) => {
    const variables = configVariables(cls);
    expect(variables.length).toBeGreaterThan(3);
    expect(variables.filter((v) => !documented.has(v))).toEqual([]);
  });

  it('lists the compose secrets, auth and logging variables', () => {
    for (const v of ['NGC_API_KEY', 'HF_TOKEN', 'API_KEYS', 'ASR_TOKEN', 'LOG_LEVEL', 'STORAGE_DRIVER', 'AUDIO_RETENTION_HOURS', 'MINIO_ROOT_USER', 'MINIO_ROOT_PASSWORD']) {
      expect({ v, documented: documented.has(v) }).toEqual({ v, documented: true });
    }
  });

  it('sets no variable twice', () => {
    const names = [...envExample.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('has defaults the gateway accepts as they stand', () => {
    const env = Object.fromEntries([...envExample.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    for (const cls of [AppConfig, PocketsphinxConfig, WhisperRocmConfig, OpenAiConfig, WhisperxConfig, RivaConfig] as (new () => object)[]) {
      expect({ section: cls.name, problems: parseEnv(cls, env).problems }).toEqual({ section: cls.name, problems: [] });
    }
  });
});

describe('Dockerfile (gateway image)', () => {
  const dockerfile = read('Dockerfile');
  // Join continuation lines, drop comments: one instruction per entry.
  const instructions = dockerfile
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM\s/i.test(line)) stages.push([line]);
    else stages.at(-1)?.push(line);
  }
  const build = stages[0];
  const runtime = stages.at(-1)!;

  it('is multi-stage on a pinned node 20 bookworm-slim base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      const image = stage[0].split(/\s+/)[1];
      expect(image).toMatch(/^node:20(\.\d+){0,2}-bookworm-slim$/);
    }
  });

  it('builds with npm install from the lock, tsc, and prunes dev dependencies', () => {
    const text = build.join('\n');
    expect(text).toMatch(/COPY package\.json package-lock\.json/);
    expect(text).toMatch(/RUN npm install\b/);
    expect(text).not.toMatch(/npm ci\b/);
    expect(text).toMatch(/npx tsc -p tsconfig\.build\.json/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it('installs ffmpeg and pocketsphinx in the runtime stage and runs as a non-root user', () => {
    const apt = runtime.find((l) => /apt-get install/.test(l));
    expect(apt).toBeDefined();
    for (const pkg of ['ffmpeg', 'pocketsphinx', 'pocketsphinx-en-us']) expect(apt!.split(/\s+/)).toContain(pkg);
    const users = runtime.filter((l) => /^USER\s/i.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '0:0']).not.toContain(users.at(-1));
  });

  it('ships dist, production node_modules and proto, checks /health, and starts dist/src/main.js', () => {
    const text = runtime.join('\n');
    expect(text).toMatch(/COPY --from=\S+ \/app\/dist \.\/dist/);
    expect(text).toMatch(/COPY --from=\S+ \/app\/node_modules \.\/node_modules/);
    expect(text).toMatch(/COPY --from=\S+ \/app\/package\.json/);
    expect(text).toMatch(/^COPY proto \.\/proto$/m);
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/\/health/);
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/src/main.js"]');
  });

  it('copies only paths that exist and that .dockerignore lets through', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = instructions
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources).toEqual(expect.arrayContaining(['src', 'migrations', 'proto', 'package.json', 'package-lock.json']));
    for (const source of sources) {
      // proto/ comes from another change; every other source must exist now.
      if (source !== 'proto') expect({ source, exists: existsSync(path.join(ROOT, source)) }).toEqual({ source, exists: true });
      expect({ source, ignored: ignored.includes(source) }).toEqual({ source, ignored: false });
    }
  });
});
