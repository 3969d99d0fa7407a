"""A test plugin that brings its own Tortoise app: a model and its migration."""

from __future__ import annotations

from gateway import hookimpl


@hookimpl
def register_models(config):
    return {
        "notes": {
            "models": ["tests.support.notes_plugin.models"],
            "migrations": "tests.support.notes_plugin.migrations",
        }
    }
