/**
 * The gateway's web page: submit a recording (upload or URL), follow the job live, show and
 * download the transcript. A plain client of the public job API under /api/transcribe/jobs:
 * no framework, no build step, no third-party code.
 *
 * Shapes come from the API (README "API"): times are float seconds; `speaker_tag` is 0-based or
 * null; `speaker_roles` maps a tag (as a string) to a role name. The event stream is read with
 * fetch rather than EventSource because EventSource cannot send the API key header.
 */

const API = '/api/transcribe/jobs';
const KEY_STORAGE = 'transcription-gateway.api-key';
/** Stages in the order a job goes through them (`upload` is this page's own, before the job exists). */
const STAGES = ['upload', 'queued', 'intake', 'splitting', 'transcribing', 'merging', 'saving', 'completed'];
const FORMATS = ['txt', 'srt', 'vtt', 'json'];
/** Speaker colours cycle through this many CSS classes (`spk-0` … `spk-7`). */
const SPEAKER_COLOURS = 8;
/** Consecutive event-stream failures tolerated before giving up (the stream resends the current state on reconnect). */
const MAX_RECONNECTS = 5;

const $ = (id) => document.getElementById(id);

const state = {
  /** `{<id>: {engine, display_name, available, diarization, models, languages, …}}` from GET /engines. */
  engines: {},
  defaultEngine: '',
  /** Aborts the event stream of the job being followed when another one starts. */
  follow: null,
  /** Object URL of audio fetched with the API key (revoked when replaced). */
  audioObjectUrl: null,
  /** Every rendered word button, in time order, with its start and end (seconds). */
  words: [],
  currentWord: -1,
  /** Stages the current job has been seen in (the others it skipped, e.g. splitting for a short file). */
  seen: new Set(),
};

/** An error the API returned (`{statusCode, code, message}`), or a network failure (status 0). */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------- API access

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return '';
  }
}

function authHeaders(headers = {}) {
  const key = apiKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

/** The API's `message` (a string or a list of validation messages) from an error response body. */
function errorFromBody(status, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page): show the start of the text.
  }
  if (body && body.message) {
    const message = Array.isArray(body.message) ? body.message.join('; ') : String(body.message);
    return new ApiError(status, typeof body.code === 'string' ? body.code : null, message);
  }
  const snippet = String(text || '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
  return new ApiError(status, null, snippet || `HTTP ${status}`);
}

/** fetch under /api/transcribe/jobs with the API key; throws ApiError for non-2xx answers and network failures. */
async function api(path, init = {}) {
  let res;
  try {
    res = await fetch(API + path, { ...init, headers: authHeaders(init.headers || {}) });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `Cannot reach the gateway (${err.message}).`);
  }
  if (!res.ok) throw errorFromBody(res.status, await res.text().catch(() => ''));
  return res;
}

/**
 * POST /transcribe through XMLHttpRequest, the one browser API that reports upload progress
 * (`onProgress(0..1)`). Resolves the 202 body `{job_id, transcript_id, engine, status, message}`.
 */
