"""Stable identifiers shared by live ingest and backfill."""

from __future__ import annotations

import hashlib


def article_id(source: str, guid_or_url: str) -> str:
    """``sha1(f"{source}|{guid or url}")``: the same article from the same source gets one id."""
    if not source or not guid_or_url or not guid_or_url.strip():
        raise ValueError("article_id needs a source and a guid or url")
    return hashlib.sha1(f"{source}|{guid_or_url.strip()}".encode()).hexdigest()
