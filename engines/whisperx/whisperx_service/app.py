"""HTTP layer: the whisper-asr-webservice API on top of TranscriptionService.

Endpoints (port 9000 in the image):
  * POST /asr — multipart ``audio_file``, options as query parameters; the body is
    text/plain in every output format, JSON included, as whisper-asr-webservice does.
  * POST /detect-language — multipart ``audio_file`` -> JSON.
  * GET /health — JSON process state.

Every error answers ``{"detail": "<one line>"}``: 400 for bad input, 422 for a
malformed multipart request, 503 when a model cannot be loaded or the GPU is out of
memory (worth retrying), 500 otherwise. Every response carries ``Asr-Engine: whisperx``.
"""

import logging
import os
import shutil
import tempfile
from typing import Callable, Optional
from urllib.parse import quote

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from . import ENGINE_NAME
from .audio import load_audio
from .backend import ModelBackend
from .cache import IdleReaper, reaper_interval
from .config import Settings
from .errors import BadRequest, EngineUnavailable, ServiceError
from .formats import render
from .options import parse_asr_query, parse_encode, parse_model
from .service import TranscriptionService

log = logging.getLogger("whisperx_service.app")

BackendFactory = Callable[[Settings], ModelBackend]

_COPY_CHUNK_BYTES = 1 << 20


def default_backend_factory(settings: Settings) -> ModelBackend:
    """The real WhisperX backend; imported here so the app imports without whisperx."""
    from .backend import WhisperXBackend

    return WhisperXBackend(settings)


def create_app(
    settings: Optional[Settings] = None,
    backend_factory: Optional[BackendFactory] = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        settings: configuration; read from the environment when None.
        backend_factory: builds the model backend at start-up; tests pass a fake.

    Raises:
        ConfigError: invalid environment (only when ``settings`` is None).
    """
    settings = settings or Settings.from_env()
    backend_factory = backend_factory or default_backend_factory

    app = FastAPI(
        title="WhisperX ASR service",
        description=(
            "WhisperX (batched faster-whisper, wav2vec2 word alignment, pyannote speaker "
            "diarization) behind the whisper-asr-webservice API."
        ),
        version="1.0.0",
    )
    app.state.service = None
    app.state.reaper = None

    @app.on_event("startup")
    def start_service() -> None:
        service = TranscriptionService(backend_factory(settings), settings)
        app.state.service = service
        if settings.model_idle_timeout_s > 0:
            reaper = IdleReaper(
                service.evict_idle,
                reaper_interval(settings.model_idle_timeout_s),
                on_error=lambda error: log.exception("idle unload failed", exc_info=error),
            )
            reaper.start()
            app.state.reaper = reaper

    @app.on_event("shutdown")
    def stop_service() -> None:
        if app.state.reaper is not None:
            app.state.reaper.stop()
            app.state.reaper = None
        if app.state.service is not None:
            app.state.service.close()
            app.state.service = None

    @app.middleware("http")
    async def engine_header(request: Request, call_next):
        response = await call_next(request)
        response.headers["Asr-Engine"] = ENGINE_NAME
        return response

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return _error(error.status_code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query"))
            problems.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return _error(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises after this handler, so the server logs the traceback once.
        return _error(500, f"internal error: {type(error).__name__}: {error}")

    def service_of(request: Request) -> TranscriptionService:
        service = request.app.state.service
        if service is None:
            raise EngineUnavailable("the service is starting; retry shortly")
        return service

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/health", tags=["Endpoints"])
    async def health(request: Request) -> JSONResponse:
        """200 once the process serves requests; models load on demand and are listed when loaded."""
        return JSONResponse(service_of(request).health())

    @app.post("/asr", tags=["Endpoints"], response_class=PlainTextResponse)
    async def asr(
        request: Request,
        audio_file: Optional[UploadFile] = File(None, description="Audio or video file (any format ffmpeg reads)"),
        task: Optional[str] = Query(None, description="transcribe (default) or translate (to English)"),
        language: Optional[str] = Query(None, description="Whisper language code; leave out to detect it"),
        initial_prompt: Optional[str] = Query(None, description="Text that primes the decoder (names, spelling)"),
        encode: Optional[str] = Query(None, description="true (default): decode with ffmpeg; false: raw 16 kHz mono s16le PCM"),
        word_timestamps: Optional[str] = Query(None, description="Accepted for compatibility; words are always aligned"),
        diarize: Optional[str] = Query(None, description="Label speakers (needs HF_TOKEN on the server)"),
        min_speakers: Optional[str] = Query(None, description="Lower bound on speakers, 1..20"),
        max_speakers: Optional[str] = Query(None, description="Upper bound on speakers, 1..20"),
        output: Optional[str] = Query(None, description="txt (default), vtt, srt, tsv or json"),
        model: Optional[str] = Query(None, description="tiny, base, small, medium, large-v2 or large-v3; default WHISPER_MODEL"),
    ) -> PlainTextResponse:
        """Transcribe an upload; the body is text/plain whatever the output format."""
        # The query parameters above are declared for the OpenAPI page; their values are
        # read raw from the query string so that every mistake gets the same 400 answer.
        service = service_of(request)
        options = parse_asr_query(request.query_params, settings)
        upload = _required(audio_file)
        audio = await _decode_upload(upload, options.encode, settings.tmp_dir)
        result = await run_in_threadpool(service.transcribe, audio, options)
        return PlainTextResponse(
            render(result, options.output),
            headers={
                "Content-Disposition": f'attachment; filename="{quote(upload.filename or "audio")}.{options.output}"'
            },
        )

    @app.post("/detect-language", tags=["Endpoints"])
    async def detect_language(
        request: Request,
        audio_file: Optional[UploadFile] = File(None, description="Audio or video file; only the first 30 s are used"),
        encode: Optional[str] = Query(None, description="true (default): decode with ffmpeg; false: raw 16 kHz mono s16le PCM"),
        model: Optional[str] = Query(None, description="Whisper size; default WHISPER_MODEL"),
    ) -> JSONResponse:
        """Identify the spoken language from the first 30 s."""
        service = service_of(request)
        chosen_model = parse_model(request.query_params, settings)
        encode_flag = parse_encode(request.query_params)
        upload = _required(audio_file)
        audio = await _decode_upload(upload, encode_flag, settings.tmp_dir)
        return JSONResponse(await run_in_threadpool(service.detect_language, audio, chosen_model))

    return app


def _error(status_code: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code)


def _required(upload: Optional[UploadFile]) -> UploadFile:
    # FastAPI would answer a missing file with a list-shaped 422; a plain 400 with one
    # sentence is easier for clients to show.
    if upload is None or not hasattr(upload, "file"):
        raise BadRequest("missing multipart file field 'audio_file'")
    return upload


async def _decode_upload(upload: UploadFile, encode: bool, tmp_dir: Optional[str]):
    """Spool the upload to a temporary file, decode it to 16 kHz mono PCM, delete the file.

    ffmpeg reads from a real file rather than a pipe because containers such as MP4
    keep their index at the end and need seeking.
    """
    descriptor, path = tempfile.mkstemp(prefix="whisperx-upload-", dir=tmp_dir)
    try:
        with os.fdopen(descriptor, "wb") as spooled:
            await run_in_threadpool(shutil.copyfileobj, upload.file, spooled, _COPY_CHUNK_BYTES)
        return await run_in_threadpool(load_audio, path, encode)
    finally:
        os.unlink(path)