function submit(form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/transcribe`);
    for (const [name, value] of Object.entries(authHeaders({ Accept: 'application/json' }))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, null, 'The gateway answered with something that is not JSON.'));
        }
      } else {
        reject(errorFromBody(xhr.status, xhr.responseText));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'NETWORK', 'Cannot reach the gateway: the upload was interrupted.')));
    xhr.send(form);
  });
}

/**
 * Incremental Server-Sent Events decoder (WHATWG event-stream): returns the `data` of each event
 * completed by `text`. Lines end with CRLF, LF or CR; a blank line dispatches; `:` lines are
 * keep-alive comments.
 */
function sseDecoder() {
  let buffer = '';
  let data = [];
  return (text) => {
    buffer += text;
    const out = [];
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const ch = buffer[i];
      if (ch !== '\n' && ch !== '\r') continue;
      if (ch === '\r' && i === buffer.length - 1) break; // maybe the first half of CRLF
      const line = buffer.slice(start, i);
      if (ch === '\r' && buffer[i + 1] === '\n') i++;
      start = i + 1;
      if (line === '') {
        if (data.length) out.push(data.join('\n'));
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
    buffer = buffer.slice(start);
    return out;
  };
}

/**
 * Follows GET /stream/:job_id, calling `onEvent` with every status event, until `completed` or
 * `failed`; returns that last event. A dropped stream is reopened (up to MAX_RECONNECTS times in a
 * row): the gateway sends the current state first, so nothing is missed.
 */
async function followStream(jobId, onEvent, signal) {
  let failures = 0;
  for (;;) {
    try {
      const res = await api(`/stream/${encodeURIComponent(jobId)}`, { headers: { Accept: 'text/event-stream' }, signal });
      const decode = sseDecoder();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const data of decode(value)) {
          const event = JSON.parse(data);
          failures = 0;
          onEvent(event);
          if (event.status === 'completed' || event.status === 'failed' || event.status === 'cancelled') {
            reader.cancel().catch(() => {});
            return event;
          }
        }
      }
    } catch (err) {
      // An API answer (404 unknown job, 401) will not change by retrying; a network failure may.
      if (err.name === 'AbortError' || (err instanceof ApiError && err.status !== 0)) throw err;
    }
    if (++failures > MAX_RECONNECTS) throw new ApiError(0, 'NETWORK', 'Lost the connection to the gateway while following the job.');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (signal.aborted) throw new DOMException('aborted', 'AbortError');
  }
}

// ---------------------------------------------------------------- formatting

/** Seconds → `m:ss.s` (or `h:mm:ss` from an hour on). */
function formatTime(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}:${String(m).padStart(2, '0')}:${String(Math.floor(sec)).padStart(2, '0')}`;
  return `${m}:${sec.toFixed(1).padStart(4, '0')}`;
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

const capitalize = (text) => text.charAt(0).toUpperCase() + text.slice(1);

/** `Speaker 1` for tag 0, or the role name from `speaker_roles` (`Provider`). */
function speakerName(tag, roles) {
  const role = roles && roles[String(tag)];
  return role ? capitalize(role.replace(/_/g, ' ')) : `Speaker ${tag + 1}`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// ---------------------------------------------------------------- errors

function showError(err, title) {
  const status = err instanceof ApiError ? err.status : 0;
  $('error-title').textContent = title || (status === 0 ? 'Cannot reach the gateway' : status === 401 || status === 403 ? 'Not authorised' : 'The gateway refused the request');
  $('error-message').textContent = err.message || String(err);
  $('error-code').textContent = err instanceof ApiError && err.code ? (status ? `${err.code} · HTTP ${status}` : err.code) : '';
  $('error').hidden = false;
  // The form is long: after pressing Transcribe at its bottom, the output column may be out of view.
  $('error').scrollIntoView({ block: 'nearest' });
  if (status === 401 || status === 403) $('api-key-panel').open = true;
}

function clearErrors() {
  $('error').hidden = true;
  $('form-error').hidden = true;
}

function formError(message, field) {
  $('form-error').textContent = message;
  $('form-error').hidden = false;
  if (field) field.focus();
}

// ---------------------------------------------------------------- API key panel

function renderKeyState() {
  $('api-key-state').textContent = apiKey() ? 'set' : 'not set';
}

$('api-key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  try {
    localStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
  } catch {
    // Storage disabled (private mode): the key lasts until the page closes.
  }
  renderKeyState();
  $('api-key-panel').open = false;
  loadEngines();
});

$('api-key-clear').addEventListener('click', () => {
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // Nothing stored.
  }
  $('api-key').value = '';
  renderKeyState();
});

// ---------------------------------------------------------------- form: source

function sourceKind() {
  return document.querySelector('input[name="source"]:checked').value;
}

for (const radio of document.querySelectorAll('input[name="source"]')) {
  radio.addEventListener('change', () => {
    $('file-pane').hidden = sourceKind() !== 'file';
    $('url-pane').hidden = sourceKind() !== 'url';
  });
}

