import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { EngineRegistry } from './engine-registry.js';
import type { EngineHealth } from './engine.spec.js';

/** Cached health of one engine, as `/engines` reports it (never the probe's `internal` diagnostics). */
export interface EngineHealthState extends Omit<EngineHealth, 'internal'> {
  /** ISO time of the last finished probe, or null before the first one. */
  checked_at: string | null;
  /** Milliseconds the last probe took. */
  latency_ms: number | null;
}

/**
 * Probes every registered engine periodically (ENGINE_HEALTH_INTERVAL seconds, each probe bounded
 * by ENGINE_HEALTH_TIMEOUT_MS) and caches the outcome, so `/engines` never waits on a dead engine.
 * Logs only when an engine's availability changes.
 */
@Injectable()
export class EngineHealthService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(EngineHealthService.name);
  private readonly states = new Map<string, EngineHealthState>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly registry: EngineRegistry,
    private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    void this.probeAll();
    this.timer = setInterval(() => void this.probeAll(), this.config.ENGINE_HEALTH_INTERVAL * 1000);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Cached state of one engine; `available: false` with a message before the first probe finishes. */
  state(id: string): EngineHealthState {
    return this.states.get(id) ?? { available: false, message: 'not probed yet', checked_at: null, latency_ms: null };
  }

  /** Probes every engine now (concurrently) and updates the cache; concurrent calls share one run. */
  probeAll(): Promise<void> {
    this.running ??= Promise.all(this.registry.all().map((e) => this.probe(e.id))).then(
      () => { this.running = undefined; },
      () => { this.running = undefined; },
    );
    return this.running;
  }

  private async probe(id: string): Promise<void> {
    const engine = this.registry.get(id);
    const started = Date.now();
    const signal = AbortSignal.timeout(this.config.ENGINE_HEALTH_TIMEOUT_MS);
    let health: EngineHealth;
    try {
      health = await Promise.race([
        engine.health(signal),
        new Promise<EngineHealth>((resolve) =>
          signal.addEventListener('abort', () =>
            resolve({ available: false, message: `health probe timed out after ${this.config.ENGINE_HEALTH_TIMEOUT_MS} ms` }),
          ),
        ),
      ]);
    } catch (err) {
      // Adapters must not throw here; when one does, its error text stays in the log.
      health = { available: false, message: 'health probe failed', internal: { error: err instanceof Error ? err.message : String(err) } };
    }
    const { internal, ...visible } = health;
    const previous = this.states.get(id);
    this.states.set(id, { ...visible, checked_at: new Date().toISOString(), latency_ms: Date.now() - started });
    if (previous?.available !== health.available) {
      const line = `engine ${id} is ${health.available ? 'available' : 'unavailable'}${health.message ? `: ${health.message}` : ''}`;
      const context = { engine: id, ...(internal ? { internal } : {}) };
      if (health.available) this.logger.log(line, context);
      else this.logger.warn(line, context);
    }
  }
}
