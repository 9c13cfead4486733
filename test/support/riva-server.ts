import * as grpc from '@grpc/grpc-js';
import { loadRivaPackageDefinition } from '../../src/engines/riva/riva.client.js';

/**
 * A Riva-protocol test server: a real @grpc/grpc-js server on 127.0.0.1 built from the project's
 * own proto (proto/riva/*.proto, proto/grpc/health/v1/health.proto), serving
 * nvidia.riva.asr.RivaSpeechRecognition/Recognize and GetRivaSpeechRecognitionConfig, and
 * grpc.health.v1.Health/Check. StreamingRecognize is left unimplemented (the adapter does not
 * use it), so grpc-js answers it with UNIMPLEMENTED as a server without it would.
 *
 * It records what it receives (decoded config, audio bytes, request id, metadata) and answers
 * like Riva's offline pipeline: several results per response, integer-millisecond word times
 * spread over the audio it received, punctuated and capitalised text when automatic
 * punctuation is on, speaker tags 1/2 when diarization is on (0 otherwise), no results for
 * silent audio. Failures are scripted per call.
 */

/** What the next Recognize call does; calls past the end of the script answer normally. */
export type RecognizeStep =
  | { kind: 'ok' }
  | { kind: 'error'; code: grpc.status; message: string }
  /** Waits, then answers normally (to exceed the client's deadline). */
  | { kind: 'delay'; ms: number }
  /** Answers with this RecognizeResponse as given. */
  | { kind: 'respond'; response: Record<string, unknown> };

/** A RecognitionConfig as the server decoded it (proto field names, enums as names, defaults filled in). */
export interface ReceivedConfig {
  encoding: string;
  sample_rate_hertz: number;
  language_code: string;
  max_alternatives: number;
  profanity_filter: boolean;
  speech_contexts: { phrases: string[]; boost: number }[];
  audio_channel_count: number;
  enable_word_time_offsets: boolean;
  enable_automatic_punctuation: boolean;
  enable_separate_recognition_per_channel: boolean;
  model: string;
  verbatim_transcripts: boolean;
  diarization_config: { enable_speaker_diarization: boolean; max_speaker_count: number } | null;
  custom_configuration: Record<string, string>;
}

export interface ReceivedRecognize {
  config: ReceivedConfig;
  /** Bytes of audio in the request (s16le: 32 000 per second at 16 kHz mono). */
  audioBytes: number;
  /** Peak absolute sample value of the audio. */
  peak: number;
  requestId: string;
  /** Call metadata, keys lower-case. */
  metadata: Record<string, string>;
}

/** Sentences the server "recognises", in order, one per result. */
const SENTENCES = [
  'Good morning, thanks for calling.',
  'How can I help you today?',
  'I would like to check my order.',
  'Sure, what is the order number?',
  'It is four two seven nine.',
  'Thank you, one moment please.',
];

/** Each result covers this much audio (ms), like Riva's offline pipeline splitting at pauses. */
const RESULT_WINDOW_MS = 4000;

function toWireWord(word: string, punctuation: boolean): string {
  return punctuation ? word : word.toLowerCase().replace(/[.,?!]/g, '');
}

/**
 * A RecognizeResponse for `audioBytes` of 16 kHz mono s16le audio: one result per 4 s window
 * (the last one shorter), each with one alternative whose words are spread over the window.
 * With diarization, results alternate between speakers 1 and 2, and the first result's last
 * word goes to the other speaker (so a segment's speaker is a majority, not a unanimity).
 */
export function realisticResponse(audioBytes: number, config: ReceivedConfig, requestId: string): Record<string, unknown> {
  const durationMs = Math.floor(audioBytes / 32);
  const punctuation = config.enable_automatic_punctuation;
  const diarization = config.diarization_config?.enable_speaker_diarization === true;
  const results: Record<string, unknown>[] = [];
  for (let i = 0, windowStart = 0; windowStart + 600 <= durationMs; i++, windowStart += RESULT_WINDOW_MS) {
    const windowEnd = Math.min(durationMs, windowStart + RESULT_WINDOW_MS);
    const sentence = SENTENCES[i % SENTENCES.length];
    const tokens = sentence.split(' ');
    const spanStart = windowStart + 120;
    const slot = (windowEnd - 150 - spanStart) / tokens.length;
    const speaker = diarization ? (i % 2) + 1 : 0;
    const words = tokens.map((token, j) => ({
      start_time: Math.round(spanStart + j * slot),
      end_time: Math.round(spanStart + j * slot + slot * 0.8),
      word: toWireWord(token, punctuation),
      confidence: 0.82 + ((i + j) % 5) * 0.03,
      speaker_tag: diarization && i === 0 && j === tokens.length - 1 ? 3 - speaker : speaker,
      language_code: config.language_code,
    }));
    results.push({
      alternatives: [
        {
          transcript: `${tokens.map((t) => toWireWord(t, punctuation)).join(' ')} `,
          confidence: 0.91,
          words,
          language_code: [config.language_code],
        },
      ],
      channel_tag: 1,
      audio_processed: windowEnd / 1000,
    });
  }
  return { results, id: { value: requestId } };
}