function renderChosenFile() {
  const file = $('file').files[0];
  $('dropzone').classList.toggle('has-file', Boolean(file));
  if (file) {
    $('file-name').textContent = file.name;
    $('file-meta').textContent = `${formatBytes(file.size)}${file.type ? ` · ${file.type}` : ''} · click or drop to replace`;
  } else {
    $('file-name').replaceChildren('Drop an audio or video file here, or ', el('span', { class: 'link' }, 'browse'));
    $('file-meta').textContent = 'Any format ffmpeg can decode';
  }
}

$('file').addEventListener('change', renderChosenFile);
const dropzone = $('dropzone');
for (const type of ['dragenter', 'dragover']) {
  dropzone.addEventListener(type, (e) => {
    e.preventDefault();
    dropzone.classList.add('dragover');
  });
}
for (const type of ['dragleave', 'drop']) dropzone.addEventListener(type, () => dropzone.classList.remove('dragover'));
dropzone.addEventListener('drop', (e) => {
  e.preventDefault();
  if (e.dataTransfer && e.dataTransfer.files.length) {
    $('file').files = e.dataTransfer.files;
    renderChosenFile();
  }
});

// ---------------------------------------------------------------- form: engine and options

async function loadEngines() {
  const select = $('engine');
  try {
    const data = await (await api('/engines')).json();
    state.engines = data.engines || {};
    state.defaultEngine = data.default_engine;
    const previous = select.value;
    const options = Object.values(state.engines).map((e) =>
      el('option', { value: e.engine }, `${e.display_name || e.engine}${e.available ? '' : ' (unavailable)'}`),
    );
    if (options.length === 0) throw new ApiError(200, null, 'The gateway has no engine enabled.');
    select.replaceChildren(...options);
    select.value = state.engines[previous] ? previous : state.engines[state.defaultEngine] ? state.defaultEngine : options[0].value;
    select.disabled = false;
    applyEngine();
  } catch (err) {
    select.replaceChildren(el('option', { value: '' }, 'No engines'));
    select.disabled = true;
    showError(err, 'Cannot load the engines');
  }
}

function chip(text, kind) {
  return el('span', { class: `chip ${kind || ''}`.trim() }, text);
}

/** Fills the options from the chosen engine's capabilities and disables what it cannot do. */
function applyEngine() {
  const engine = state.engines[$('engine').value];
  if (!engine) return;
  const info = $('engine-info');
  const can = (flag, label) => chip(label, flag ? 'yes' : 'no');
  info.replaceChildren(
    chip(engine.available ? 'available' : 'unavailable', engine.available ? 'yes' : 'down'),
    can(engine.diarization, 'diarization'),
    can(engine.word_timestamps, 'word times'),
    can(engine.language_detection, 'language detection'),
    can(engine.word_boosting, 'word boosting'),
    can(engine.translation, 'translation'),
    ...(engine.engine === state.defaultEngine ? [chip('default')] : []),
  );
  if (!engine.available) info.append(el('p', { class: 'engine-note' }, engine.message ? `Unavailable: ${engine.message}` : 'Unavailable right now: jobs wait until it is back.'));

  const languages = engine.languages || [];
  $('language-list').replaceChildren(...languages.map((code) => el('option', { value: code })));
  $('language').placeholder = engine.language_detection ? 'detect automatically' : languages[0] ? `default: ${languages[0]}` : 'engine default';

  const models = engine.models || [];
  $('model').replaceChildren(
    el('option', { value: '' }, models[0] ? `Default (${models[0]})` : 'Engine default'),
    ...models.map((m) => el('option', { value: m }, m)),
  );
  $('model').disabled = models.length <= 1;

  const translate = $('translate');
  translate.disabled = !engine.translation;
  if (!engine.translation) translate.checked = false;
  $('translate-hint').textContent = engine.translation
    ? 'English text from speech in any language; Language then names the spoken one.'
    : `${engine.display_name || engine.engine} cannot translate; pick an engine that can (whisper-rocm, whisperx, openai).`;

  const diarize = $('diarize');
  diarize.disabled = !engine.diarization;
  // The API's default: diarization on for engines that can do it.
  diarize.checked = Boolean(engine.diarization);
  $('diarize-hint').textContent = engine.diarization ? '' : `${engine.display_name || engine.engine} does not tell speakers apart; for stereo calls use Multichannel.`;
  applyDependentOptions();
}

