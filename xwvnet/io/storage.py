"""Where a store lives: a path or a ``file://``, ``s3://``, ``gs://`` or ``az://`` URL, turned into icechunk storage.

:func:`locate` is the one place that reads a store's name. It refuses what it cannot mean (an unknown scheme, a
``s3:/bucket`` with one slash, storage options the backend does not take) instead of taking a URL for a local path.
Credentials and endpoints come from the standard environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``; ``GOOGLE_APPLICATION_CREDENTIALS``;
``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``...) unless ``storage_options`` names them.

icechunk's local file system storage is not safe for concurrent commits: :func:`commit_lock` serialises the commit
step of local repositories with a lock file beside the store (``filelock``); object stores use icechunk's
conditional writes and need none.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

#: URL schemes and the storage options each takes (icechunk's names)
OPTIONS: dict[str, tuple[str, ...]] = {
    "file": (),
    "s3": ("endpoint_url", "region", "access_key_id", "secret_access_key", "session_token", "allow_http",
           "anonymous", "force_path_style"),
    "gs": ("service_account_file", "service_account_key", "application_credentials", "bearer_token", "anonymous"),
    "az": ("account", "access_key", "sas_token", "bearer_token"),
}
_ALIASES = {"gcs": "gs", "abfs": "az", "az": "az", "s3": "s3", "gs": "gs", "file": "file"}
#: the storage options obstore spells differently (SAFE products and plain Zarr on object storage are read with it)
_OBSTORE = {"endpoint_url": "endpoint", "anonymous": "skip_signature", "account": "account_name",
            "service_account_file": "service_account"}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//)?(.*)$")


def _env_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _env_http() -> bool:
    return os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Location:
    """A resolved store name: where it is, and how to reach it.

    Parameters
    ----------
    scheme : str
        ``"file"``, ``"s3"``, ``"gs"`` or ``"az"``.
    bucket : str
        The bucket (container for Azure); empty for local paths.
    prefix : str
        The key prefix inside the bucket, or the absolute local path.
    options : tuple of (str, object)
        The storage options given, validated (hashable, so a Location travels to dask workers as it is); ``repr``
        shows their names only, never their values (secrets).
    """

    scheme: str
    bucket: str
    prefix: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def local(self) -> bool:
        """True for a store on a local (or mounted) file system."""
        return self.scheme == "file"

    @property
    def path(self) -> Path:
        """The local path (only for local stores)."""
        if not self.local:
            raise InvalidArgumentError(f"{self} is not on a local file system")
        return Path(self.prefix)

    @property
    def name(self) -> str:
        """The last part of the name (e.g. ``imagettes.zarr``)."""
        return self.prefix.rstrip("/").rsplit("/", 1)[-1]

    def __repr__(self) -> str:  # secrets never appear: only the names of the options given
        return f"Location({str(self)!r}, options={[k for k, _ in self.options]})"

    def __str__(self) -> str:
        return self.prefix if self.local else f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    def storage(self) -> Any:
        """The icechunk storage of this location (credentials from ``options``, else the environment)."""
        import icechunk as ic

        opts = dict(self.options)
        if self.scheme == "file":
            return ic.local_filesystem_storage(self.prefix)
        if self.scheme == "s3":
            endpoint = opts.pop("endpoint_url", None) or _env_endpoint()
            region = opts.pop("region", None) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            return ic.s3_storage(bucket=self.bucket, prefix=self.prefix, endpoint_url=endpoint, region=region,
                                 allow_http=bool(opts.pop("allow_http", _env_http())),
                                 force_path_style=bool(opts.pop("force_path_style", endpoint is not None)),
                                 from_env=not {"access_key_id", "anonymous"} & set(opts), **opts)
        if self.scheme == "gs":
            return ic.gcs_storage(bucket=self.bucket, prefix=self.prefix, from_env=not opts, **opts)
        account = opts.pop("account", None) or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not account:
            raise InvalidArgumentError(f"{self}: name the Azure storage account with storage_options="
                                       "{'account': ...} or AZURE_STORAGE_ACCOUNT_NAME.")
        return ic.azure_storage(account=account, container=self.bucket, prefix=self.prefix, from_env=not opts,
                                **opts)

    def zarr_store(self, read_only: bool = True) -> Any:
        """A plain Zarr store here (for foreign stores): a LocalStore, or obstore's with the same credentials."""
        from zarr.storage import LocalStore, ObjectStore

        if self.local:
            return LocalStore(self.prefix, read_only=read_only)
        return ObjectStore(self.object_store(), read_only=read_only)

    def object_store(self) -> Any:
        """obstore's store rooted here (object storage only: Zarr, SAFE products), with the same credentials."""
        from obstore.store import from_url

        opts = {_OBSTORE.get(k, k): v for k, v in self.options if k != "force_path_style"}
        if self.scheme == "s3" and "endpoint" not in opts and _env_endpoint():
            opts["endpoint"] = _env_endpoint()
        http = opts.pop("allow_http", False) or _env_http()
        return from_url(str(self), client_options={"allow_http": True} if http else None, **opts)

    def exists(self) -> bool:
        """Whether anything is stored at this location (a file or folder, or objects under the prefix)."""
        if self.local:
            return Path(self.prefix).exists()
        import obstore

        return any(obstore.list(self.object_store(), chunk_size=1))  # stops at the first object (no event loop)


