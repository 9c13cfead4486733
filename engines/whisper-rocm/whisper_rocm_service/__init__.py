"""OpenAI-compatible transcription service running official openai-whisper on AMD ROCm.

The HTTP layer (``main``), request validation, audio decoding (``audio``) and output
formats (``formats``) import without torch or openai-whisper; only
``backend.OpenAIWhisperBackend`` touches them, and only once it loads the model.
"""
