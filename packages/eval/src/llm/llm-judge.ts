/**
 * The `llm` judge: any OpenAI-compatible chat-completions endpoint (`POST {baseUrl}/chat/completions`).
 *
 * - Pairwise: AlpacaEval's prompt. Each pair is shown in an order drawn from a seeded Rng per pair
 *   (the same order for (a, b) and (b, a)), and the verdict is mapped back, so position bias averages out
 *   over items instead of always favouring one side.
 * - Single answer: MT-Bench's 1–10 prompts from the shipped judge_prompts.
 * - Faults: each request has a timeout; timeouts, connection errors, 429 and 5xx are retried with
 *   exponential backoff (a Retry-After header is honoured), and so is a malformed body (not JSON, or
 *   JSON without `choices[0].message.content`), as proxies sometimes send one. When the retries run out
 *   the judge throws a QuorumError with code `E_JUDGE` naming the last problem. Other 4xx fail at once.
 *   A reply without a readable verdict (`m`/`M`, `[[rating]]`) also throws `E_JUDGE` and is not cached.
 *   Callers that grade many items (the `quorum eval` command) record such items as failed and go on.
 * - Verdicts: when the endpoint returns log-probs, P(m) decides the winner (AlpacaEval 2.0's weighted
 *   judges); the reply's text decides only without them (or at P = 0.5). A reply whose text names the
 *   other output than its log-probs is a *conflict*: the verdict carries `conflict: { token, logprobs }`
 *   (both readings, as `a`/`b`), the cached record `conflict: true`, and the logger gets a warning.
 * - Cache: verdicts are appended to a JSONL file keyed by sha256(model + prompt) (see cache.ts).
 * - Secrets: the API key is sent only in the Authorization header; it is kept in a closure (not a
 *   property) and masked (`***`, see secrets.ts) in everything the judge writes or says: cached replies,
 *   log lines and errors; so is any Authorization-like value or bearer token an endpoint echoes. The key
 *   must be text: a number (what a command line may make of `apiKey=000123`) is refused, since it no
 *   longer holds the key as typed.
 */
import { ConfigError, type QuorumError, Rng, resolveOptions, sha256Hex } from '@quorum/core';
import { datasets, type JudgePrompt } from '@quorum/data';
import { z } from 'zod';
import { type CompareItem, type Judge, judgeError, type ScoreItem, type Verdict } from '../judge.js';
import { type CacheEntry, cacheKey, VerdictCache } from './cache.js';
import {
  type ChatMessage,
  pairwiseMessages,
  parsePairwise,
  parseRating,
  singleMessages,
  type TopLogprobs,
} from './prompts.js';
import { maskSecrets, secretForms } from './secrets.js';

/** Quorum's own variables for unset options; they take precedence over the OpenAI ones. */
export const JUDGE_ENV = {
  baseUrl: 'QUORUM_JUDGE_BASE_URL',
  model: 'QUORUM_JUDGE_MODEL',
  apiKey: 'QUORUM_JUDGE_API_KEY',
} as const;

/** The conventional variables of OpenAI's SDKs, read when Quorum's own are unset or empty. */
export const OPENAI_ENV = {
  baseUrl: 'OPENAI_BASE_URL',
  apiKey: 'OPENAI_API_KEY',
} as const;

/** The first value that is set and not empty. */
function firstSet(...values: readonly (string | undefined)[]): string | undefined {
  return values.find((v) => v !== undefined && v !== '');
}

/**
 * The key as text. A number is refused rather than turned back into text: `000123` read as 123, or a long
 * digit string past 2^53, would send another key. The message never shows the value.
 */
const apiKeyText = z.custom<string>((v) => typeof v === 'string', {
  error: `must be text, not a number (a number loses leading zeros and digits, so the key sent would not be yours): set ${JUDGE_ENV.apiKey} (or ${OPENAI_ENV.apiKey}) instead, or write the key as a JSON string in a config file`,
});