/** Speaker bounds need diarization; speaker roles need speakers (diarization or multichannel). */
function applyDependentOptions() {
  const diarizing = $('diarize').checked && !$('diarize').disabled;
  $('min-speakers').disabled = !diarizing;
  $('max-speakers').disabled = !diarizing;
  $('speaker-roles').disabled = !(diarizing || $('multichannel').checked);
  $('role-names').disabled = $('speaker-roles').disabled || $('speaker-roles').value === 'none';
}

$('engine').addEventListener('change', applyEngine);
$('diarize').addEventListener('change', applyDependentOptions);
$('multichannel').addEventListener('change', applyDependentOptions);
$('speaker-roles').addEventListener('change', applyDependentOptions);

// ---------------------------------------------------------------- submission

/** The multipart body (field names of SubmitJobDto), or null after reporting what is missing. */
function buildForm() {
  const form = new FormData();
  const engine = state.engines[$('engine').value];
  if (!engine) {
    formError('No engine to send the job to: the engine list did not load.', $('engine'));
    return null;
  }
  form.append('engine', engine.engine);
  const language = $('language').value.trim();
  if (language) {
    if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$/.test(language)) {
      formError("Language must be a code such as 'en' or 'en-US'.", $('language'));
      return null;
    }
    form.append('language', language);
  }
  if ($('model').value) form.append('model', $('model').value);
  if (engine.diarization) form.append('enable_diarization', String($('diarize').checked));
  if (!$('min-speakers').disabled) {
    const min = $('min-speakers').value;
    const max = $('max-speakers').value;
    for (const [input, value] of [[$('min-speakers'), min], [$('max-speakers'), max]]) {
      if (value && !(Number.isInteger(Number(value)) && Number(value) >= 1 && Number(value) <= 20)) {
        formError('Speaker counts must be whole numbers from 1 to 20.', input);
        return null;
      }
    }
    if (min && max && Number(min) > Number(max)) {
      formError('Min speakers cannot be more than max speakers.', $('min-speakers'));
      return null;
    }
    if (min) form.append('min_speakers', min);
    if (max) form.append('max_speakers', max);
  }
  if ($('multichannel').checked) form.append('multichannel', 'true');
  if ($('translate').checked && !$('translate').disabled) form.append('task', 'translate');
  if (!$('speaker-roles').disabled && $('speaker-roles').value !== 'none') {
    form.append('speaker_roles', $('speaker-roles').value);
    const names = $('role-names').value.split(',').map((n) => n.trim()).filter(Boolean);
    if (names.length) {
      if (names.length > 10 || names.some((n) => !/^[\w -]{1,40}$/.test(n))) {
        formError('Role names: up to 10 names of letters, digits, spaces, _ or -, separated by commas.', $('role-names'));
        return null;
      }
      form.append('speaker_role_names', names.join(','));
    }
  }

  // The recording goes last: the form fields are then already parsed when the upload streams in.
  if (sourceKind() === 'file') {
    const file = $('file').files[0];
    if (!file) {
      formError('Choose a recording to upload (or switch to “From a URL”).', $('file'));
      return null;
    }
    form.append('file', file, file.name);
  } else {
    const url = $('audio-url').value.trim();
    if (!/^https?:\/\/\S+$/i.test(url)) {
      $('audio-url').setAttribute('aria-invalid', 'true');
      formError('Enter the recording’s http:// or https:// address.', $('audio-url'));
      return null;
    }
    $('audio-url').removeAttribute('aria-invalid');
    form.append('audio_url', url);
  }
  return form;
}

$('job-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const form = buildForm();
  if (!form) return;
  const button = $('submit');
  button.disabled = true;
  button.textContent = 'Uploading…';
  startJobView(sourceKind() === 'file');
  try {
    const job = await submit(form, (fraction) => renderProgress({ status: 'uploading', stage: 'upload', progress: fraction * 100 }));
    history.replaceState(null, '', `#job=${job.job_id}`);
    button.textContent = 'Transcribing…';
    await watchJob(job.job_id, job.engine);
  } catch (err) {
    if (err.name !== 'AbortError') {
      markFailed(err);
      showError(err);
    }
  } finally {
    button.disabled = false;
    button.textContent = 'Transcribe';
  }
});

