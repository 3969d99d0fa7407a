"""Migrated empty SQLite files, one per set of model apps, for one pytest process.

Tortoise's migration executor re-renders every model state per migration, so migrating
a fresh file takes seconds on a loaded 2-core machine, and almost every test builds a
fresh app. The first app with a given set of model apps migrates for real; its schema
(rows deleted, ``tortoise_migrations`` kept) is copied into the next ones' files, whose
startup then finds nothing pending. A test that passes its own ``database_url`` (the
migration tests do) never meets this.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from gateway import get_gateway


class SqliteSchemas:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gateway-schemas-"))
        atexit.register(shutil.rmtree, self.dir, ignore_errors=True)
        self.files: dict[str, Path] = {}

    @staticmethod
    def _key(app: Any) -> str:
        apps = get_gateway(app).db.config["apps"]
        return hashlib.sha256(json.dumps(apps, sort_keys=True, default=str).encode()).hexdigest()

    @staticmethod
    def _path(url: str) -> Path:
        return Path(url.removeprefix("sqlite://"))

    def restore(self, app: Any, url: str) -> None:
        """Copy the schema for ``app``'s model apps to ``url``'s file, if one is kept and
        the file does not exist yet."""
        template = self.files.get(self._key(app))
        target = self._path(url)
        if template is not None and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(template, target)

    def keep(self, app: Any, url: str) -> None:
        """Keep the schema of ``app``'s freshly migrated file (its rows left behind)."""
        key = self._key(app)
        if key in self.files:
            return
        template = self.dir / f"{key}.db"
        source = sqlite3.connect(self._path(url))
        copy = sqlite3.connect(template)
        try:
            source.backup(copy)  # a consistent snapshot while the app holds the file open
            tables = [
                name
                for (name,) in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if name != "tortoise_migrations" and not name.startswith("sqlite_stat")
            ]
            for name in tables:
                copy.execute(f'DELETE FROM "{name}"')  # names from the schema
            copy.commit()
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
            source.close()
        self.files[key] = template


SCHEMAS = SqliteSchemas()
