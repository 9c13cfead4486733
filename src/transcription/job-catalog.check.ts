import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { EngineRegistry } from '../engines/engine-registry.js';
import { CatalogWorkerHost, type CatalogHandler } from './catalog-worker-host.js';
import { CATALOG_JOB_NAMES, chunkQueueName, QueueName } from './job-catalog.js';

/**
 * Compares the handlers found with the catalog: every job name of every queue needs exactly one
 * handler, and no handler may serve a queue or job name the catalog does not list.
 * @param expected queue name → job names (chunk queues expanded per engine).
 * @returns one line per problem; empty when the catalog and the handlers agree.
 */
export function catalogProblems(expected: ReadonlyMap<string, readonly string[]>, handlers: readonly CatalogHandler[]): string[] {
  const problems: string[] = [];
  const count = new Map<string, number>();
  for (const h of handlers) {
    const names = expected.get(h.queueName);
    for (const name of h.handles) {
      if (!names?.includes(name)) problems.push(`a processor handles '${name}' on queue ${h.queueName}, which the job catalog does not list`);
      const key = `${h.queueName}/${name}`;
      count.set(key, (count.get(key) ?? 0) + 1);
    }
  }
  for (const [queue, names] of expected) {
    for (const name of names) {
      const n = count.get(`${queue}/${name}`) ?? 0;
      if (n === 0) problems.push(`job '${name}' on queue ${queue} has no handler`);
      if (n > 1) problems.push(`job '${name}' on queue ${queue} has ${n} handlers`);
    }
  }
  return problems;
}

/**
 * Worker role: fails the boot when the processors registered in this process and the job catalog
 * (job-catalog.ts) disagree — a job name with no handler would wait forever, one with two would
 * run twice.
 */
@Injectable()
export class JobCatalogCheck implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly registry: EngineRegistry,
  ) {}

  /** @throws Error listing every mismatch. */
  onApplicationBootstrap(): void {
    const expected = new Map<string, readonly string[]>([
      [QueueName.Transcription, CATALOG_JOB_NAMES[QueueName.Transcription]],
      [QueueName.Maintenance, CATALOG_JOB_NAMES[QueueName.Maintenance]],
      ...this.registry.all().map((e) => [chunkQueueName(e.id), CATALOG_JOB_NAMES.chunks] as const),
    ]);
    const handlers = this.discovery
      .getProviders()
      .map((w) => w.instance as unknown)
      .filter((i): i is CatalogWorkerHost => i instanceof CatalogWorkerHost);
    const problems = catalogProblems(expected, handlers);
    if (problems.length) throw new Error(`job catalog and processors disagree:\n- ${problems.join('\n- ')}`);
  }
}
