"""``gateway storage migrate --to s3``: copy local recordings into the bucket (see
:mod:`gateway.storage.migrate`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.config import GatewayConfig
from gateway.errors import StartupError

MIGRATE_HELP = """Copy stored recordings from <data_dir>/recordings to the [gateway.s3]
bucket under the same keys, each verified against its row's sha256 before the upload
completes. Resumable: rows already in the bucket are skipped. Exit status 1 when a row
could not be copied (each is listed)."""


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storage", help="recording storage: copy local recordings to S3")
    storage = p.add_subparsers(dest="storage_command", required=True)
    q = storage.add_parser(
        "migrate",
        help="copy local recordings to the S3 bucket, verified and resumable",
        description=MIGRATE_HELP,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("--to", choices=["s3"], required=True, help="the store to copy to")
    q.add_argument(
        "--delete-local",
        action="store_true",
        help="delete each local copy once the bucket's copy reads back with the row's "
        'sha256 (only with recording_storage = "s3": the app must read the bucket)',
    )
    q.add_argument("--concurrency", type=int, default=4, help="recordings copied at once")
    q.set_defaults(handler=cmd_storage_migrate)


def _bucket_settings(config: GatewayConfig) -> None:
    settings = config.gateway
    if not settings.s3.bucket:
        raise StartupError("storage migrate: [gateway.s3] bucket is not set")
    unresolved = [m for m in config.unresolved.get("gateway", []) if m.startswith("s3.")]
    if unresolved:
        raise StartupError(f"storage migrate: key {unresolved[0]}")


async def _migrate(config: GatewayConfig, delete_local: bool, concurrency: int) -> int:
    from gateway.app import opened
    from gateway.storage import local_storage
    from gateway.storage.migrate import Migration
    from gateway.storage.s3 import S3Storage

    _bucket_settings(config)
    if delete_local and config.gateway.recording_storage != "s3":
        raise StartupError(
            'storage migrate: --delete-local needs recording_storage = "s3" first, or the '
            "gateway would lose the recordings it reads from disk"
        )
    local = local_storage(config, create=False)
    if not local.root.is_dir():
        print(f"no local recordings directory ({local.root}): nothing to copy")
        return 0
    bucket = S3Storage(config.gateway.s3)
    try:
        async with opened(config) as gw:
            if await gw.db.pending_migrations():
                raise StartupError("database: migrations pending; run `gateway migrate`")
            await bucket.ping()
            migration = Migration(
                local,
                bucket,
                delete_local=delete_local,
                concurrency=max(1, concurrency),
                on_problem=lambda line: print(line, file=sys.stderr),
            )
            report = await migration.run()
    finally:
        await bucket.close()
    print(report.summary())
    return 1 if report.problems else 0


def cmd_storage_migrate(args: argparse.Namespace, config: GatewayConfig) -> int:
    from gateway.storage import StorageUnavailable

    try:
        return asyncio.run(_migrate(config, args.delete_local, args.concurrency))
    except StorageUnavailable as exc:
        raise StartupError(f"storage migrate: {exc}") from None