export const llmJudgeOptions = z
  .object({
    /** e.g. `https://api.openai.com/v1`; default: env QUORUM_JUDGE_BASE_URL, else OPENAI_BASE_URL. */
    baseUrl: z.string().optional(),
    /** e.g. `gpt-4-turbo`; default: env QUORUM_JUDGE_MODEL. */
    model: z.string().optional(),
    /**
     * Bearer token, sent exactly as given; default: env QUORUM_JUDGE_API_KEY, else OPENAI_API_KEY (none sent
     * when both are unset). Text only: a number is refused (it cannot hold leading zeros).
     */
    apiKey: apiKeyText.optional(),
    /** One request's limit, body included. Judges of long answers can take a while. */
    timeoutMs: z.number().int().positive().default(60_000),
    /** Attempts after the first on timeouts, connection errors, 429, 5xx and malformed bodies. */
    retries: z.number().int().min(0).default(5),
    /** First backoff; doubled after each failure up to maxBackoffMs. */
    backoffMs: z.number().min(0).default(1000),
    maxBackoffMs: z.number().min(0).default(60_000),
    /** Append-only JSONL verdict cache; unset keeps verdicts in memory only. */
    cache: z.string().optional(),
    /** Seeds the presentation order of each pair. */
    seed: z.number().int().default(0),
    /** Ask for the first token's log-probs (AlpacaEval 2.0's weighted verdict gives p). Off for endpoints that refuse them. */
    logprobs: z.boolean().default(true),
    /** Reply budget of single-answer grading (MT-Bench explains, then rates). */
    maxTokens: z.number().int().positive().default(2048),
  })
  .strict();
export type LlmJudgeOptions = z.input<typeof llmJudgeOptions>;

/** What the plain factory takes besides the options. */
export interface LlmJudgeEnvironment {
  /** Where unset options come from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** MT-Bench judge prompts (default: the shipped ones). */
  readonly judgePrompts?: readonly JudgePrompt[];
  /** Called with a line about each retry and each verdict conflict (never holds the key). */
  readonly log?: (message: string) => void;
}

/** A pairwise verdict of the `llm` judge. */
export interface LlmVerdict extends Verdict {
  /**
   * Set when the reply's text and its log-probs name different winners (both readings, as `a`/`b`);
   * `winner` and `p` follow the log-probs.
   */
  readonly conflict?: { readonly token: 'a' | 'b'; readonly logprobs: 'a' | 'b' };
}

/** Counters of a judge's traffic. */
export interface LlmJudgeStats {
  /** HTTP requests sent (every attempt). */
  readonly requests: number;
  readonly retries: number;
  readonly cacheHits: number;
}

