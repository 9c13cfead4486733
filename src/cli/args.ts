import path from 'node:path';
import { parseArgs } from 'node:util';
import { RESULT_FORMATS, type ResultFormat, type SubmitRequest } from './client.js';

/**
 * Command-line parsing of the `transcribe` CLI: argv in, a typed command out, UsageError for
 * anything wrong (exit code 2). Pure (no I/O): the environment is passed in.
 */

/** Where the gateway is when neither `--url` nor TRANSCRIBE_URL says (the port scripts/start.sh serves on). */
export const DEFAULT_URL = 'http://localhost:8000';

/** Speaker-roles strategies the API accepts (`speaker_roles` field). */
const SPEAKER_ROLES = ['none', 'first_speaker', 'keywords'] as const;

/** Bad command line: unknown command or option, missing argument, invalid value. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Gateway address and credentials, shared by every command. */
export interface Connection {
  /** Gateway root URL, without a trailing slash. */
  url: string;
  apiKey?: string;
}

export type CliCommand =
  | { kind: 'help'; text: string }
  | {
      kind: 'transcribe';
      connection: Connection;
      request: SubmitRequest;
      format: ResultFormat;
      /** Write the transcript here instead of stdout. */
      output?: string;
      /** False with `--no-wait`: print the submission answer and return at once. */
      wait: boolean;
    }
  | { kind: 'engines'; connection: Connection; json: boolean }
  | { kind: 'status'; connection: Connection; jobId: string }
  | { kind: 'result'; connection: Connection; jobId: string; format: ResultFormat; output?: string };

export const HELP = `transcribe: command-line client of the transcription gateway

Usage:
  transcribe FILE|URL [options]     upload a recording (or have the gateway fetch a URL),
                                    follow its progress, print the transcript
  transcribe engines [--json]       list the engines, their availability and capabilities
  transcribe status JOB_ID          print a job's status (JSON)
  transcribe result JOB_ID [--format F] [--output PATH]
                                    print a finished job's transcript

Transcription options:
  -e, --engine ID          engine id (pocketsphinx, whisper-rocm, whisperx, riva); default: the gateway's
  -l, --language CODE      spoken language, e.g. en or en-US; default: engine default or detection
  -m, --model NAME         engine model (see 'transcribe engines')
      --diarize, --no-diarize
                           ask for (or turn off) speaker diarization
      --min-speakers N, --max-speakers N
                           bounds for diarization (1-20)
      --translate          English text from speech in any language (task=translate; engines
                           with translation: whisper-rocm, whisperx, openai); -l names the
                           spoken language
      --multichannel       transcribe each channel on its own (speaker = channel)
      --speaker-roles S    none | first_speaker | keywords
      --role-names LIST    role names for --speaker-roles, in order, e.g. agent,caller
      --role-keywords JSON keywords per role (--speaker-roles keywords),
                           e.g. '{"agent":["help","order"],"caller":["my"]}'
      --prompt TEXT        text that biases recognition (Whisper engines)
      --context-id UUID    a stored word-boosting context
      --callback-url URL   the gateway POSTs a signed notice there when the job ends
      --audio-url URL      have the gateway download the recording (instead of FILE)
      --no-wait            print the job id and return without waiting

Output:
  -f, --format F           json | txt | srt | vtt (default: from --output's extension, else txt)
  -o, --output PATH        write the transcript to PATH instead of stdout

Connection:
  -u, --url URL            gateway address (env TRANSCRIBE_URL; default ${DEFAULT_URL})
  -k, --api-key KEY        API key, sent as "Authorization: Bearer KEY" (env TRANSCRIBE_API_KEY)
  -h, --help               this help

Progress goes to stderr (a bar on a terminal, one line per stage otherwise); the transcript
goes to stdout or --output.

Exit codes: 0 done; 1 the job failed; 2 usage error (bad option, unreadable file);
3 the gateway answered with an error (its message is printed); 4 cannot connect.
`;