function peakOf(pcm: Buffer): number {
  let peak = 0;
  for (let i = 0; i + 1 < pcm.length; i += 2) peak = Math.max(peak, Math.abs(pcm.readInt16LE(i)));
  return peak;
}

const metadataOf = (call: { metadata: grpc.Metadata }) =>
  Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));

type Pkg = {
  nvidia: { riva: { asr: { RivaSpeechRecognition: grpc.ServiceClientConstructor } } };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};

export class RivaTestServer {
  /** Every Recognize call, in order (including those answered with a scripted error). */
  readonly received: ReceivedRecognize[] = [];
  /** Health/Check calls: the service asked about and the metadata. */
  readonly healthChecks: { service: string; metadata: Record<string, string> }[] = [];
  /** GetRivaSpeechRecognitionConfig calls (model_name asked for). */
  readonly configRequests: string[] = [];
  /** Steps for the next Recognize calls, consumed one per call. */
  readonly script: RecognizeStep[] = [];
  /** What Health/Check answers. */
  healthStatus: 'SERVING' | 'NOT_SERVING' | 'UNKNOWN' = 'SERVING';
  /** What GetRivaSpeechRecognitionConfig answers (shaped like a Parakeet NIM's offline model). */
  models: { model_name: string; parameters: Record<string, string> }[] = [
    {
      model_name: 'parakeet-1.1b-en-US-asr-offline-asr-bls-ensemble',
      parameters: { language_code: 'en-US', type: 'offline', streaming: 'false', diarization: 'true' },
    },
    {
      model_name: 'parakeet-1.1b-multi-asr-offline-asr-bls-ensemble',
      parameters: { language_code: 'en-US,es-US,de-DE', type: 'offline', streaming: 'false' },
    },
  ];

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  /** `127.0.0.1:port` (use `localhost:port` with TLS so the certificate name matches). */
  get uri(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server on an ephemeral port.
   * @param tls PEM certificate and key: serve TLS instead of plaintext.
   */
  static async start(tls?: { cert: Buffer; key: Buffer }): Promise<RivaTestServer> {
    const pkg = grpc.loadPackageDefinition(loadRivaPackageDefinition()) as unknown as Pkg;
    const server = new grpc.Server();
    // eslint-disable-next-line prefer-const -- assigned once the server is bound, read by the handlers
    let instance: RivaTestServer | undefined;
    server.addService(pkg.nvidia.riva.asr.RivaSpeechRecognition.service, {
      Recognize: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        instance!.recognize(call, callback),
      GetRivaSpeechRecognitionConfig: (call: grpc.ServerUnaryCall<{ model_name: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        instance!.configRequests.push(call.request.model_name);
        const models = call.request.model_name ? instance!.models.filter((m) => m.model_name === call.request.model_name) : instance!.models;
        callback(null, { model_config: models });
      },
    });
    server.addService(pkg.grpc.health.v1.Health.service, {
      Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        instance!.healthChecks.push({ service: call.request.service, metadata: metadataOf(call) });
        callback(null, { status: instance!.healthStatus });
      },
    });
    const credentials = tls
      ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false)
      : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    instance = new RivaTestServer(server, port);
    return instance;
  }

  private recognize(call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    const config = call.request.config as ReceivedConfig;
    const audio = call.request.audio as Buffer;
    const requestId = (call.request.id as { value: string } | null)?.value ?? '';
    const peak = peakOf(audio);
    this.received.push({ config, audioBytes: audio.length, peak, requestId, metadata: metadataOf(call) });
    const step = this.script.shift() ?? { kind: 'ok' };
    const answer = () => callback(null, peak < 64 ? { results: [], id: { value: requestId } } : realisticResponse(audio.length, config, requestId));
    switch (step.kind) {
      case 'ok':
        return answer();
      case 'error':
        return callback({ code: step.code, details: step.message });
      case 'delay': {
        const timer = setTimeout(answer, step.ms);
        call.on('cancelled', () => clearTimeout(timer));
        return;
      }
      case 'respond':
        return callback(null, step.response);
    }
  }

  /** Stops at once, cancelling calls in flight. */
  stop(): Promise<void> {
    this.server.forceShutdown();
    return Promise.resolve();
  }
}
