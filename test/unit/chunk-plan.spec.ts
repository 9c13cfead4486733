import { parseSilencedetect } from '../../src/audio/silences.js';
import { planChunks } from '../../src/transcription/long-audio/chunk-plan.js';

describe('planChunks', () => {
  it('cuts inside the pause nearest each target point and tiles the recording with cores', () => {
    const silences = [{ start: 95, end: 96 }, { start: 118, end: 119 }, { start: 130, end: 131 }, { start: 236, end: 237.5 }];
    const plan = planChunks(300, silences, { target: 120 });
    expect(plan.map((c) => c.cut)).toEqual(['silence', 'silence', 'end']);
    expect(plan[0]).toMatchObject({ start: 0, core_start: 0, core_end: 118.5, end: 118.5 });
    expect(plan[1]).toMatchObject({ start: 118.5, core_end: 236.75 });
    expect(plan[2]).toMatchObject({ core_end: 300, end: 300 });
    for (let i = 1; i < plan.length; i++) expect(plan[i].core_start).toBe(plan[i - 1].core_end);
  });

  it('cuts blindly, with overlap, only when no pause of the minimum length lies within ±20 % of the target', () => {
    const silences = [{ start: 50, end: 51 }, { start: 119, end: 119.1 }, { start: 150, end: 150.2 }];
    const plan = planChunks(260, silences, { target: 100, minPause: 0.3, blindOverlap: 1 });
    expect(plan[0]).toMatchObject({ cut: 'blind', core_end: 100, end: 101 });
    expect(plan[1]).toMatchObject({ start: 99, core_start: 100 });
  });

  it('lets the last chunk absorb a short remainder and leaves short audio whole', () => {
    expect(planChunks(130, [], { target: 120 })).toHaveLength(1);
    const plan = planChunks(250, [{ start: 121, end: 122 }], { target: 120 });
    expect(plan).toHaveLength(2);
    expect(plan[1].end).toBe(250);
  });

  it('cuts inside a long pause that straddles the window edge', () => {
    const plan = planChunks(400, [{ start: 130, end: 160 }], { target: 120, tolerance: 0.2 });
    // Pause middle (145) is outside the window (96–144): cut at the window's edge inside the pause.
    expect(plan[0].core_end).toBe(144);
    expect(plan[0].cut).toBe('silence');
  });
});

describe('parseSilencedetect', () => {
  it('reads ffmpeg silencedetect lines and closes a trailing pause at the end', () => {
    const stderr = [
      '[silencedetect @ 0x1] silence_start: 2.5',
      '[silencedetect @ 0x1] silence_end: 3.25 | silence_duration: 0.75',
      'size=N/A time=00:00:10.00',
      '[silencedetect @ 0x1] silence_start: 9.1',
    ].join('\n');
    expect(parseSilencedetect(stderr, 10)).toEqual([{ start: 2.5, end: 3.25 }, { start: 9.1, end: 10 }]);
  });
});
