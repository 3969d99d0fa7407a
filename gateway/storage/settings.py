"""``[gateway.s3]``: the S3-compatible bucket recordings go to when
``[gateway] recording_storage = "s3"`` (and what ``gateway storage migrate`` copies to)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MIB = 1024 * 1024


def _url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


class S3Settings(BaseModel):
    """Where the bucket is and how to sign for it. Credentials are secret references
    (``{ env = "..." }``); leave them out to use the standard AWS chain (environment,
    shared files, an instance or pod role)."""

    model_config = ConfigDict(extra="forbid")

    bucket: str | None = Field(default=None, min_length=3, max_length=63)
    prefix: str = Field(default="", description="Prepended to every key, e.g. 'recordings/'.")
    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, R2, ...); unset: AWS."
    )
    presign_endpoint_url: str | None = Field(
        default=None,
        description="Endpoint that presigned URLs name, when browsers reach the store by "
        "another address than the gateway does; default: endpoint_url.",
    )
    path_style: bool = Field(
        default=False, description="Bucket in the path, not the host name (MinIO and others)."
    )
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    part_size_mib: int = Field(
        default=8, ge=5, le=512, description="Multipart part size; S3's minimum is 5 MiB."
    )
    checksums: Literal["when_supported", "when_required"] = Field(
        default="when_supported",
        description="botocore's request checksums; 'when_required' for stores that reject "
        "the newer CRC checksum headers.",
    )
    connect_timeout_seconds: float = Field(default=5, gt=0)
    read_timeout_seconds: float = Field(default=60, gt=0)
    max_connections: int = Field(default=20, ge=1)
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per request (botocore's standard retries)."
    )

    _check_urls = field_validator("endpoint_url", "presign_endpoint_url")(_url)

    @field_validator("prefix")
    @classmethod
    def _normal_prefix(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""

    @property
    def part_size(self) -> int:
        return self.part_size_mib * MIB
