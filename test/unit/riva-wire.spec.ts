import path from 'node:path';
import protobuf from 'protobufjs';
import { loadRivaPackageDefinition, RIVA_PROTO_FILES, rivaProtoDir } from '../../src/engines/riva/riva.client.js';
import { parseRivaEnv } from '../../src/engines/riva/riva.config.js';
import { buildRecognitionConfig, mapRivaResponse } from '../../src/engines/riva/riva.engine.js';

/**
 * The project's Riva protos against the wire format of ENGINES.md §1, byte by byte. Expected
 * bytes are computed by hand: a tag is (field_number << 3 | wire_type) as a varint (wire types:
 * 0 varint, 2 length-delimited, 5 fixed32), floats are IEEE-754 single precision little-endian.
 */

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex').match(/../g)!.join(' ');
const ascii = (s: string) => hex(Buffer.from(s, 'ascii'));

function loadRoot(): protobuf.Root {
  const dir = rivaProtoDir();
  const root = new protobuf.Root();
  // Imports ("riva/riva_audio.proto") are relative to the proto directory, as for proto-loader's includeDirs.
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  root.loadSync(RIVA_PROTO_FILES, { keepCase: true });
  return root;
}

describe('Riva proto wire format', () => {
  const root = loadRoot();
  const RecognitionConfig = root.lookupType('nvidia.riva.asr.RecognitionConfig');
  const RecognizeResponse = root.lookupType('nvidia.riva.asr.RecognizeResponse');
  const encode = (type: protobuf.Type, value: Record<string, unknown>) => type.encode(type.fromObject(value)).finish();

  it('declares the packages, services and enum values of the fact sheet', () => {
    expect(root.lookupService('nvidia.riva.asr.RivaSpeechRecognition').methods).toMatchObject({
      Recognize: { requestType: 'RecognizeRequest', responseType: 'RecognizeResponse' },
      StreamingRecognize: { requestStream: true, responseStream: true },
      GetRivaSpeechRecognitionConfig: { requestType: 'RivaSpeechRecognitionConfigRequest' },
    });
    expect(root.lookupService('grpc.health.v1.Health').methods.Check).toBeDefined();
    expect(root.lookupEnum('nvidia.riva.AudioEncoding').values).toEqual({ ENCODING_UNSPECIFIED: 0, LINEAR_PCM: 1, FLAC: 2, MULAW: 3, OGGOPUS: 4, ALAW: 20 });
    expect(root.lookupEnum('grpc.health.v1.HealthCheckResponse.ServingStatus').values).toMatchObject({ UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2 });
    const field = (type: string, name: string) => root.lookupType(type).fields[name];
    expect(field('nvidia.riva.asr.RecognizeRequest', 'id').id).toBe(100);
    expect(field('nvidia.riva.asr.RecognitionConfig', 'custom_configuration')).toMatchObject({ id: 24, keyType: 'string', type: 'string' });
    expect(field('nvidia.riva.asr.RecognitionConfig', 'endpointing_config')).toMatchObject({ id: 25, options: { proto3_optional: true } });
    expect(field('nvidia.riva.asr.StreamingRecognitionResult', 'pipeline_states')).toMatchObject({ id: 7, options: { proto3_optional: true } });
    expect(root.lookupType('nvidia.riva.asr.StreamingRecognizeRequest').oneofs.streaming_request.oneof).toEqual(['streaming_config', 'audio_content']);
    expect(field('nvidia.riva.asr.EndpointingConfig', 'stop_history_eou').id).toBe(5);
    expect(field('nvidia.riva.asr.EndpointingConfig', 'stop_threshold_eou').id).toBe(6);
  });

  it('encodes the RecognitionConfig the adapter builds, field by field', () => {
    const { value } = parseRivaEnv({ RIVA_URI: 'x:1', RIVA_MODEL: 'parakeet' });
    const config = buildRecognitionConfig(
      {
        language: 'en',
        diarization: { enabled: true, max_speakers: 4 },
        word_boosts: [
          { phrases: ['Riva'], boost: 20 },
          { phrases: ['NIM', 'gRPC'], boost: -50 },
        ],
      },
      value,
    );
    const bytes = hex(encode(RecognitionConfig, config as unknown as Record<string, unknown>));
    const expected = [
      '08 01', // 1 encoding = LINEAR_PCM (1), varint
      '10 80 7d', // 2 sample_rate_hertz = 16000 (0x3e80 → varint 80 7d)
      `1a 05 ${ascii('en-US')}`, // 3 language_code, 'en' resolved to the default en-US
      '20 01', // 4 max_alternatives = 1
      `32 0b 0a 04 ${ascii('Riva')} 25 00 00 a0 41`, // 6 speech_contexts[0]: phrases (1) + boost (4, fixed32 20.0f = 0x41a00000)
      `32 10 0a 03 ${ascii('NIM')} 0a 04 ${ascii('gRPC')} 25 00 00 48 c2`, // 6 speech_contexts[1]: boost -50.0f = 0xc2480000
      '38 01', // 7 audio_channel_count = 1
      '40 01', // 8 enable_word_time_offsets = true
      '58 01', // 11 enable_automatic_punctuation = true (11 << 3 = 0x58)
      `6a 08 ${ascii('parakeet')}`, // 13 model (13 << 3 | 2 = 0x6a)
      '9a 01 04 08 01 10 04', // 19 diarization_config (19 << 3 | 2 = 154 → 9a 01): enable (1) = true, max_speaker_count (2) = 4
    ].join(' ');
    expect(bytes).toBe(expected);
  });

  it('encodes maps and proto3 optional fields (present even at their default)', () => {
    const bytes = hex(
      encode(RecognitionConfig, {
        custom_configuration: { a: 'b' },
        endpointing_config: { start_history: 0, stop_history: 800 },
      }),
    );
    expect(bytes).toBe(
      [
        `c2 01 06 0a 01 ${ascii('a')} 12 01 ${ascii('b')}`, // 24 map entry {key = 1, value = 2} (24 << 3 | 2 = 194 → c2 01)
        'ca 01 05 08 00 18 a0 06', // 25 endpointing_config: start_history (1) = 0 kept by `optional`, stop_history (3) = 800 (a0 06)
      ].join(' '),
    );
  });

  const responseBytes = [
    '0a 2c', // RecognizeResponse.results (1), 44 bytes
    '0a 25', //   SpeechRecognitionResult.alternatives (1), 37 bytes
    `0a 03 ${ascii('Hi.')}`, //     transcript (1)
    '15 00 00 00 3f', //     confidence (2) = 0.5f
    '1a 12', //     words (3), 18 bytes
    '08 b0 09', //       WordInfo.start_time (1) = 1200 ms (0x4b0 → b0 09)
    '10 dc 0b', //       end_time (2) = 1500 ms (0x5dc → dc 0b)
    `1a 03 ${ascii('Hi.')}`, //       word (3)
    '25 00 00 40 3f', //       confidence (4) = 0.75f
    '28 02', //       speaker_tag (5) = 2
    `22 05 ${ascii('en-US')}`, //     language_code (4), repeated string
    '1d 00 00 c0 3f', //   audio_processed (3) = 1.5f
    `a2 06 04 0a 02 ${ascii('r1')}`, // id (100 << 3 | 2 = 802 → a2 06): RequestId.value (1)
  ].join(' ');

  it('encodes a RecognizeResponse: WordInfo times are int32 milliseconds in fields 1 and 2', () => {
    const response = {
      results: [
        {
          alternatives: [
            { transcript: 'Hi.', confidence: 0.5, words: [{ start_time: 1200, end_time: 1500, word: 'Hi.', confidence: 0.75, speaker_tag: 2 }], language_code: ['en-US'] },
          ],
          audio_processed: 1.5,
        },
      ],
      id: { value: 'r1' },
    };
    expect(hex(encode(RecognizeResponse, response))).toBe(responseBytes);
  });

  it('decodes those bytes through the same deserializer grpc-js uses, and the adapter maps ms to seconds and tag 2 to speaker 1', () => {
    const recognize = loadRivaPackageDefinition()['nvidia.riva.asr.RivaSpeechRecognition'] as unknown as Record<
      string,
      { path: string; responseDeserialize: (b: Buffer) => unknown; requestSerialize: (v: unknown) => Buffer }
    >;
    expect(recognize.Recognize.path).toBe('/nvidia.riva.asr.RivaSpeechRecognition/Recognize');
    const decoded = recognize.Recognize.responseDeserialize(Buffer.from(responseBytes.replace(/ /g, ''), 'hex')) as Parameters<typeof mapRivaResponse>[0];
    expect(decoded.results[0].alternatives[0].words[0]).toEqual({ start_time: 1200, end_time: 1500, word: 'Hi.', confidence: 0.75, speaker_tag: 2, language_code: '' });
    expect(decoded.results[0].channel_tag).toBe(0);
    const { segments, language } = mapRivaResponse(decoded, { durationSec: 2, diarization: true });
    expect(language).toBe('en-US');
    expect(segments).toEqual([
      { start: 1.2, end: 1.5, text: 'Hi.', speaker_tag: 1, confidence: 0.75, words: [{ word: 'Hi.', start: 1.2, end: 1.5, confidence: 0.75, speaker_tag: 1 }] },
    ]);

    // The request serializer (enums given by name) wraps the config in RecognizeRequest.config (1) and audio in field 2.
    const request = recognize.Recognize.requestSerialize({ config: { encoding: 'LINEAR_PCM', sample_rate_hertz: 16000 }, audio: Buffer.from([1, 2]), id: { value: 'r' } });
    expect(hex(request)).toBe(`0a 05 08 01 10 80 7d 12 02 01 02 a2 06 03 0a 01 ${ascii('r')}`);
  });
});
