"""Shared fixtures for the WhisperX service tests.

Runs from engines/whisperx and from the repository root. Audio fixtures come from the
shared fixture tree, ``../shared`` next to the repository (override with SHARED_DIR).
"""

import os
import sys
from pathlib import Path

import pytest

SERVICE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = SERVICE_DIR.parent.parent
if str(SERVICE_DIR) not in sys.path:
    sys.path.insert(0, str(SERVICE_DIR))

from fastapi.testclient import TestClient  # noqa: E402

from whisperx_fake_backend import FakeWhisperX  # noqa: E402
from whisperx_service.app import create_app  # noqa: E402
from whisperx_service.config import Settings  # noqa: E402


def shared_dir() -> Path:
    override = os.environ.get("SHARED_DIR")
    return Path(override) if override else REPO_ROOT.parent / "shared"


AUDIO_DIR = shared_dir() / "fixtures" / "audio"


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not AUDIO_DIR.is_dir():
        pytest.fail(f"audio fixtures not found at {AUDIO_DIR}; set SHARED_DIR to the shared tree")
    return AUDIO_DIR


@pytest.fixture
def upload_dir(tmp_path) -> Path:
    directory = tmp_path / "uploads"
    directory.mkdir()
    return directory


@pytest.fixture
def settings(upload_dir) -> Settings:
    return Settings(
        whisper_model="base",
        hf_token="hf_test_token",
        max_loaded_models=2,
        max_align_models=2,
        model_idle_timeout_s=0,
        tmp_dir=str(upload_dir),
    )


@pytest.fixture
def fake(audio_dir) -> FakeWhisperX:
    return FakeWhisperX.for_fixtures(audio_dir)


@pytest.fixture
def client(settings, fake):
    app = create_app(settings, backend_factory=lambda _settings: fake)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_client(fake):
    """Build a client with other settings: ``with make_client(settings) as client``."""

    def build(custom: Settings, **client_options) -> TestClient:
        return TestClient(create_app(custom, backend_factory=lambda _settings: fake), **client_options)

    return build
