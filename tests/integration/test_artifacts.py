"""Artifact store against a real S3 server (SeaweedFS, signatures checked) and a local directory.

Every behavioural test runs on both backends so callers can rely on one contract; the large
object test checks that neither backend holds a whole object in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import os
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import aclosing
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest

from shared.artifacts import (
    ArtifactNotFound,
    ArtifactStore,
    LocalArtifactStore,
    RangeNotSatisfiable,
    S3ArtifactStore,
    artifact_store_from_settings,
    local_signing_key,
    verify_signature,
)
from shared.settings import Settings
from tests.harness.s3server import S3Server

MiB = 1 << 20


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    return request.getfixturevalue(f"{request.param}_artifact_store")


async def read_all(store: ArtifactStore, key: str, **kw: int | None) -> bytes:
    return b"".join([chunk async for chunk in store.open_stream(key, **kw)])


# -- basic object life cycle -------------------------------------------------------------------


async def test_satisfies_protocol(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


async def test_put_get_stat_exists(store: ArtifactStore) -> None:
    info = await store.put_bytes("builds/1/environment.yaml", b"name: demo\n")
    assert (info.key, info.size) == ("builds/1/environment.yaml", 11)
    assert info.etag
    assert await store.get_bytes("builds/1/environment.yaml") == b"name: demo\n"

    stat = await store.stat("builds/1/environment.yaml")
    assert stat is not None
    assert stat.size == 11 and stat.etag == info.etag
    assert stat.content_type == "application/yaml"
    assert await store.exists("builds/1/environment.yaml")

    assert await store.stat("builds/1/missing.txt") is None
    assert not await store.exists("builds/1/missing.txt")
    # A "directory" is not an object.
    assert await store.stat("builds/1") is None
    assert not await store.exists("builds")
    with pytest.raises(ArtifactNotFound):
        await store.get_bytes("builds/1/missing.txt")
    with pytest.raises(ArtifactNotFound):
        await store.get_bytes("builds/1")


async def test_overwrite_replaces_and_empty_object(store: ArtifactStore) -> None:
    await store.put_bytes("x/log.txt", b"first version, longer")
    await store.put_bytes("x/log.txt", b"second")
    assert await store.get_bytes("x/log.txt") == b"second"
    assert (await store.stat("x/log.txt")).size == 6  # type: ignore[union-attr]
    await store.put_bytes("x/empty", b"")
    assert await store.get_bytes("x/empty") == b""
    assert await read_all(store, "x/empty") == b""


async def test_put_file_and_download_file(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in.tar.gz"
    payload = os.urandom(300_000)
    source.write_bytes(payload)
    info = await store.put_file("builds/7/archive.tar.gz", source)
    assert info.size == len(payload)
    assert info.content_type == "application/gzip"

    target = tmp_path / "out" / "nested" / "archive.tar.gz"
    await store.download_file("builds/7/archive.tar.gz", target)
    assert target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["archive.tar.gz"]  # no temp litter

    with pytest.raises(ArtifactNotFound):
        await store.download_file("builds/7/nope", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


async def test_explicit_content_type_on_put(store: ArtifactStore) -> None:
    info = await store.put_bytes("oci/blobs/sha256/ab", b"{}", content_type="application/json")
    assert info.content_type == "application/json"
    if isinstance(store, S3ArtifactStore):  # only S3 persists an explicit type
        assert (await store.stat("oci/blobs/sha256/ab")).content_type == "application/json"  # type: ignore[union-attr]


async def test_concurrent_puts_and_gets(store: ArtifactStore) -> None:
    blobs = {f"oci/blobs/sha256/{i:03d}": os.urandom(10_000 + i) for i in range(24)}
    await asyncio.gather(*(store.put_bytes(k, v) for k, v in blobs.items()))
    got = await asyncio.gather(*(store.get_bytes(k) for k in blobs))
    assert dict(zip(blobs, got, strict=True)) == blobs


# -- listing and deleting ----------------------------------------------------------------------

KEYS = [
    "builds/1/environment.yaml",
    "builds/1/logs.txt",
    "builds/1/sub/deep/file.bin",
    "builds/10/logs.txt",
    "builds/2/logs.txt",
    "oci/blobs/sha256/aa",
]


async def put_keys(store: ArtifactStore) -> None:
    for i, key in enumerate(KEYS):
        await store.put_bytes(key, b"x" * (i + 1))


async def test_list_by_prefix(store: ArtifactStore) -> None:
    await put_keys(store)
    everything = await store.list()
    assert [i.key for i in everything] == sorted(KEYS)
    assert [i.size for i in everything] == [KEYS.index(i.key) + 1 for i in everything]
    assert all(i.etag for i in everything)

    assert [i.key for i in await store.list("builds/1/")] == KEYS[:3]
    # A plain string prefix, exactly like S3: "builds/1" also matches "builds/10/...".
    assert [i.key for i in await store.list("builds/1")] == KEYS[:4]
    assert [i.key for i in await store.list("builds/1/sub/deep/fi")] == [KEYS[2]]
    assert [i.key for i in await store.list("oci/")] == ["oci/blobs/sha256/aa"]
    assert await store.list("nothing/") == []
    assert await store.list("builds/3") == []


async def test_delete_and_delete_prefix(store: ArtifactStore) -> None:
    await put_keys(store)
    await store.delete("builds/2/logs.txt")
    await store.delete("builds/2/logs.txt")  # missing is not an error
    await store.delete("never/existed")
    assert not await store.exists("builds/2/logs.txt")

    assert await store.delete_prefix("builds/1/") == 3
    assert [i.key for i in await store.list()] == ["builds/10/logs.txt", "oci/blobs/sha256/aa"]
    assert await store.delete_prefix("builds/1/") == 0
    assert await store.stat("builds/1/sub/deep/file.bin") is None
    # the emptied "directory" is gone too, and the key can be written again
    assert await store.list("builds/1/") == []
    await store.put_bytes("builds/1/sub", b"now a file")
    assert await store.get_bytes("builds/1/sub") == b"now a file"

    with pytest.raises(ValueError):
        await store.delete_prefix("")


# -- ranges ------------------------------------------------------------------------------------

RANGE_DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, RANGE_DATA),
        (0, 0, RANGE_DATA[:1]),
        (0, 99, RANGE_DATA[:100]),
        (100, 199, RANGE_DATA[100:200]),
        (5000, None, RANGE_DATA[5000:]),
        (None, 9, RANGE_DATA[:10]),
        (10000, 20000, RANGE_DATA[10000:]),  # end clamped, like HTTP
        (10239, 10239, RANGE_DATA[-1:]),
    ],
)
async def test_range_reads(
    store: ArtifactStore, start: int | None, end: int | None, expected: bytes
) -> None:
    await store.put_bytes("r/data.bin", RANGE_DATA)
    chunks = [c async for c in store.open_stream("r/data.bin", start, end, chunk_size=1000)]
    assert b"".join(chunks) == expected
    assert all(0 < len(c) <= 1000 for c in chunks)


async def test_bad_ranges(store: ArtifactStore) -> None:
    await store.put_bytes("r/data.bin", RANGE_DATA)
    with pytest.raises(RangeNotSatisfiable) as err:
        await read_all(store, "r/data.bin", start=len(RANGE_DATA))
    assert err.value.size == len(RANGE_DATA)
    for kw in ({"start": 10, "end": 9}, {"start": -1}, {"chunk_size": 0}):
        with pytest.raises(ValueError):
            await read_all(store, "r/data.bin", **kw)
    with pytest.raises(ArtifactNotFound):
        await read_all(store, "r/missing.bin")
    with pytest.raises(ArtifactNotFound):
        await read_all(store, "r/missing.bin", start=0, end=10)


async def test_stream_closed_early_leaves_store_usable(store: ArtifactStore) -> None:
    await store.put_bytes("r/data.bin", RANGE_DATA)
    for _ in range(15):  # more than the HTTP pool holds, so leaked connections would show
        async with aclosing(store.open_stream("r/data.bin", chunk_size=100)) as stream:
            async for chunk in stream:
                assert chunk == RANGE_DATA[:100]
                break
    assert await store.get_bytes("r/data.bin") == RANGE_DATA


# -- key validation ----------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../outside",
    "builds/../../outside",
    "builds/..",
    "builds/./x",
    "builds//x",
    "builds/x/",
    "builds\\x",
    "..\\outside",
    "builds/\x00x",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_bad_keys_are_rejected(store: ArtifactStore, key: str, tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    calls = [
        store.put_bytes(key, b"x"),
        store.put_file(key, src),
        store.put_stream(key, io.BytesIO(b"x")),
        store.get_bytes(key),
        store.stat(key),
        store.exists(key),
        store.delete(key),
        store.download_file(key, tmp_path / "out"),
        store.presigned_url(key, timedelta(minutes=1)),
        read_all(store, key),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            await call
    assert await store.list() == []
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize("prefix", ["/", "/builds", "../", "a//", "a/../b/", "a\\b", "\x00"])
async def test_bad_prefixes_are_rejected(store: ArtifactStore, prefix: str) -> None:
    with pytest.raises(ValueError):
        await store.list(prefix)
    with pytest.raises(ValueError):
        await store.delete_prefix(prefix)


async def test_local_traversal_cannot_escape_root(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root", secret=b"k")
    (tmp_path / "secret.txt").write_bytes(b"top secret")
    for key in ("../secret.txt", "a/../../secret.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(ValueError):
            await store.get_bytes(key)
    with pytest.raises(ValueError):  # the staging area is not addressable
        await store.put_bytes(".staging/x", b"x")
    assert (tmp_path / "secret.txt").read_bytes() == b"top secret"


async def test_local_put_file_links_a_file_of_its_filesystem_and_copies_any_other(
    tmp_path: Path,
) -> None:
    """A 1 GB archive put in is not copied when it can be linked; elsewhere it is copied."""
    store = LocalArtifactStore(tmp_path / "root", secret=b"k")
    here = tmp_path / "archive.tar.gz"
    here.write_bytes(b"packed once")
    await store.put_file("builds/1/archive.tar.gz", here)
    assert (tmp_path / "root" / "builds/1/archive.tar.gz").stat().st_ino == here.stat().st_ino
    assert await store.get_bytes("builds/1/archive.tar.gz") == b"packed once"
    assert not list((tmp_path / "root" / ".staging").iterdir())  # nothing left half-made
    with tempfile.NamedTemporaryFile(dir="/dev/shm") as other:  # tmpfs: another filesystem
        other.write(b"from elsewhere")
        other.flush()
        await store.put_file("builds/2/archive.tar.gz", other.name)
        copied = tmp_path / "root" / "builds/2/archive.tar.gz"
        assert copied.stat().st_ino != os.stat(other.name).st_ino
    assert copied.read_bytes() == b"from elsewhere"


# -- failed uploads leave nothing behind -------------------------------------------------------


class FailingReader(io.RawIOBase):
    """Produces ``fail_after`` bytes, then raises like a broken pipe from a subprocess."""

    def __init__(self, fail_after: int) -> None:
        self.left = fail_after

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("producer died")
        n = min(self.left, MiB if size is None or size < 0 else size)
        self.left -= n
        return b"z" * n


async def test_failed_stream_upload_keeps_previous_version(store: ArtifactStore) -> None:
    await store.put_bytes("builds/3/archive.tar.gz", b"old complete archive")
    with pytest.raises(OSError, match="producer died"):
        await store.put_stream("builds/3/archive.tar.gz", FailingReader(7 * MiB))
    assert await store.get_bytes("builds/3/archive.tar.gz") == b"old complete archive"
    assert [i.key for i in await store.list()] == ["builds/3/archive.tar.gz"]
    if isinstance(store, LocalArtifactStore):
        assert list((store.root / ".staging").iterdir()) == []


# -- presigned URLs ----------------------------------------------------------------------------


async def test_s3_presigned_url_downloads(
    s3_artifact_store: S3ArtifactStore, s3_server: S3Server
) -> None:
    payload = os.urandom(200_000)
    await s3_artifact_store.put_bytes("builds/5/archive.tar.gz", payload)
    url = await s3_artifact_store.presigned_url("builds/5/archive.tar.gz", timedelta(minutes=5))
    assert urlsplit(url).netloc == s3_server.endpoint
    async with httpx.AsyncClient() as http:
        ok = await http.get(url)
        assert ok.status_code == 200, ok.text
        assert ok.content == payload
        assert ok.headers["content-type"] == "application/gzip"

        ranged = await http.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == payload[10:20]

        query = parse_qs(urlsplit(url).query)
        sig = query["X-Amz-Signature"][0]
        forged = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
        assert (await http.get(forged)).status_code == 403
        other_key = url.replace("archive.tar.gz", "environment.yaml")
        assert (await http.get(other_key)).status_code == 403
        assert (await http.get(url.split("?")[0])).status_code == 403  # bucket is private

        short = await s3_artifact_store.presigned_url(
            "builds/5/archive.tar.gz", timedelta(seconds=1)
        )
        await asyncio.sleep(2.1)
        expired = await http.get(short)
        assert expired.status_code == 403, expired.text


async def test_s3_presigned_url_is_signed_for_external_endpoint(
    s3_artifact_store: S3ArtifactStore, s3_server: S3Server
) -> None:
    await s3_artifact_store.put_bytes("k/v.txt", b"via proxy")
    external = f"http://localhost:{s3_server.port}"
    signer_store = S3ArtifactStore(
        s3_server.endpoint,
        s3_server.access_key,
        s3_server.secret_key,
        s3_artifact_store.bucket,
        region=s3_server.region,
        external_endpoint=external,
    )
    url = await signer_store.presigned_url("k/v.txt", timedelta(minutes=5))
    assert url.startswith(f"{external}/{s3_artifact_store.bucket}/k/v.txt?")
    # Reach the server through 127.0.0.1 as a proxy would, presenting the external Host header.
    direct = url.replace(f"localhost:{s3_server.port}", s3_server.endpoint)
    async with httpx.AsyncClient() as http:
        ok = await http.get(direct, headers={"Host": f"localhost:{s3_server.port}"})
        assert ok.status_code == 200 and ok.content == b"via proxy"
        # The signature covers the host: presented under the internal name it is refused.
        assert (await http.get(direct)).status_code == 403


async def test_local_presigned_url_signature(tmp_path: Path) -> None:
    secret = os.urandom(32)
    store = LocalArtifactStore(tmp_path / "a", "https://cs.example/storage/", secret=secret)
    await store.put_bytes("builds/9/my env.yaml", b"x")
    before = int(time.time())
    url = await store.presigned_url("builds/9/my env.yaml", timedelta(minutes=10))
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://cs.example/storage/builds/9/my%20env.yaml"
    )
    key = unquote(parts.path.removeprefix("/storage/"))
    query = parse_qs(parts.query)
    expires, signature = query["expires"][0], query["signature"][0]
    assert before + 599 <= int(expires) <= time.time() + 601
    assert len(signature) == 64

    assert verify_signature(key, expires, signature, secret)
    assert verify_signature(key, int(expires), signature, secret, now=int(expires))
    # expired
    assert not verify_signature(key, expires, signature, secret, now=int(expires) + 1)
    # tampered signature, key, expiry, secret
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not verify_signature(key, expires, flipped, secret)
    assert not verify_signature("builds/9/other.yaml", expires, signature, secret)
    assert not verify_signature(key, str(int(expires) + 3600), signature, secret)
    assert not verify_signature(key, expires, signature, os.urandom(32))
    # garbage from a query string is just invalid
    assert not verify_signature(key, "soon", signature, secret)
    assert not verify_signature("../etc/passwd", expires, signature, secret)
    assert not verify_signature(key, expires, "", secret)


# -- settings factory --------------------------------------------------------------------------


async def test_factory_local(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", external_url="http://cs.example:8080/")
    store = artifact_store_from_settings(settings)
    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "data" / "artifacts").absolute()
    await store.put_bytes("a/b", b"c")
    assert (tmp_path / "data" / "artifacts" / "a" / "b").read_bytes() == b"c"
    url = await store.presigned_url("a/b", timedelta(minutes=1))
    # a path: the API puts it on each visitor's base URL (the external URL only when set)
    assert url.startswith("/storage/a/b?expires=")
    # the signing key is stable across processes of one install
    key = local_signing_key(settings.secret, settings.data_dir)
    assert key == local_signing_key(settings.secret, settings.data_dir) and len(key) == 32
    q = parse_qs(urlsplit(url).query)
    assert verify_signature("a/b", q["expires"][0], q["signature"][0], key)
    with_secret = Settings(data_dir=tmp_path / "d2", secret="jwt-secret")
    assert local_signing_key(with_secret.secret, with_secret.data_dir) != b"jwt-secret"
    assert local_signing_key(with_secret.secret, with_secret.data_dir) == local_signing_key(
        with_secret.secret, with_secret.data_dir
    )


async def test_factory_s3(s3_server: S3Server) -> None:
    settings = Settings(
        artifact_backend="s3",
        s3_endpoint=s3_server.endpoint,
        s3_access_key=s3_server.access_key,
        s3_secret_key=s3_server.secret_key,
        s3_bucket="factory-bucket",
        s3_external_endpoint=s3_server.url,
    )
    store = artifact_store_from_settings(settings)
    assert isinstance(store, S3ArtifactStore)
    await store.ensure_bucket()
    await store.ensure_bucket()  # idempotent
    await store.put_bytes("f/g", b"h")
    assert await store.get_bytes("f/g") == b"h"
    assert await store.delete_prefix("f/") == 1
    s3_server.client().remove_bucket("factory-bucket")

    wrong = S3ArtifactStore(s3_server.endpoint, s3_server.access_key, "wrong", "factory-bucket")
    with pytest.raises(Exception, match="(?i)denied|signature"):
        await wrong.put_bytes("f/g", b"h")


# -- large objects: streamed, memory bounded ---------------------------------------------------

BIG_SIZE = 64 * MiB
S3_TEST_PART_SIZE = 5 * MiB  # S3's minimum part size: the smallest bound we can ask for


class GeneratedReader(io.RawIOBase):
    """A file-like object of unknown length backed by a generator (like a build's output)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        n = len(self._pending) if size is None or size < 0 else size
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


def generated_chunks(total: int, digest: hashlib._Hash) -> Iterator[bytes]:
    left = total
    while left:
        chunk = os.urandom(min(MiB, left))
        digest.update(chunk)
        left -= len(chunk)
        yield chunk


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@pytest.fixture
def big_store(request: pytest.FixtureRequest, store: ArtifactStore) -> ArtifactStore:
    """The parametrized store, with S3 parts at the minimum size to make the bound tight."""
    if isinstance(store, S3ArtifactStore):
        s3_server: S3Server = request.getfixturevalue("s3_server")
        return S3ArtifactStore(
            s3_server.endpoint,
            s3_server.access_key,
            s3_server.secret_key,
            store.bucket,
            region=s3_server.region,
            part_size=S3_TEST_PART_SIZE,
        )
    return store


async def test_large_object_streams_in_and_out_in_bounded_memory(
    big_store: ArtifactStore, tmp_path: Path
) -> None:
    store = big_store
    key = "builds/42/archive.tar.gz"
    produced = hashlib.sha256()
    bound = 24 * MiB  # well below the 64 MiB object; S3 holds ~2 parts of 5 MiB at once

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        info = await store.put_stream(key, GeneratedReader(generated_chunks(BIG_SIZE, produced)))
        upload_peak = tracemalloc.get_traced_memory()[1]

        tracemalloc.reset_peak()
        consumed = hashlib.sha256()
        received = 0
        async for chunk in store.open_stream(key):
            consumed.update(chunk)
            received += len(chunk)
        download_peak = tracemalloc.get_traced_memory()[1]

        tracemalloc.reset_peak()
        target = tmp_path / "archive.tar.gz"
        await store.download_file(key, target)
        file_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert info.size == BIG_SIZE
    assert (await store.stat(key)).size == BIG_SIZE  # type: ignore[union-attr]
    if isinstance(store, S3ArtifactStore):  # a real multipart upload happened
        assert info.etag and info.etag.endswith(f"-{math.ceil(BIG_SIZE / S3_TEST_PART_SIZE)}")
    assert received == BIG_SIZE
    assert consumed.hexdigest() == produced.hexdigest()
    assert await asyncio.to_thread(file_sha256, target) == produced.hexdigest()

    peaks = {"upload": upload_peak, "download": download_peak, "download_file": file_peak}
    assert all(peak < bound for peak in peaks.values()), {k: v / MiB for k, v in peaks.items()}
