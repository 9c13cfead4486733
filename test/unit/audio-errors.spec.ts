import { GatewayError } from '../../src/common/gateway-error.js';
import { ACCEPTED_AUDIO, AUDIO_ERROR_STATUS, AudioError, toolMessage } from '../../src/audio/audio.errors.js';

describe('AudioError', () => {
  it('is a GatewayError with the status of its code, never retryable, telling what is accepted', () => {
    expect(AUDIO_ERROR_STATUS).toEqual({
      AUDIO_EMPTY: 400, AUDIO_UNREADABLE: 415, AUDIO_NO_STREAM: 415, AUDIO_TRUNCATED: 422, AUDIO_DECODE_FAILED: 422,
      AUDIO_UNSUPPORTED_FORMAT: 422, AUDIO_NO_SAMPLES: 422, AUDIO_TOO_LONG: 413,
    });
    const error = new AudioError('AUDIO_TRUNCATED', 'the WAV file is truncated', { publicFields: { declared_bytes: 10 }, details: { path: '/tmp/gw/upload-1' } });
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ status: 422, retryable: false, code: 'AUDIO_TRUNCATED' });
    expect(error.toPublic()).toEqual({ code: 'AUDIO_TRUNCATED', message: 'the WAV file is truncated', declared_bytes: 10, accepted: ACCEPTED_AUDIO });
    expect(JSON.stringify(error)).not.toContain('/tmp/gw');
    expect(error.toRecord().internal).toEqual({ path: '/tmp/gw/upload-1' });
  });
});

describe('toolMessage', () => {
  const upload = '/var/lib/gateway/tmp/upload-4f2c.bin';

  it('drops the path ffprobe puts before its reason', () => {
    expect(toolMessage(`${upload}: Invalid data found when processing input\n`, [upload])).toBe('Invalid data found when processing input');
  });

  it('replaces any other path, known or not, and drops the demuxer address', () => {
    const stderr = [
      '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c3a1b2c0] moov atom not found',
      `[Parsed_volumedetect_0 @ 0x1] n_samples: 0`,
      `Error opening input file ${upload} (see /etc/ffmpeg.conf).`,
    ].join('\n');
    const message = toolMessage(stderr, [upload]);
    expect(message).toBe('Error opening input file <file> (see <file>).');
    expect(toolMessage('[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c3a1b2c0] moov atom not found', [])).toBe('moov atom not found');
    expect(toolMessage('', [upload])).toBe('');
  });
});
