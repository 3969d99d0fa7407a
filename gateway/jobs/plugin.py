"""Core plugin: runs the in-process job worker and the jobs API."""