// ---------------------------------------------------------------- progress

function startJobView(uploading) {
  if (state.follow) state.follow.abort();
  state.seen = new Set(uploading ? ['upload'] : []);
  $('empty-state').hidden = true;
  $('result').hidden = true;
  $('job').hidden = false;
  $('job').scrollIntoView({ block: 'nearest' });
  $('job-meta').hidden = true;
  $('job-id').textContent = '';
  $('job-engine').textContent = '';
  $('progress-bar').classList.remove('complete', 'failed');
  renderProgress({ status: 'uploading', stage: uploading ? 'upload' : 'queued', progress: 0, message: '' });
}

/**
 * Draws one status event: stage list, bar, percentage, `chunk k of N`, message. A job that ended
 * without a result (failed, cancelled, or a submission the gateway refused: `refused`) shows
 * what happened instead of a percentage.
 */
function renderProgress(event) {
  const failed = event.status === 'failed' || event.status === 'cancelled';
  const stage = failed ? null : event.status === 'queued' ? 'queued' : event.stage;
  if (stage) state.seen.add(stage);
  const current = stage ? STAGES.indexOf(stage) : -1;
  const lastSeen = Math.max(-1, ...[...state.seen].map((s) => STAGES.indexOf(s)));
  for (const li of $('stages').children) {
    const index = STAGES.indexOf(li.dataset.stage);
    const pointer = failed ? lastSeen : current;
    li.className = '';
    li.removeAttribute('aria-current');
    if (index < pointer || (index === pointer && stage === 'completed')) li.className = state.seen.has(li.dataset.stage) ? 'done' : 'skipped';
    else if (index === pointer) {
      li.className = failed ? 'failed' : 'current';
      li.setAttribute('aria-current', 'step');
    }
  }
  const pct = Math.max(0, Math.min(100, Math.round(Number(event.progress) || 0)));
  $('progress-fill').style.width = `${pct}%`;
  $('progress-bar').setAttribute('aria-valuenow', String(pct));
  $('progress-bar').classList.toggle('complete', event.status === 'completed');
  $('progress-bar').classList.toggle('failed', failed);
  $('progress-stage').textContent = failed ? (event.refused ? 'refused' : event.status) : stage === 'upload' ? 'uploading' : stage;
  $('progress-percent').textContent = failed ? '' : `${pct}%`;
  $('progress-chunks').textContent = event.chunks_total ? `chunk ${Math.min(event.chunks_done || 0, event.chunks_total)} of ${event.chunks_total}` : '';
  $('progress-message').textContent = event.message || '';
  $('job').dataset.status = event.status;
}

/**
 * Marks the job view as ended by `err`. A request the gateway answered with 4xx/5xx was refused:
 * the bar empties and the server's message stands under it (uploading the whole file is not
 * progress).
 */
function markFailed(err) {
  const refused = err instanceof ApiError && err.status >= 400;
  const progress = refused ? 0 : Number($('progress-bar').getAttribute('aria-valuenow')) || 0;
  renderProgress({ status: 'failed', stage: 'failed', refused, progress, message: err && err.message ? err.message : '' });
}

/** Follows a job to its end, then shows its transcript (or its error). */
async function watchJob(jobId, engine) {
  const controller = new AbortController();
  state.follow = controller;
  $('job-id').textContent = jobId;
  $('job-engine').textContent = engine || '';
  $('job-meta').hidden = false;
  const last = await followStream(
    jobId,
    (event) => {
      if (event.engine) $('job-engine').textContent = event.engine;
      renderProgress(event);
    },
    controller.signal,
  );
  if (last.status === 'failed' || last.status === 'cancelled') {
    const error = last.error || {};
    const cancelled = last.status === 'cancelled';
    showError(
      new ApiError(0, error.code || (cancelled ? 'JOB_CANCELLED' : 'JOB_FAILED'), error.message || last.message || (cancelled ? 'The job was cancelled.' : 'The job failed.')),
      cancelled ? 'The transcription was cancelled' : 'The transcription failed',
    );
    return;
  }
  const result = await (await api(`/result/${encodeURIComponent(jobId)}`, { signal: controller.signal })).json();
  renderResult(result);
}