export interface LlmJudge extends Judge {
  readonly model: string;
  readonly cache: VerdictCache;
  compare(item: CompareItem): Promise<LlmVerdict>;
  /** MT-Bench single-answer grade, 1–10. */
  score(item: ScoreItem): Promise<number>;
  stats(): LlmJudgeStats;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** The first 60 characters of `text` on one line, for log lines. */
function excerptOf(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 60 ? `${t.slice(0, 60)}…` : t;
}

/** The longest a Retry-After is honoured. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * Builds the judge (plain factory). Each unset (or empty) option is read from Quorum's variable, then
 * OpenAI's: base URL from QUORUM_JUDGE_BASE_URL, then OPENAI_BASE_URL; key from QUORUM_JUDGE_API_KEY,
 * then OPENAI_API_KEY; model from QUORUM_JUDGE_MODEL. There is no default endpoint: without a base URL
 * the judge refuses to start rather than send answers somewhere unasked.
 */
export function llmJudge(input: LlmJudgeOptions = {}, environment: LlmJudgeEnvironment = {}): LlmJudge {
  const o = resolveOptions(llmJudgeOptions, input, 'judge(llm)');
  const env = environment.env ?? process.env;
  const baseUrl = firstSet(o.baseUrl, env[JUDGE_ENV.baseUrl], env[OPENAI_ENV.baseUrl]);
  const model = firstSet(o.model, env[JUDGE_ENV.model]);
  const apiKey = firstSet(o.apiKey, env[JUDGE_ENV.apiKey], env[OPENAI_ENV.apiKey]);
  const secrets = secretForms(apiKey);
  const scrub = (text: string): string => maskSecrets(text, secrets);
  if (baseUrl === undefined) {
    throw new ConfigError('the llm judge needs a base URL', {
      location: { field: 'judge(llm).baseUrl' },
      hint: `set ${JUDGE_ENV.baseUrl} or ${OPENAI_ENV.baseUrl} (e.g. https://api.openai.com/v1) or pass --judge-opt baseUrl=URL`,
    });
  }
  if (model === undefined) {
    throw new ConfigError('the llm judge needs a model name', {
      location: { field: 'judge(llm).model' },
      hint: `set ${JUDGE_ENV.model} (e.g. gpt-4-turbo) or pass --judge-opt model=NAME`,
    });
  }
  let url: URL;
  try {
    url = new URL(`${baseUrl.replace(/\/+$/, '')}/chat/completions`);
  } catch {
    throw new ConfigError(`the llm judge's base URL ${JSON.stringify(scrub(baseUrl))} is not a URL`, {
      location: { field: 'judge(llm).baseUrl' },
      hint: 'write it as http(s)://host[:port]/v1',
    });
  }
  const where = scrub(`${url.origin}${url.pathname}`);
  const log = (message: string): void => environment.log?.(scrub(message));
  const fail = (message: string, hint: string): QuorumError => judgeError(scrub(message), scrub(hint));
  const cache = new VerdictCache(o.cache, { mask: scrub });
  const rng = new Rng(o.seed);
  const inflight = new Map<string, Promise<CacheEntry>>();
  let requests = 0;
  let retries = 0;
  let cacheHits = 0;

  const excerpt = (text: string): string => {
    const t = scrub(text).replace(/\s+/g, ' ');
    return JSON.stringify(t.length > 120 ? `${t.slice(0, 120)}…` : t);
  };

  /** One chat completion with timeouts and retries; returns the reply text and first-token log-probs. */
  async function chat(
    messages: readonly ChatMessage[],
    extra: Record<string, unknown>,
  ): Promise<{ content: string; top: TopLogprobs | undefined }> {
    const body = JSON.stringify({ model, messages, temperature: 0, ...extra });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    let problem = '';
    let delay = 0;
    for (let attempt = 0; attempt <= o.retries; attempt++) {
      if (attempt > 0) {
        retries++;
        log(`judge: ${problem}; retry ${attempt}/${o.retries} in ${Math.round(delay)} ms`);
        await sleep(delay);
      }
      const backoff = Math.min(o.maxBackoffMs, o.backoffMs * 2 ** attempt);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), o.timeoutMs);
      let status: number;
      let text: string;
      let retryAfter: number | undefined;
      requests++;
      try {
        const res = await fetch(url, { method: 'POST', headers, body, signal: controller.signal });
        status = res.status;
        retryAfter = retryAfterMs(res.headers.get('retry-after'));
        text = await res.text();
      } catch (error) {
        const cause = (error as { cause?: { code?: unknown } }).cause;
        const code = typeof cause?.code === 'string' ? cause.code : (error as Error).name;
        problem = controller.signal.aborted
          ? `no answer within ${o.timeoutMs} ms`
          : `connection failed (${code})`;
        delay = backoff;
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (status === 429 || status >= 500) {
        problem = `HTTP ${status} ${excerpt(text)}`;
        delay = retryAfter === undefined ? backoff : Math.min(retryAfter, MAX_RETRY_AFTER_MS);
        continue;
      }
      if (status < 200 || status >= 300) {
        const hint =
          status === 401 || status === 403
            ? `check the API key (${JUDGE_ENV.apiKey} or --judge-opt apiKey=…)`
            : status === 404
              ? `check the base URL (it should end where /chat/completions is appended, e.g. …/v1) and the model name "${model}"`
              : 'check the model name; if the endpoint refuses log-probs, pass --judge-opt logprobs=false';
        throw fail(`the judge endpoint ${where} answered HTTP ${status}: ${excerpt(text)}`, hint);
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        problem = `malformed body (not JSON): ${excerpt(text)}`;
        delay = backoff;
        continue;
      }
      const choice = (json as { choices?: unknown })?.choices;
      const first = Array.isArray(choice) ? (choice[0] as Record<string, unknown> | undefined) : undefined;
      const content = (first?.message as { content?: unknown } | undefined)?.content;
      if (typeof content !== 'string') {
        problem = `malformed body (no choices[0].message.content): ${excerpt(text)}`;
        delay = backoff;
        continue;
      }
      const lp = (first?.logprobs as { content?: { top_logprobs?: unknown }[] } | undefined)?.content?.[0]
        ?.top_logprobs;
      const top = Array.isArray(lp)
        ? (lp.filter(
            (t) => typeof t?.token === 'string' && typeof t?.logprob === 'number',
          ) as unknown as TopLogprobs)
        : undefined;
      return { content, top };
    }
    throw fail(
      `the judge endpoint ${where} failed ${o.retries + 1} time${o.retries === 0 ? '' : 's'}; last: ${problem}`,
      'check that the endpoint is up; raise --judge-opt retries=N or timeoutMs=MS for a slow or busy one',
    );
  }