def locate(where: str | os.PathLike | Location, storage_options: Mapping[str, Any] | None = None) -> Location:
    """Resolve a store name (path or URL) and its storage options, once, at the public edge.

    Parameters
    ----------
    where : str, os.PathLike or Location
        A local path, ``file:///abs/path``, ``s3://bucket/prefix``, ``gs://bucket/prefix`` (or ``gcs://``), or
        ``az://container/prefix`` (or ``abfs://``), or a Location (returned as it is without ``storage_options``).
    storage_options : mapping, optional
        Backend options (see :data:`OPTIONS`), e.g. ``{"endpoint_url": "http://127.0.0.1:9000",
        "allow_http": True}``; default: the standard environment. Given with a Location, they replace its options.

    Returns
    -------
    Location
        The resolved location (local paths made absolute).

    Raises
    ------
    ValueError
        For an unknown scheme, a URL without a bucket, a scheme-like local path (``s3:/bucket``), or storage
        options the backend does not take.

    Examples
    --------
    >>> str(locate("s3://bucket/wv/imagettes.zarr"))
    's3://bucket/wv/imagettes.zarr'
    >>> locate("s3://bucket/x", {"regoin": "eu"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    xwvnet.errors.InvalidArgumentError: storage option(s) ['regoin'] are not known for s3:// stores; known: ...
    """
    if isinstance(where, Location):
        if not storage_options:
            return where
        scheme, bucket, prefix = where.scheme, where.bucket, where.prefix  # new options replace the old ones
    elif (match := _URL.match(text := os.fspath(where))) is None or (len(match.group(1)) == 1 and os.name == "nt"):
        scheme, bucket, prefix = "file", "", str(Path(text).expanduser().absolute())
    else:
        given, slashes, rest = match.groups()
        scheme = _ALIASES.get(given.lower())
        if scheme is None:
            raise InvalidArgumentError(f"{text!r}: unknown storage scheme {given!r}; use a local path or a file://, "
                                       "s3://, gs:// or az:// URL.")
        if not slashes:
            raise InvalidArgumentError(f"{text!r} looks like a {scheme} URL without '//'; write {given}://"
                                       f"{rest.lstrip('/')} (or ./{text} for a local folder of that name).")
        if scheme == "file":
            bucket, prefix = "", str(Path(rest).expanduser().absolute())
        else:
            bucket, _, prefix = rest.partition("/")
            prefix = prefix.strip("/")
            if not bucket:
                raise InvalidArgumentError(f"{text!r}: the URL names no bucket; write {scheme}://BUCKET/PREFIX.")
    options = dict(storage_options or {})
    unknown = sorted(set(options) - set(OPTIONS[scheme]))
    if unknown:
        raise InvalidArgumentError(f"storage option(s) {unknown} are not known for {scheme}:// stores; known: "
                                   f"{list(OPTIONS[scheme])}.")
    return Location(scheme, bucket, prefix, tuple(sorted(options.items())))


@contextlib.contextmanager
def commit_lock(location: Location, timeout: float = 600.0) -> Iterator[None]:
    """Serialise the commit step of a local repository: a lock file beside the store (``.NAME.commit-lock``).

    It exists before the store does and survives a rewrite of it; object stores need none (conditional writes).
    """
    if not location.local:
        yield
        return
    from filelock import FileLock

    path = Path(location.prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.commit-lock"), timeout=timeout):
        yield
