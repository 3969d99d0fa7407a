"""Core plugin: mounts ``/api/webhooks/...`` for every registered webhook source."""
