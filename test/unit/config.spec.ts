import { AppConfig, ConfigValidationError, corsOrigins, loadConfig, parseEnv } from '../../src/config/app-config.js';
import { loadEnvironment } from '../../src/bootstrap.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.APP_ROLE).toBe('all');
    expect(c.REDIS_JOB_TTL).toBe(3600);
    expect(c.MAX_FILE_SIZE).toBe(2147483648);
    expect(c.PORT).toBe(8000);
    expect(c.MAX_TEMP_AGE_HOURS).toBe(24);
    expect(c.DEFAULT_TRANSCRIPTION_ENGINE).toBe('pocketsphinx');
  });

  it('parses numbers and treats empty strings as unset', () => {
    const c = loadConfig({ PORT: '9001', REDIS_JOB_TTL: '', MAX_FILE_SIZE: '1024' });
    expect(c.PORT).toBe(9001);
    expect(c.REDIS_JOB_TTL).toBe(3600);
    expect(c.MAX_FILE_SIZE).toBe(1024);
  });

  it('reports every bad variable in one error, core and engine sections together', () => {
    let error: unknown;
    try {
      loadEnvironment({ APP_ROLE: 'both', PORT: 'eighty', DATABASE_URL: 'mysql://x', REDIS_JOB_TTL: '-5', POCKETSPHINX_ENABLED: 'maybe' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    for (const name of ['APP_ROLE', 'PORT', 'DATABASE_URL', 'REDIS_JOB_TTL', 'POCKETSPHINX_ENABLED']) expect(message).toContain(name);
    expect((error as ConfigValidationError).problems.length).toBeGreaterThanOrEqual(5);
  });

  it('ignores variables it does not declare', () => {
    const { value, problems } = parseEnv(AppConfig, { HOME: '/root', PORT: '1234' });
    expect(problems).toEqual([]);
    expect((value as unknown as Record<string, unknown>).HOME).toBeUndefined();
  });

  it('turns CORS_ORIGIN into Nest cors options', () => {
    expect(corsOrigins(loadConfig({ CORS_ORIGIN: '*' }))).toBe(true);
    expect(corsOrigins(loadConfig({ CORS_ORIGIN: 'https://a.example, https://b.example' }))).toEqual(['https://a.example', 'https://b.example']);
  });

  it('leaves pocketsphinx out when disabled', () => {
    expect(loadEnvironment({ POCKETSPHINX_ENABLED: 'false' }).engines.map((e) => e.id)).toEqual([]);
    expect(loadEnvironment({}).engines.map((e) => e.id)).toEqual(['pocketsphinx']);
  });
});
