"""Web UI (Gradio): chat with cited passages, the source view, controls and feedback."""