  /** The cached reply to `messages`, or a fresh one (appended to the cache before returning). */
  function ask(
    kind: 'pairwise' | 'single',
    messages: readonly ChatMessage[],
    extra: Record<string, unknown>,
    valid: (entry: CacheEntry) => boolean,
  ): Promise<CacheEntry> {
    const key = cacheKey(model as string, messages);
    const hit = cache.get(key);
    if (hit !== undefined && valid(hit)) {
      cacheHits++;
      return Promise.resolve(hit);
    }
    const pending = inflight.get(key);
    if (pending !== undefined) return pending;
    const run = (async () => {
      const reply = await chat(messages, extra);
      // Masked before it is read, kept or written: what is cached reads back to the same verdict.
      const content = scrub(reply.content);
      const reading = kind === 'pairwise' ? parsePairwise(content, reply.top) : undefined;
      const entry: CacheEntry = {
        key,
        model: scrub(model as string),
        kind,
        content,
        ...(reading?.pFirst === undefined ? {} : { pFirst: reading.pFirst }),
        ...(reading?.conflict === undefined ? {} : { conflict: reading.conflict }),
        time: new Date().toISOString(),
      };
      if (!valid(entry)) {
        throw fail(
          `the judge's reply has no ${kind === 'pairwise' ? 'model identifier (m or M)' : '[[rating]] from 1 to 10'}: ${excerpt(content)}`,
          kind === 'pairwise'
            ? 'use a model that follows the AlpacaEval prompt (or enable logprobs); the item is not cached'
            : 'use a model that follows the MT-Bench format "Rating: [[5]]"; the item is not cached',
        );
      }
      return cache.put(entry);
    })().finally(() => inflight.delete(key));
    inflight.set(key, run);
    return run;
  }

  const readPair = (e: CacheEntry) =>
    parsePairwise(
      e.content,
      e.pFirst === undefined
        ? undefined
        : [
            { token: 'm', logprob: Math.log(e.pFirst) },
            { token: 'M', logprob: Math.log(1 - e.pFirst) },
          ],
    );
  const readRating = (e: CacheEntry): number | undefined => {
    const r = parseRating(e.content);
    return r !== undefined && r >= 1 && r <= 10 ? r : undefined;
  };
  let prompts: Promise<readonly JudgePrompt[]> | undefined;
  /** Keys of the conflicting verdicts already reported by this judge (one warning per verdict). */
  const warned = new Set<string>();

  return {
    name: 'llm',
    model,
    cache,
    stats: () => ({ requests, retries, cacheHits }),
    async compare(item: CompareItem): Promise<LlmVerdict> {
      const input = item.input ?? '';
      if (item.a === item.b) return { winner: 'tie', p: 0.5 };
      // The order depends on the unordered pair only: compare(a, b) and compare(b, a) send one prompt.
      const [lo, hi] = item.a < item.b ? [item.a, item.b] : [item.b, item.a];
      const label = sha256Hex(JSON.stringify([item.instruction, input, lo, hi]));
      const loFirst = rng.fork(label).uniform() < 0.5;
      const first = loFirst ? lo : hi;
      const second = loFirst ? hi : lo;
      const extra: Record<string, unknown> = { max_tokens: 1 };
      if (o.logprobs) Object.assign(extra, { logprobs: true, top_logprobs: 5 });
      const entry = await ask(
        'pairwise',
        pairwiseMessages(item.instruction, input, first, second),
        extra,
        (e) => readPair(e) !== undefined,
      );
      const reading = readPair(entry)!;
      const firstIsA = first === item.a;
      const side = (shown: 'first' | 'second'): 'a' | 'b' => ((shown === 'first') === firstIsA ? 'a' : 'b');
      const winner = side(reading.choice);
      if (reading.pFirst === undefined) return { winner };
      const p = firstIsA ? reading.pFirst : 1 - reading.pFirst;
      if (reading.conflict === undefined || reading.token === undefined) return { winner, p };
      if (!warned.has(entry.key)) {
        warned.add(entry.key);
        log(
          `judge: verdict conflict on "${excerptOf(item.instruction)}": the reply says ${reading.token === 'first' ? 'm' : 'M'} (answer ${side(reading.token)}) but its log-probs give P(m) = ${reading.pFirst.toFixed(3)} (answer ${winner}); the log-probs decide`,
        );
      }
      return { winner, p, conflict: { token: side(reading.token), logprobs: winner } };
    },
    async score(item: ScoreItem): Promise<number> {
      prompts ??=
        environment.judgePrompts !== undefined
          ? Promise.resolve(environment.judgePrompts)
          : datasets.mtBench().then((d) => d.judgePrompts);
      const messages = singleMessages(await prompts, item);
      const entry = await ask(
        'single',
        messages,
        { max_tokens: o.maxTokens },
        (e) => readRating(e) !== undefined,
      );
      return readRating(entry)!;
    },
  };
}
