"""Bronze lake: raw payloads as partitioned parquet on a pyarrow filesystem (local dir or S3/MinIO)."""

from rayapp.lake.store import BronzeLake

__all__ = ["BronzeLake"]
