"""Shared fixtures for the whisper-rocm service tests.

Works from ``engines/whisper-rocm`` and from the repository root (and next to other
engines' test suites in one pytest run): the service directory and this directory are put
on ``sys.path`` explicitly, and every importable name here is prefixed ``whisper_rocm``.
"""

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SERVICE_DIR = TESTS_DIR.parent
REPO_ROOT = SERVICE_DIR.parent.parent
for _path in (str(SERVICE_DIR), str(TESTS_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fastapi.testclient import TestClient  # noqa: E402

from whisper_rocm_fakes import FakeWhisperBackend, wait_until_ready  # noqa: E402
from whisper_rocm_service.config import Settings  # noqa: E402
from whisper_rocm_service.main import create_app  # noqa: E402


def _find_audio_dir() -> Path:
    """``$SHARED_DIR/fixtures/audio``, else ``<repo>/../shared`` or ``<repo>/shared``."""
    override = os.environ.get("SHARED_DIR")
    candidates = [Path(override)] if override else [REPO_ROOT.parent / "shared", REPO_ROOT / "shared"]
    for candidate in candidates:
        audio = candidate / "fixtures" / "audio"
        if (audio / "jfk.wav").is_file():
            return audio
    raise FileNotFoundError(
        "audio fixtures not found in %s; set SHARED_DIR to the directory holding "
        "fixtures/audio/jfk.wav" % ", ".join(str(c) for c in candidates))


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return _find_audio_dir()


@pytest.fixture(scope="session")
def jfk_wav(audio_dir: Path) -> Path:
    """11.0 s, 16 kHz mono WAV of speech."""
    return audio_dir / "jfk.wav"


@pytest.fixture(scope="session")
def jfk_mp3(audio_dir: Path) -> Path:
    """The same speech as MP3 (about 11.1 s)."""
    return audio_dir / "jfk.mp3"


@dataclass
class Service:
    """One running app (lifespan entered) with its fake backend."""

    client: TestClient
    backend: Any
    settings: Settings
    tmp_dir: Path
    factory_calls: List[Settings] = field(default_factory=list)

    def transcribe(self, path: Path, data: Any = None, headers: Any = None, filename: str = ""):
        with open(path, "rb") as handle:
            return self.client.post(
                "/v1/audio/transcriptions",
                files={"file": (filename or path.name, handle, "application/octet-stream")},
                data=data or {},
                headers=headers or {},
            )


@pytest.fixture
def make_service(tmp_path: Path):
    """Factory: ``make_service(backend=None, wait_ready=True, **Settings fields)``."""
    stack = contextlib.ExitStack()
    backends: List[Any] = []

    def make(backend: Any = None, wait_ready: bool = True, **overrides: Any) -> Service:
        work = tmp_path / ("tmp%d" % len(backends))
        work.mkdir()
        settings = Settings(**dict({"model": "medium", "tmp_dir": str(work)}, **overrides))
        fake = backend or FakeWhisperBackend()
        backends.append(fake)
        calls: List[Settings] = []

        def factory(given: Settings) -> Any:
            calls.append(given)
            fake.settings = given
            return fake

        client = stack.enter_context(TestClient(create_app(settings, factory)))
        if wait_ready:
            wait_until_ready(client)
        return Service(client, fake, settings, work, calls)

    yield make
    # Release anything a test left blocked so no model thread outlives the test.
    for fake in backends:
        for gate in (getattr(fake, "load_gate", None), getattr(fake, "transcribe_gate", None)):
            if gate is not None:
                gate.set()
    stack.close()
