"""WhisperX transcription service that speaks the whisper-asr-webservice HTTP API.

Only the real model backend (``whisperx_service.backend.WhisperXBackend``) imports
``whisperx`` and ``torch``, and only when it is constructed, so the HTTP layer, the
model caches and the output writers import and run without them.
"""

ENGINE_NAME = "whisperx"
