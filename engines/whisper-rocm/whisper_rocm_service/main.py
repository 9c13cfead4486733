"""HTTP layer: the OpenAI transcription and translation API and a health probe.

Endpoints:
    POST /v1/audio/transcriptions  multipart/form-data, OpenAI's fields (see README.md)
    POST /v1/audio/translations    multipart/form-data, OpenAI's translation fields: speech in
                                   any language to English text (Whisper's translate task)
    GET  /health                   200 once the model is loaded, 503 before or on failure

Run with ``uvicorn --factory whisper_rocm_service.main:app_from_env``; every uvicorn worker
process builds its own app and loads its own copy of the model.
"""

import asyncio
import contextlib
import hmac
import inspect
import logging
import math
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from . import formats
from .audio import AudioDecodeError, DecodedAudio, DecoderUnavailableError, decode_to_pcm
from .backend import BackendInputError, OpenAIWhisperBackend, WhisperBackend
from .config import Settings
from .errors import ApiError, invalid_value
from .languages import normalize_language

log = logging.getLogger("whisper_rocm_service")

BackendFactory = Callable[[Settings], WhisperBackend]

# Room for multipart boundaries, part headers and the small text fields on top of the
# file itself when the whole request body is bounded (bytes).
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
COPY_CHUNK_BYTES = 1024 * 1024
_SAFE_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,10}$")


