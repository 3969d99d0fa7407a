"""A real S3 API on loopback: moto's server mode in its own process (so the tests'
memory figures are the gateway's alone), started once per test session. Each test gets
a bucket of its own.

moto answers the S3 REST protocol (multipart uploads, ranges, presigned URLs) but does
not check signatures or expiry, so tests about expiry assert what the URL says.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MotoServer:
    url: str
    proc: subprocess.Popen[bytes]

    def new_bucket(self) -> str:
        """Create a bucket with a fresh name (moto takes the plain REST call)."""
        name = f"rec-{uuid.uuid4().hex[:12]}"
        request = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        return name

    def settings(self, bucket: str | None = None, **extra: Any) -> dict[str, Any]:
        """A ``[gateway.s3]`` table for a new (or the given) bucket."""
        return {
            "bucket": bucket or self.new_bucket(),
            "endpoint_url": self.url,
            "region": "us-east-1",
            "path_style": True,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **extra,
        }


def start_moto(boot_timeout: float = 30.0) -> Iterator[MotoServer]:
    """Run ``python -m moto.server`` on a free loopback port until the generator closes.
    (The wait is for a process to boot on a busy machine, not for time to pass.)"""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + boot_timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError("moto server exited at start")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.05)
        yield MotoServer(url, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def bucket_contents(store: Any) -> dict[str, list[str]]:
    """Every object key and every unfinished multipart upload in the store's bucket,
    listed with the S3 API itself."""
    client = await store.client()
    objects = await client.list_objects_v2(Bucket=store.bucket)
    uploads = await client.list_multipart_uploads(Bucket=store.bucket)
    return {
        "objects": sorted(o["Key"] for o in objects.get("Contents", [])),
        "uploads": sorted(u["Key"] for u in uploads.get("Uploads", [])),
    }
