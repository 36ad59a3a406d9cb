"""Nordic article retrieval assistant: ask questions, get cited passages.

Kept import-light on purpose: `assistant.errors` and `assistant.settings` are leaf
modules that every pipeline stage (corpus, index, ui) may import.
"""
