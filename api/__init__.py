"""The composition root: settings, wiring, the CLI and the HTTP API (see docs/architecture.md)."""
