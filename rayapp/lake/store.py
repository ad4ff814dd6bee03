"""Partitioned parquet under `{root}/{source}/{dataset}/dt=YYYY-MM-DD/{part}.parquet`.

One pyarrow filesystem API for both backends. Writes are atomic per file: on a local disk the
file is written under a hidden temporary name and renamed into place; on S3 an object only
becomes visible when its upload completes. Writing the same (source, dataset, dt, part) again
replaces the file, so re-ingesting a window is idempotent.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings, StorageSettings

log = get_logger(__name__)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_PART_DIR = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value) or value.startswith("."):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '_', '-', '.'")
    return value


@dataclass
class BronzeLake:
    fs: pafs.FileSystem
    root: str  # path inside fs: a directory, or "bucket/prefix" on S3
    backend: str = "local"

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings) -> BronzeLake:
        st = settings.storage
        if st.backend == "local":
            return cls.local(st.root)
        return cls.s3(st)

    @classmethod
    def local(cls, root: str | object) -> BronzeLake:
        from pathlib import Path

        path = Path(str(root)).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(pafs.LocalFileSystem(), str(path), "local")

    @classmethod
    def s3(cls, st: StorageSettings) -> BronzeLake:
        if not st.endpoint or not st.bucket:
            raise ValueError("storage.endpoint and storage.bucket are required for storage=minio")
        ensure_bucket(st)
        u = urlparse(st.endpoint)
        fs = pafs.S3FileSystem(
            access_key=st.access_key,
            secret_key=st.secret_key,
            endpoint_override=u.netloc,
            scheme=u.scheme,
            region=st.region,
            allow_bucket_creation=False,
        )
        root = f"{st.bucket}/{st.root.strip('/')}" if st.root.strip("/") else st.bucket
        return cls(fs, root, "minio")

    # ---- paths --------------------------------------------------------------------------------
    def dataset_dir(self, source: str, dataset: str) -> str:
        return f"{self.root}/{_check_name('source', source)}/{_check_name('dataset', dataset)}"

    def partition_dir(self, source: str, dataset: str, day: dt.date) -> str:
        return f"{self.dataset_dir(source, dataset)}/dt={day.isoformat()}"

    # ---- write / read -------------------------------------------------------------------------
    def write(self, source: str, dataset: str, day: dt.date, table: pa.Table, part: str = "data") -> str:
        """Atomically write (or replace) one file of a partition; returns its path."""
        directory = self.partition_dir(source, dataset, day)
        final = f"{directory}/{_check_name('part', part)}.parquet"
        if self.backend == "local":
            self.fs.create_dir(directory, recursive=True)
            tmp = f"{directory}/.tmp-{uuid.uuid4().hex}.parquet"
            try:
                pq.write_table(table, tmp, filesystem=self.fs, compression="zstd")
                self.fs.move(tmp, final)  # rename(2): atomic on one filesystem
            finally:
                if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                    self.fs.delete_file(tmp)
        else:
            # A multipart upload is invisible until it completes: no half object ever shows.
            pq.write_table(table, final, filesystem=self.fs, compression="zstd")
        log.debug("bronze written", path=final, rows=table.num_rows)
        return final

    def replace_partition(self, source: str, dataset: str, day: dt.date, table: pa.Table) -> str:
        """Make `table` the whole partition: write it, then remove every other file in it."""
        path = self.write(source, dataset, day, table)
        for info in self._files(self.partition_dir(source, dataset, day)):
            if info.path != path:
                self.fs.delete_file(info.path)
        return path

    def partitions(self, source: str, dataset: str) -> list[dt.date]:
        base = self.dataset_dir(source, dataset)
        if self.fs.get_file_info(base).type == pafs.FileType.NotFound:
            return []
        days = []
        for info in self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
            m = _PART_DIR.match(info.base_name)
            if info.type == pafs.FileType.Directory and m:
                days.append(dt.date.fromisoformat(m.group(1)))
        return sorted(days)

    def _files(self, directory: str) -> Iterator[pafs.FileInfo]:
        sel = pafs.FileSelector(directory, allow_not_found=True)
        for info in sorted(self.fs.get_file_info(sel), key=lambda i: i.path):
            if (
                info.type == pafs.FileType.File
                and info.base_name.endswith(".parquet")
                and not info.base_name.startswith(".")
            ):
                yield info

    def files(self, source: str, dataset: str, start: dt.date | None = None, end: dt.date | None = None) -> list[str]:
        out: list[str] = []
        for day in self.partitions(source, dataset):
            if (start and day < start) or (end and day > end):
                continue
            out.extend(i.path for i in self._files(self.partition_dir(source, dataset, day)))
        return out

    def read(self, source: str, dataset: str, start: dt.date | None = None, end: dt.date | None = None) -> pa.Table:
        """All rows of the partitions in [start, end] (inclusive), with a `dt` column added."""
        tables = []
        for path in self.files(source, dataset, start, end):
            t = pq.read_table(path, filesystem=self.fs)
            day = path.rsplit("/dt=", 1)[1].split("/", 1)[0]
            tables.append(t.append_column("dt", pa.array([day] * t.num_rows, pa.string())))
        if not tables:
            return pa.table({})
        return pa.concat_tables(tables, promote_options="default")


def ensure_bucket(st: StorageSettings) -> None:
    """Create the bucket with the MinIO SDK when it does not exist yet."""
    from minio import Minio

    assert st.endpoint and st.bucket
    u = urlparse(st.endpoint)
    client = Minio(
        u.netloc, access_key=st.access_key, secret_key=st.secret_key, secure=u.scheme == "https", region=st.region
    )
    if not client.bucket_exists(st.bucket):
        client.make_bucket(st.bucket, location=st.region)
        log.info("bucket created", bucket=st.bucket, endpoint=st.endpoint)