class ModelHolder:
    """The one model of this worker process and the single thread that runs it.

    Loading and every transcription run on one dedicated thread, so GPU work in a process
    is strictly serialised (one request at a time on the device) while the event loop
    stays free for health probes and uploads. Requests wait for the thread in FIFO order.
    """

    def __init__(self, backend: WhisperBackend, model_name: str) -> None:
        self.backend = backend
        self.model_name = model_name
        self.state = "idle"  # idle → loading → ready | error
        self.info: Dict[str, Any] = {}
        self.error: Optional[str] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper-model")
        # The executor already serialises; the lock keeps the invariant if the backend is
        # ever called from elsewhere (it is cheap and uncontended).
        self._lock = threading.Lock()

    def start_loading(self) -> None:
        """Queue the model load on the model thread; returns at once. Idempotent."""
        if self.state != "idle":
            return
        self.state = "loading"
        self._executor.submit(self._load)

    def _load(self) -> None:
        started = time.monotonic()
        try:
            with self._lock:
                info = self.backend.load()
        except Exception as exc:  # the process stays up so /health can say why
            log.exception("model load failed")
            self.error = "%s: %s" % (type(exc).__name__, exc)
            self.state = "error"
            return
        self.info = dict(info or {})
        self.info.setdefault("model", self.model_name)
        self.info["load_seconds"] = round(time.monotonic() - started, 3)
        self.state = "ready"

    def _transcribe_sync(self, audio: DecodedAudio, options: Dict[str, Any]):
        with self._lock:
            started = time.monotonic()
            result = self.backend.transcribe(audio, **options)
            return result, time.monotonic() - started

    async def transcribe(self, audio: DecodedAudio, **options: Any):
        """Run ``backend.transcribe(audio, **options)`` on the model thread.

        Returns ``(result, model_seconds)``: the openai-whisper result dict and the
        wall-clock seconds the model itself took (queue wait excluded). Raises whatever
        the backend raises.
        """
        future = self._executor.submit(self._transcribe_sync, audio, options)
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Stop accepting work; a transcription in progress finishes on its own."""
        self._executor.shutdown(wait=False)


@dataclass(frozen=True)
class TranscriptionRequest:
    """The validated form fields of one ``POST /v1/audio/transcriptions`` or
    ``POST /v1/audio/translations`` (``task="translate"``: no language, no granularities)."""

    upload: UploadFile
    language: Optional[str]
    prompt: Optional[str]
    temperature: float
    response_format: str
    granularities: List[str]
    task: str = "transcribe"

    @property
    def word_timestamps(self) -> bool:
        """Word timings cost an extra alignment pass, so they are computed only when the
        response can carry them: ``verbose_json`` with word granularity."""
        return self.response_format == "verbose_json" and "word" in self.granularities


def _text_field(form: FormData, name: str) -> Optional[str]:
    value = form.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value(name, "'%s' must be a text field, not a file" % name)
    return value


def parse_transcription_form(form: FormData, settings: Settings) -> TranscriptionRequest:
    """Validate the multipart fields against OpenAI's contract.

    Raises ``ApiError`` (400) naming the field at fault: ``file`` missing or not a file,
    ``model`` other than the loaded model or ``whisper-1``, ``language`` not a Whisper
    code, ``temperature`` not a number in 0..1, ``response_format`` not one of
    json/text/srt/verbose_json/vtt, ``timestamp_granularities[]`` not segment/word.
    """
    upload = form.get("file")
    if upload is None:
        raise ApiError(400, "'file' is required: send the audio as a multipart/form-data "
                            "file field named 'file'", param="file", code="missing_file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "'file' must be a file upload, not a text field",
                       param="file", code="invalid_file")

    model = (_text_field(form, "model") or "").strip()
    if model and model not in settings.accepted_model_names:
        raise ApiError(
            400,
            "model %r is not served here; this server has loaded %r (also accepted as %s)"
            % (model, settings.model, ", ".join(sorted(settings.accepted_model_names - {settings.model}))),
            param="model", code="model_not_found",
        )

    try:
        language = normalize_language(_text_field(form, "language"))
    except ValueError as exc:
        raise ApiError(400, "language %r is not a supported ISO-639-1 code" % str(exc),
                       param="language", code="unsupported_language")

    prompt = _text_field(form, "prompt") or None

    raw_temperature = (_text_field(form, "temperature") or "").strip()
    temperature = 0.0
    if raw_temperature:
        try:
            temperature = float(raw_temperature)
        except ValueError:
            raise invalid_value("temperature", "temperature must be a number between 0 and 1")
        if not math.isfinite(temperature) or not 0.0 <= temperature <= 1.0:
            raise invalid_value("temperature", "temperature must be between 0 and 1, got %s"
                                % raw_temperature)

    response_format = (_text_field(form, "response_format") or "json").strip().lower()
    if response_format not in formats.RESPONSE_FORMATS:
        raise invalid_value("response_format", "response_format must be one of %s, got %r"
                            % (", ".join(formats.RESPONSE_FORMATS), response_format))

    # OpenAI's SDKs send the repeated field with brackets; plain name accepted as well.
    granularities: List[str] = []
    for name in ("timestamp_granularities[]", "timestamp_granularities"):
        for value in form.getlist(name):
            if not isinstance(value, str):
                raise invalid_value("timestamp_granularities[]",
                                    "timestamp_granularities[] must be text fields")
            item = value.strip().lower()
            if item not in formats.TIMESTAMP_GRANULARITIES:
                raise invalid_value(
                    "timestamp_granularities[]",
                    "timestamp_granularities[] values must be segment or word, got %r" % value)
            if item not in granularities:
                granularities.append(item)

    return TranscriptionRequest(
        upload=upload,
        language=language,
        prompt=prompt,
        temperature=temperature,
        response_format=response_format,
        granularities=granularities,
    )


# Fields of the transcription form that OpenAI's translation form does not have.
_NOT_TRANSLATION_FIELDS = ("language", "timestamp_granularities[]", "timestamp_granularities")


def parse_translation_form(form: FormData, settings: Settings) -> TranscriptionRequest:
    """Validate the multipart fields of ``POST /v1/audio/translations`` against OpenAI's
    contract: ``file``, ``model``, ``prompt``, ``response_format``, ``temperature``, checked
    as for transcriptions.

    Raises ``ApiError`` (400) as ``parse_transcription_form`` does, and 400
    ``unknown_parameter`` for ``language`` or ``timestamp_granularities[]``: OpenAI's
    translations detect the spoken language and return no word timings, so a client sending
    them would silently not get what it asked for.
    """
    for name in _NOT_TRANSLATION_FIELDS:
        if name in form:
            raise ApiError(400, "Unrecognized request argument supplied: %s (translations detect the "
                                "spoken language and return segment times only)" % name,
                           param=name, code="unknown_parameter")
    parsed = parse_transcription_form(form, settings)
    return TranscriptionRequest(
        upload=parsed.upload,
        language=None,
        prompt=parsed.prompt,
        temperature=parsed.temperature,
        response_format=parsed.response_format,
        granularities=[],
        task="translate",
    )


class _BodyTooLarge(Exception):
    pass


def _limited_receive(receive: Callable[[], Awaitable[dict]], limit: int):
    """Wrap an ASGI ``receive`` so that reading more than ``limit`` body bytes raises
    ``_BodyTooLarge``: a chunked upload without Content-Length is cut off mid-stream
    instead of being spooled to disk whole first."""
    received = 0

    async def wrapped() -> dict:
        nonlocal received
        message = await receive()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge()
        return message

    return wrapped


def _too_large(settings: Settings) -> ApiError:
    return ApiError(413, "file is larger than the %d byte limit" % settings.max_upload_bytes,
                    param="file", code="file_too_large")


def _check_auth(request: Request, settings: Settings) -> None:
    """Raise 401 unless ``Authorization: Bearer <API_KEY>`` matches (when a key is set).
    Constant-time comparison so the key cannot be guessed byte by byte from timings."""
    if not settings.api_key:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8"), settings.api_key.encode("utf-8")):
        raise ApiError(401, "invalid or missing API key: send 'Authorization: Bearer <key>'",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def _copy_upload(source: Any, dest_path: str, max_bytes: int) -> int:
    """Copy an upload's file object to ``dest_path`` in 1 MiB chunks; return the byte
    count. Raises ``_BodyTooLarge`` once more than ``max_bytes`` were read."""
    total = 0
    source.seek(0)
    with open(dest_path, "wb") as out:
        while True:
            chunk = source.read(COPY_CHUNK_BYTES)
            if not chunk:
                return total
            total += len(chunk)
            if total > max_bytes:
                raise _BodyTooLarge()
            out.write(chunk)


def _temp_path(settings: Settings, suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix="whisper-rocm-", suffix=suffix, dir=settings.tmp_dir)
    os.close(fd)
    return path


def _remove(path: Optional[str]) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def render_result(result: Dict[str, Any], response_format: str, duration: float,
                  granularities: List[str], task: str = "transcribe") -> Response:
    """The HTTP response for a Whisper result in the requested OpenAI format.

    ``json`` → ``{"text"}``; ``text`` → the transcript and a newline; ``srt``/``vtt`` →
    subtitle text; ``verbose_json`` → see ``formats.to_verbose_json`` (with ``task``).
    ``duration`` is the audio length in seconds.
    """
    if response_format == "json":
        return JSONResponse({"text": formats.transcript_text(result)})
    if response_format == "text":
        return PlainTextResponse(formats.transcript_text(result) + "\n",
                                 media_type=formats.TEXT_MEDIA_TYPE)
    if response_format == "srt":
        return PlainTextResponse(formats.to_srt(result.get("segments") or []),
                                 media_type=formats.TEXT_MEDIA_TYPE)
    if response_format == "vtt":
        return PlainTextResponse(formats.to_vtt(result.get("segments") or []),
                                 media_type=formats.TEXT_MEDIA_TYPE)
    return JSONResponse(formats.to_verbose_json(result, duration, granularities, task))


def _install_lifespan(app_kwargs: Dict[str, Any], startup: Callable[[], None],
                      shutdown: Callable[[], None]) -> Callable[[FastAPI], None]:
    """Arrange for ``startup``/``shutdown`` to run once per process around serving.

    Newer FastAPI takes a ``lifespan`` context manager in its constructor (and deprecates
    ``on_startup``); FastAPI 0.92, Debian's, lacks that argument but its Starlette router
    has ``lifespan_context``. The same code thus runs in the image and in the Debian test
    environment without deprecation warnings. Adds to ``app_kwargs`` when the constructor
    supports it; returns a hook to call on the built app otherwise.
    """
    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        startup()
        try:
            yield
        finally:
            shutdown()

    if "lifespan" in inspect.signature(FastAPI.__init__).parameters:
        app_kwargs["lifespan"] = lifespan
        return lambda app: None

    def attach(app: FastAPI) -> None:
        app.router.lifespan_context = lifespan

    return attach


def create_app(settings: Optional[Settings] = None,
               backend_factory: Optional[BackendFactory] = None) -> FastAPI:
    """Build the ASGI app.

    ``settings`` defaults to ``Settings.from_env()``; ``backend_factory`` builds the model
    backend from the settings (default ``OpenAIWhisperBackend``; tests pass a fake). The
    backend is built here and loaded at application startup, once, on the model thread;
    until the load finishes the transcription endpoint answers 503.
    """
    settings = settings or Settings.from_env()
    backend = (backend_factory or OpenAIWhisperBackend)(settings)
    holder = ModelHolder(backend, settings.model)

    app_kwargs: Dict[str, Any] = {
        "title": "whisper-rocm",
        "description": "OpenAI-compatible transcription with openai-whisper on AMD ROCm",
    }
    attach_lifespan = _install_lifespan(app_kwargs, holder.start_loading, holder.shutdown)
    app = FastAPI(**app_kwargs)
    attach_lifespan(app)
    app.state.settings = settings
    app.state.model = holder

    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        return ApiError(exc.status_code, str(exc.detail),
                        headers=getattr(exc, "headers", None) or None).to_response()

    app.add_exception_handler(StarletteHTTPException, http_error)

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 ``{status: "ok", model, device, device_name, fp16, hip_version,
        torch_version, load_seconds}`` once the model is loaded; 503 with
        ``status: "loading"`` before, or ``status: "error"`` and ``error`` if the load
        failed."""
        if holder.state == "ready":
            return JSONResponse({"status": "ok", **holder.info})
        if holder.state == "error":
            return JSONResponse({"status": "error", "model": settings.model,
                                 "error": holder.error}, status_code=503)
        return JSONResponse({"status": "loading", "model": settings.model}, status_code=503)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        """OpenAI ``POST /v1/audio/transcriptions``; fields and formats in README.md.

        Errors (OpenAI error body): 400 bad field, empty or undecodable file; 401 bad
        API key; 413 file over ``MAX_UPLOAD_BYTES``; 503 model not loaded; 500 server
        fault.
        """
        return await serve(request, parse_transcription_form)

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        """OpenAI ``POST /v1/audio/translations``: English text from speech in any
        language (openai-whisper's ``task="translate"``); fields and formats in README.md.

        Errors as for transcriptions, plus 400 ``unknown_parameter`` for ``language`` or
        ``timestamp_granularities[]`` and 400 (param ``model``) when the loaded model is
        English-only.
        """
        return await serve(request, parse_translation_form)

    async def serve(request: Request,
                    parse: Callable[[FormData, Settings], TranscriptionRequest]) -> Response:
        started = time.monotonic()
        form: Optional[FormData] = None
        upload_path: Optional[str] = None
        pcm_path: Optional[str] = None
        try:
            _check_auth(request, settings)
            if holder.state != "ready":
                detail = ("model failed to load: %s" % holder.error) if holder.state == "error" \
                    else "model %s is still loading" % settings.model
                raise ApiError(503, detail, code="model_not_loaded", headers={"Retry-After": "10"})

            body_limit = settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
            declared = request.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > body_limit:
                raise _too_large(settings)
            try:
                form = await Request(request.scope, _limited_receive(request.receive, body_limit)).form()
            except _BodyTooLarge:
                raise _too_large(settings)
            except Exception as exc:
                raise ApiError(400, "could not parse the multipart/form-data body: %s" % exc,
                               code="invalid_multipart")

            params = parse(form, settings)

            suffix = os.path.splitext(params.upload.filename or "")[1]
            upload_path = _temp_path(settings, suffix if _SAFE_SUFFIX.match(suffix) else "")
            try:
                size = await run_in_threadpool(_copy_upload, params.upload.file, upload_path,
                                               settings.max_upload_bytes)
            except _BodyTooLarge:
                raise _too_large(settings)
            if size == 0:
                raise ApiError(400, "the uploaded file is empty", param="file", code="empty_file")

            pcm_path = _temp_path(settings, ".pcm")
            try:
                audio = await run_in_threadpool(decode_to_pcm, upload_path, pcm_path,
                                                ffmpeg_bin=settings.ffmpeg_bin,
                                                timeout_s=settings.decode_timeout_s)
            except AudioDecodeError as exc:
                raise ApiError(400, str(exc), param="file", code="invalid_audio")
            except DecoderUnavailableError as exc:
                raise ApiError(500, str(exc), code="decoder_unavailable")
            # The original upload is no longer needed; free its disk space before the
            # possibly long wait for the model.
            _remove(upload_path)
            upload_path = None

            try:
                result, model_seconds = await holder.transcribe(
                    audio,
                    language=params.language,
                    prompt=params.prompt,
                    temperature=params.temperature,
                    word_timestamps=params.word_timestamps,
                    task=params.task,
                )
            except BackendInputError as exc:
                raise ApiError(400, str(exc), param=exc.param, code="unsupported_language"
                               if exc.param == "language" else "invalid_value")

            response = render_result(result, params.response_format, audio.duration,
                                     params.granularities, params.task)
            elapsed = time.monotonic() - started
            rtf = model_seconds / audio.duration if audio.duration > 0 else 0.0
            response.headers["X-Whisper-Model"] = settings.model
            response.headers["X-Audio-Duration-Seconds"] = "%.3f" % audio.duration
            response.headers["X-Processing-Seconds"] = "%.3f" % elapsed
            response.headers["X-Real-Time-Factor"] = "%.4f" % rtf
            log.info("%sd %.1f s of audio in %.2f s (model %.2f s, RTF %.3f) as %s",
                     params.task, audio.duration, elapsed, model_seconds, rtf,
                     params.response_format)
            return response
        except ApiError as exc:
            return exc.to_response()
        except Exception:
            log.exception("transcription failed")
            return ApiError(500, "internal error while transcribing",
                            code="internal_error").to_response()
        finally:
            _remove(upload_path)
            _remove(pcm_path)
            if form is not None:
                await form.close()

    return app


def app_from_env() -> FastAPI:
    """uvicorn ``--factory`` entry point: logging at ``LOG_LEVEL`` (default INFO) and
    settings from the environment. Raises ``SettingsError`` on invalid variables."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s [pid %(process)d] %(message)s",
    )
    return create_app(Settings.from_env())
