"""Store locations (xwvnet.io.storage.locate): URLs are checked and never taken for local paths; secrets never shown."""

from __future__ import annotations

import os

import pytest

import xwvnet
from tests._factories import make_imagettes, new_bucket
from xwvnet.io import store as zs
from xwvnet.io.audit import status
from xwvnet.io.storage import locate


def test_a_bad_url_is_refused_never_taken_for_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad, message in [("s3:/bucket/x.zarr", "without '//'"), ("ftp://host/x", "unknown storage scheme"),
                         ("s3:///x", "names no bucket")]:
        with pytest.raises(ValueError, match=message):
            xwvnet.to_store(make_imagettes(2), bad)
    with pytest.raises(ValueError, match="regoin"):
        xwvnet.open_store("s3://bucket/x", storage_options={"regoin": "eu-west-1"})
    assert not any(tmp_path.iterdir())  # nothing was written as a folder named like the URL
    assert str(locate("file://" + str(tmp_path / "a.zarr"))) == str(tmp_path / "a.zarr")


def test_secrets_never_appear(s3_endpoint):
    bucket = new_bucket(s3_endpoint)
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    options = {"access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "secret_access_key": secret}
    location = locate(f"s3://{bucket}/s.zarr", options)
    assert secret not in repr(location) and secret not in str(location)
    assert "secret_access_key" in repr(location)
    xwvnet.to_store(make_imagettes(2), location)
    seen = [repr(xwvnet.history(location).to_dict()), repr(xwvnet.open_store(location).attrs), repr(status(location))]
    with pytest.raises(zs.StoreAccessError) as info:
        xwvnet.open_store(f"s3://{bucket}-missing/s.zarr", storage_options=options)
    seen.append(str(info.value))
    assert all(secret not in text for text in seen)


def test_the_environment_is_read_alike_by_icechunk_and_obstore(monkeypatch):
    """AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL, and AWS_ALLOW_HTTP 1/true/yes, for both backends."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:10")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "yes")
    store = locate("s3://bucket/prefix").object_store()
    assert store.config["endpoint"] == "http://127.0.0.1:10"
    assert str(store.client_options.get("allow_http")).lower() == "true"
    monkeypatch.setenv("AWS_ALLOW_HTTP", "no")
    assert not (locate("s3://bucket/prefix").object_store().client_options or {}).get("allow_http")
