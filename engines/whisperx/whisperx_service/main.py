"""ASGI entry point: ``uvicorn whisperx_service.main:app --host 0.0.0.0 --port 9000``.

Kept apart from ``app.py`` so that importing the app factory (tests, tools) does not
read the environment or build the real backend. Run one worker per GPU: each worker
process loads its own models.
"""

import logging
import os

from .app import create_app

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)

app = create_app()
