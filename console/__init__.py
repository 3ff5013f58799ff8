"""The Onward operations console: a Textual app over the engine's public API."""