// ---------------------------------------------------------------- result

function renderResult(result) {
  const segments = result.segments || [];
  const roles = result.speaker_roles || null;
  const wordCount = segments.reduce((n, s) => n + (s.words ? s.words.length : 0), 0);
  const tags = [];
  for (const segment of segments) {
    for (const tag of [segment.speaker_tag, ...(segment.words || []).map((w) => w.speaker_tag)]) {
      if (tag !== null && tag !== undefined && !tags.includes(tag)) tags.push(tag);
    }
  }

  const facts = [
    ['Engine', result.engine],
    ['Model', result.model || '—'],
    ['Language', result.language || '—'],
    ['Duration', result.duration != null ? formatTime(result.duration) : '—'],
    ['Words', String(wordCount)],
    ['Speakers', tags.length ? String(tags.length) : '—'],
  ];
  $('facts').replaceChildren(...facts.map(([label, value]) => el('div', {}, el('dt', {}, label), el('dd', {}, value))));

  const warnings = result.warnings || [];
  $('warnings').replaceChildren(...warnings.map((w) => el('li', {}, w)));
  $('warnings').hidden = warnings.length === 0;

  for (const format of FORMATS) {
    const link = $(`download-${format}`);
    link.href = `${API}/result/${encodeURIComponent(result.job_id)}?format=${format}`;
    link.dataset.filename = `${(result.filename || result.job_id).replace(/\.[^.]+$/, '')}.${format}`;
    link.setAttribute('aria-label', `Download the transcript as ${format.toUpperCase()}`);
  }

  $('speakers').replaceChildren(
    ...tags.map((tag) => el('li', { class: `spk-${tag % SPEAKER_COLOURS}` }, roles && roles[String(tag)] ? `${speakerName(tag, roles)} · Speaker ${tag + 1}` : speakerName(tag, roles))),
  );
  $('speakers').hidden = tags.length === 0;

  renderTranscript(segments, roles);
  setAudio(result.audio_url);
  $('result').hidden = false;
}

function renderTranscript(segments, roles) {
  state.words = [];
  state.currentWord = -1;
  const blocks = segments.map((segment) => {
    const tag = segment.speaker_tag;
    const hasSpeaker = tag !== null && tag !== undefined;
    const words = segment.words || [];
    const text = el('p', { class: 'words' });
    if (words.length === 0) {
      text.append(segment.text || '');
    }
    words.forEach((word, i) => {
      const button = el(
        'button',
        {
          type: 'button',
          class: `word${word.confidence !== null && word.confidence !== undefined && word.confidence < 0.5 ? ' low' : ''}`,
          tabIndex: -1,
          title: `${formatTime(word.start)}–${formatTime(word.end)}${word.confidence != null ? ` · confidence ${Math.round(word.confidence * 100)}%` : ''}${word.interpolated ? ' · time estimated' : ''}`,
          dataset: { start: String(word.start), end: String(word.end), index: String(state.words.length) },
        },
        word.word,
      );
      state.words.push({ button, start: Number(word.start), end: Number(word.end) });
      if (i > 0) text.append(' ');
      text.append(button);
    });
    const meta = el(
      'div',
      { class: 'segment-meta' },
      ...(hasSpeaker ? [el('span', { class: 'speaker' }, speakerName(tag, roles))] : []),
      el('button', { type: 'button', class: 'timestamp', dataset: { start: String(segment.start) }, title: 'Play from here' }, formatTime(segment.start)),
    );
    return el('article', { class: `segment${hasSpeaker ? ` spk-${tag % SPEAKER_COLOURS}` : ''}` }, meta, text);
  });
  $('transcript').replaceChildren(...blocks);
  // One tab stop for all the words; arrow keys move between them (roving tabindex).
  if (state.words.length) state.words[0].button.tabIndex = 0;
}

