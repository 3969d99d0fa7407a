"""Core plugin: mounts ``/api/integrations/...`` for every registered provider."""