const OPTIONS = {
  engine: { type: 'string', short: 'e' },
  language: { type: 'string', short: 'l' },
  model: { type: 'string', short: 'm' },
  diarize: { type: 'boolean' },
  'min-speakers': { type: 'string' },
  'max-speakers': { type: 'string' },
  multichannel: { type: 'boolean' },
  translate: { type: 'boolean' },
  'speaker-roles': { type: 'string' },
  'role-names': { type: 'string' },
  'role-keywords': { type: 'string' },
  'callback-url': { type: 'string' },
  prompt: { type: 'string' },
  'context-id': { type: 'string' },
  'audio-url': { type: 'string' },
  wait: { type: 'boolean' },
  format: { type: 'string', short: 'f' },
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
  url: { type: 'string', short: 'u' },
  'api-key': { type: 'string', short: 'k' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const CONNECTION: OptionName[] = ['url', 'api-key', 'help'];
const ALLOWED: Record<'transcribe' | 'engines' | 'status' | 'result', OptionName[]> = {
  transcribe: [
    ...CONNECTION, 'engine', 'language', 'model', 'diarize', 'min-speakers', 'max-speakers', 'multichannel', 'translate',
    'speaker-roles', 'role-names', 'role-keywords', 'prompt', 'context-id', 'callback-url', 'audio-url', 'wait', 'format', 'output',
  ],
  engines: [...CONNECTION, 'json'],
  status: [...CONNECTION],
  result: [...CONNECTION, 'format', 'output'],
};

/** A `http(s)://` gateway URL without trailing slashes. @throws UsageError */
function gatewayUrl(value: string, from: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${from} must be an http:// or https:// URL, got '${value}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${from} must be an http:// or https:// URL, got '${value}'`);
  return value.replace(/\/+$/, '');
}

/** `--format`, else the `--output` extension when it names a format, else `txt`. @throws UsageError */
function resultFormat(format: string | undefined, output: string | undefined): ResultFormat {
  if (format !== undefined) {
    const f = format.toLowerCase();
    if (!(RESULT_FORMATS as readonly string[]).includes(f)) throw new UsageError(`--format must be one of ${RESULT_FORMATS.join(', ')}, got '${format}'`);
    return f as ResultFormat;
  }
  const ext = output ? path.extname(output).slice(1).toLowerCase() : '';
  return (RESULT_FORMATS as readonly string[]).includes(ext) ? (ext as ResultFormat) : 'txt';
}

function speakers(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 20) throw new UsageError(`${flag} must be an integer between 1 and 20, got '${value}'`);
  return String(Number(value));
}

/**
 * Parses `process.argv.slice(2)`.
 *
 * @param env for TRANSCRIBE_URL and TRANSCRIBE_API_KEY (flags win).
 * @throws UsageError for an unknown command or option, a missing or extra argument, an option
 *         that does not apply to the command, or an invalid value.
 */
export function parseCliArgs(argv: string[], env: Record<string, string | undefined> = {}): CliCommand {
  const parsed = (() => {
    try {
      return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, allowNegative: true, strict: true });
    } catch (err) {
      // parseArgs explains the problem (unknown option, missing value) in its message.
      throw new UsageError((err as Error).message.replace(/\. To specify a positional argument[\s\S]*$/, ''));
    }
  })();
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help', text: HELP };
  if (positionals.length === 0 && values['audio-url'] === undefined) throw new UsageError('missing FILE or command (transcribe FILE, engines, status ID, result ID)');

  const first = positionals[0];
  const command = first === 'engines' || first === 'status' || first === 'result' ? first : 'transcribe';
  const args = command === 'transcribe' ? positionals : positionals.slice(1);
  for (const name of Object.keys(values) as OptionName[]) {
    if (!ALLOWED[command].includes(name)) throw new UsageError(`--${name} does not apply to '${command}'`);
  }
  // allowNegative accepts `--no-` for every boolean; only --no-diarize and --no-wait mean something.
  for (const arg of argv) {
    if (arg === '--') break;
    if (/^--no-/.test(arg) && arg !== '--no-diarize' && arg !== '--no-wait') throw new UsageError(`unknown option '${arg}'`);
  }
  if (values.wait === true) throw new UsageError("unknown option '--wait' (did you mean --no-wait?)");

  const urlValue = values.url ?? env.TRANSCRIBE_URL;
  const connection: Connection = {
    url: gatewayUrl(urlValue ?? DEFAULT_URL, values.url !== undefined ? '--url' : urlValue !== undefined ? 'TRANSCRIBE_URL' : '--url'),
    ...((values['api-key'] ?? env.TRANSCRIBE_API_KEY) ? { apiKey: values['api-key'] ?? env.TRANSCRIBE_API_KEY } : {}),
  };

  if (command === 'engines') {
    if (args.length > 0) throw new UsageError(`'engines' takes no arguments, got '${args.join(' ')}'`);
    return { kind: 'engines', connection, json: values.json === true };
  }
  if (command === 'status' || command === 'result') {
    if (args.length !== 1) throw new UsageError(`'${command}' takes one JOB_ID (the job_id a submission printed)`);
    const jobId = args[0];
    if (command === 'status') return { kind: 'status', connection, jobId };
    return { kind: 'result', connection, jobId, format: resultFormat(values.format, values.output), ...(values.output ? { output: values.output } : {}) };
  }

  // transcribe: one FILE, or a URL (positional or --audio-url) the gateway fetches.
  if (args.length > 1) throw new UsageError(`one FILE at a time, got ${args.length}: ${args.join(' ')}`);
  const positional = args[0];
  const audioUrl = values['audio-url'] ?? (positional !== undefined && /^https?:\/\//i.test(positional) ? positional : undefined);
  if (values['audio-url'] !== undefined && positional !== undefined) throw new UsageError('give either FILE or --audio-url, not both');
  if (audioUrl !== undefined && !/^https?:\/\/\S+$/i.test(audioUrl)) throw new UsageError(`--audio-url must be an http:// or https:// URL, got '${audioUrl}'`);
  if (audioUrl === undefined && positional === undefined) throw new UsageError('missing FILE (or --audio-url URL)');
  const roles = values['speaker-roles'];
  if (roles !== undefined && !(SPEAKER_ROLES as readonly string[]).includes(roles)) throw new UsageError(`--speaker-roles must be one of ${SPEAKER_ROLES.join(', ')}, got '${roles}'`);
  const min = speakers(values['min-speakers'], '--min-speakers');
  const max = speakers(values['max-speakers'], '--max-speakers');
  if (min !== undefined && max !== undefined && Number(min) > Number(max)) throw new UsageError(`--min-speakers (${min}) is larger than --max-speakers (${max})`);

  // Field names are the API's (SubmitJobDto); options not given are not sent, so the gateway's defaults apply.
  const fields: Record<string, string> = {};
  const set = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== '') fields[name] = value;
  };
  set('engine', values.engine);
  set('language', values.language);
  set('model', values.model);
  if (values.diarize !== undefined) fields.enable_diarization = String(values.diarize);
  set('min_speakers', min);
  set('max_speakers', max);
  if (values.multichannel) fields.multichannel = 'true';
  if (values.translate) fields.task = 'translate';
  set('speaker_roles', roles);
  set('speaker_role_names', values['role-names']);
  set('speaker_role_keywords', values['role-keywords']);
  set('prompt', values.prompt);
  set('context_id', values['context-id']);
  set('callback_url', values['callback-url']);

  return {
    kind: 'transcribe',
    connection,
    request: { source: audioUrl !== undefined ? { audioUrl } : { file: positional }, fields },
    format: resultFormat(values.format, values.output),
    ...(values.output ? { output: values.output } : {}),
    wait: values.wait !== false,
  };
}