/**
 * Points the player at the recording (`audio_url`: this API's audio endpoint, or a presigned
 * object-storage URL, used as is). Same-origin audio is played from a blob when the player could
 * not seek in it otherwise: with an API key (an <audio> cannot send headers), or when the server
 * ignores Range requests (Chromium cannot seek in such a resource, so word clicks would restart
 * the audio). A one-byte Range probe tells which: 206 streams directly, 200 is read whole.
 */
async function setAudio(url) {
  const audio = $('audio');
  if (state.audioObjectUrl) {
    URL.revokeObjectURL(state.audioObjectUrl);
    state.audioObjectUrl = null;
  }
  audio.hidden = !url;
  audio.removeAttribute('src');
  delete audio.dataset.source;
  if (!url) return;
  if (new URL(url, location.href).origin !== location.origin) {
    audio.src = url;
    audio.dataset.source = url;
    return;
  }
  try {
    const keyed = Boolean(apiKey());
    const res = await fetch(url, { headers: authHeaders(keyed ? {} : { Range: 'bytes=0-0' }) });
    if (!res.ok) throw errorFromBody(res.status, await res.text());
    if (res.status === 206) {
      res.body && res.body.cancel();
      audio.src = url;
    } else {
      state.audioObjectUrl = URL.createObjectURL(await res.blob());
      audio.src = state.audioObjectUrl;
    }
    audio.dataset.source = url;
  } catch (err) {
    showError(err, 'Cannot load the audio');
  }
}

function seek(seconds) {
  const audio = $('audio');
  if (!audio.src) return;
  audio.currentTime = seconds;
  const playing = audio.play();
  if (playing) playing.catch(() => {});
}

$('transcript').addEventListener('click', (e) => {
  const target = e.target.closest('button[data-start]');
  if (!target) return;
  if (target.classList.contains('word')) focusWord(Number(target.dataset.index), false);
  seek(Number(target.dataset.start));
});

function focusWord(index, move = true) {
  if (index < 0 || index >= state.words.length) return;
  for (const w of state.words) w.button.tabIndex = -1;
  state.words[index].button.tabIndex = 0;
  if (move) state.words[index].button.focus();
}

$('transcript').addEventListener('keydown', (e) => {
  const word = e.target.closest('.word');
  if (!word) return;
  const index = Number(word.dataset.index);
  const moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1, Home: 0, End: state.words.length - 1 };
  if (e.key in moves) {
    e.preventDefault();
    focusWord(moves[e.key]);
  }
});

/** Highlights the word being played: the last one that starts at or before the playhead, while it lasts. */
$('audio').addEventListener('timeupdate', () => {
  const t = $('audio').currentTime;
  let lo = 0;
  let hi = state.words.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (state.words[mid].start <= t) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found >= 0 && t > state.words[found].end + 0.25) found = -1;
  if (found === state.currentWord) return;
  if (state.currentWord >= 0 && state.words[state.currentWord]) state.words[state.currentWord].button.classList.remove('current');
  if (found >= 0) state.words[found].button.classList.add('current');
  state.currentWord = found;
});

/** With an API key, a plain link cannot authenticate: fetch the export with the key and save it from a blob. */
$('result').querySelector('.downloads').addEventListener('click', async (e) => {
  const link = e.target.closest('a[href]');
  if (!link || !apiKey()) return;
  e.preventDefault();
  try {
    const res = await fetch(link.href, { headers: authHeaders() });
    if (!res.ok) throw errorFromBody(res.status, await res.text());
    const url = URL.createObjectURL(await res.blob());
    const save = el('a', { href: url, download: link.dataset.filename || '' });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    showError(err, 'Cannot download the transcript');
  }
});

// ---------------------------------------------------------------- start

renderKeyState();
$('api-key').value = apiKey();
loadEngines();

// `#job=<id>` (set on submission) re-attaches to a job after a reload.
const fromHash = /^#job=([0-9a-f-]{36})$/i.exec(location.hash);
if (fromHash) {
  startJobView(false);
  watchJob(fromHash[1], '').catch((err) => {
    if (err.name !== 'AbortError') {
      markFailed(err);
      showError(err);
    }
  });
}
