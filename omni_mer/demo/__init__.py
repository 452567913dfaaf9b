"""The Gradio demo (omni_mer.demo.app) and its follow-up chat (omni_mer.demo.chat)."""
