import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';

/** BullMQ's highest priority number (priorities run 1 = first … 2^21 − 1 = last). */
export const MAX_BULLMQ_PRIORITY = 2 ** 21 - 1;

/** The fair-scheduling state of a lane is dropped after this long without a new job (ms): nothing is left behind. */
const STATE_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * Start-time fair queueing on one BullMQ queue ("lane"), in one atomic script (every API replica
 * and worker shares it through Redis).
 *
 * Each API key has a finish tag F (virtual seconds). An item of `cost` audio seconds for a key of
 * weight w gets the start tag S = max(V, F) and moves F to S + cost / w. V, the lane's virtual
 * time, is the start tag of the next item to run (the head of the prioritized set), or, with
 * nothing waiting, the highest start tag handed out so far (the item now running). Items run in
 * order of S (BullMQ priority S + 1; equal priorities first in, first out), so a key that has had
 * fewer audio seconds of turns goes first, a newcomer starts at "now" rather than behind the whole
 * backlog, and a key of weight 4 advances four times slower than a key of weight 1.
 *
 * When the lane is idle (nothing waiting, running, delayed or waiting for children), the state is
 * reset, so tags start again from 0 and stay far below BullMQ's priority limit in practice.
 *
 * KEYS: state hash, prioritized zset, wait list, active list, delayed zset, waiting-children zset.
 * ARGV: key label, weight, ttl ms, cost₁ … costₙ (audio seconds). Returns the n start tags as strings.
 */
const ASSIGN_TAGS = `
local state = KEYS[1]
local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #head == 0 and redis.call('LLEN', KEYS[3]) == 0 and redis.call('LLEN', KEYS[4]) == 0
  and redis.call('ZCARD', KEYS[5]) == 0 and redis.call('ZCARD', KEYS[6]) == 0 then
  redis.call('DEL', state)
end
local v
if #head > 0 then
  v = math.max(0, math.floor(tonumber(head[2]) / 4294967296) - 1)
else
  v = tonumber(redis.call('HGET', state, 'max') or '0')
end
local fkey = 'f:' .. ARGV[1]
local weight = tonumber(ARGV[2])
local s = math.max(v, tonumber(redis.call('HGET', state, fkey) or '0'))
local out = {}
for i = 4, #ARGV do
  out[#out + 1] = string.format('%.6f', s)
  s = s + tonumber(ARGV[i]) / weight
end
redis.call('HSET', state, fkey, string.format('%.6f', s))
if #out > 0 and tonumber(out[#out]) > tonumber(redis.call('HGET', state, 'max') or '0') then
  redis.call('HSET', state, 'max', out[#out])
end
redis.call('PEXPIRE', state, ARGV[3])
return out
`;

/** What the scheduler needs of a BullMQ queue (a Queue satisfies it): its Redis keys and raw client. */
export interface FairLane {
  readonly keys: { readonly [name: string]: string };
  getBackend(): { readonly client: Promise<FairClient> };
}

/** The script-running part of BullMQ's Redis client interface. */
interface FairClient {
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  runCommand(name: string, args: string[]): Promise<unknown>;
}

const COMMAND = 'gatewayFairTags';

/**
 * Parses KEY_WEIGHTS (`label=weight,label=weight`) into label → weight; weights are clamped to
 * 0.01–100. @throws Error on a malformed pair (AppConfig has already rejected those at boot).
 */
export function parseKeyWeights(raw: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const pair of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([0-9a-f]{8}|anonymous)\s*=\s*(\d+(?:\.\d+)?)$/.exec(pair);
    if (!match) throw new Error(`KEY_WEIGHTS: '${pair}' is not <label>=<weight>`);
    weights.set(match[1], Math.min(100, Math.max(0.01, Number(match[2]))));
  }
  return weights;
}

/**
 * BullMQ priority of an item with start tag `tag` (virtual seconds): whole virtual seconds, from 1;
 * items within one virtual second of each other keep their submission order.
 */
export function priorityOfTag(tag: number): number {
  return Math.min(MAX_BULLMQ_PRIORITY, Math.floor(tag) + 1);
}

/**
 * Priorities for jobs and chunk jobs so that API keys take turns (docs/scheduling.md). Used by the
 * queue adapters (TranscriptionQueue, ChunkQueues) when they add jobs; the state lives in Redis
 * next to each queue (`<prefix>:<queue>:fair`).
 */
@Injectable()
export class FairScheduler {
  private readonly logger = new Logger(FairScheduler.name);
  private readonly weights: Map<string, number>;
  private warnedAtLimit = false;
  /** Clients the tag script is defined on (BullMQ keeps one client per queue). */
  private readonly defined = new WeakSet<FairClient>();

  constructor(private readonly config: AppConfig) {
    this.weights = parseKeyWeights(config.KEY_WEIGHTS);
  }

  /** Whether FAIR_SCHEDULING is on (off: no priorities, first in first out). */
  get enabled(): boolean {
    return this.config.FAIR_SCHEDULING;
  }

  /** A key's weight (KEY_WEIGHTS; 1 when not listed). */
  weight(keyLabel: string): number {
    return this.weights.get(keyLabel) ?? 1;
  }

  /**
   * BullMQ priorities of `costs.length` items of one key added to `queue` in this order.
   * @param costs audio seconds of each item (a chunk's length, or a whole job's duration); values
   *   under 1 s count as 1 s, so a burst of tiny jobs still takes turns.
   * @returns null when fair scheduling is off (add without a priority).
   * @throws whatever Redis throws (the caller's add fails the same way).
   */
  async priorities(queue: FairLane, keyLabel: string, costs: number[]): Promise<number[] | null> {
    if (!this.enabled) return null;
    if (costs.length === 0) return [];
    const client = await queue.getBackend().client;
    const { keys } = queue;
    const state = `${keys['']}fair`;
    if (!this.defined.has(client)) {
      client.defineCommand(COMMAND, { numberOfKeys: 6, lua: ASSIGN_TAGS });
      this.defined.add(client);
    }
    const raw = (await client.runCommand(COMMAND, [
      state, keys.prioritized, keys.wait, keys.active, keys.delayed, keys['waiting-children'],
      keyLabel, String(this.weight(keyLabel)), String(STATE_TTL_MS), ...costs.map((c) => String(Math.max(1, Number.isFinite(c) ? c : 1))),
    ])) as string[];
    const priorities = raw.map((t) => priorityOfTag(Number(t)));
    if (!this.warnedAtLimit && priorities.some((p) => p === MAX_BULLMQ_PRIORITY)) {
      this.warnedAtLimit = true;
      this.logger.warn(`fair scheduling reached BullMQ's priority limit on ${state}: the queue has not been idle for ${MAX_BULLMQ_PRIORITY} s of audio; late jobs run first in, first out until it drains`);
    }
    return priorities;
  }
}
