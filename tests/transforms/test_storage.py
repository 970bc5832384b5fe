"""Storage over every filesystem the pipeline writes to: a local folder, fsspec
``memory://``, ``gs://`` on fake-gcs-server and ``s3://`` on moto's server.

The same tests run on each: writes land whole under their final name with no
temporary names left behind, overwrites replace the whole object, put_file uploads
(single-shot and multi-part), list, exists, size, read_json, delete and move, the URIs
that go into the results table, pickling, and input globbing.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import pytest

from transforms.storage import Storage, expand_inputs, open_input

from .conftest import ObjectStore

STORES = ["local", "memory", "gs", "s3"]


@pytest.fixture(params=STORES)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A fresh output root on each filesystem, with its storage options."""
    kind = request.param
    if kind == "local":
        return str(tmp_path / "root"), {}
    if kind == "memory":
        return f"memory://storage-test-{uuid.uuid4().hex[:10]}/root", {}
    store: ObjectStore = request.getfixturevalue("gcs_store" if kind == "gs" else "s3_store")
    return store.fresh_root("storage"), store.storage_options


@pytest.fixture
def storage(root: tuple[str, dict[str, Any]]) -> Storage:
    return Storage(root[0], root[1])


def _files_under(storage: Storage, reldir: str = "") -> list[str]:
    """Every file below ``reldir``, relative to the root (recursive, unlike Storage.list)."""
    base = storage.path(reldir).rstrip("/")
    found = storage.fs.find(base) if storage.fs.exists(base) else []
    prefix = storage.path("").rstrip("/").lstrip("/") + "/"
    return sorted(p.lstrip("/")[len(prefix):] for p in found)


def test_write_and_read_bytes_and_json(storage: Storage) -> None:
    storage.write_bytes("a/b/blob.bin", b"\x00\x01payload")
    storage.write_json("a/entry.json", {"state": "done", "n": 3})
    assert storage.read_bytes("a/b/blob.bin") == b"\x00\x01payload"
    assert storage.read_json("a/entry.json") == {"state": "done", "n": 3}
    assert storage.read_json("a/missing.json") is None
    assert storage.exists("a/b/blob.bin") and not storage.exists("a/b/other.bin")
    assert storage.size("a/b/blob.bin") == 9


def test_writes_leave_no_temporary_objects(storage: Storage) -> None:
    for index in range(3):
        storage.write_bytes(f"media/x-{index}.bin", b"x" * (index + 1))
    storage.write_json("_ledger/k.json", {"k": 1})
    assert _files_under(storage) == ["_ledger/k.json", "media/x-0.bin", "media/x-1.bin", "media/x-2.bin"]


def test_overwrite_replaces_the_whole_object(storage: Storage) -> None:
    storage.write_bytes("f.bin", b"a much longer first version")
    storage.write_bytes("f.bin", b"short")
    assert storage.read_bytes("f.bin") == b"short"


def test_put_file_streams_a_local_file_under_its_final_name(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "clip.bin"
    data = os.urandom(3 << 20) + b"tail"  # several read chunks
    source.write_bytes(data)
    storage.put_file(str(source), "media/video/key.mp4")
    assert storage.size("media/video/key.mp4") == len(data)
    assert hashlib.sha256(storage.read_bytes("media/video/key.mp4")).digest() == hashlib.sha256(data).digest()
    assert _files_under(storage) == ["media/video/key.mp4"]
    assert source.exists(), "the spooled source is the caller's to remove"


def test_put_file_of_a_multi_part_object(storage: Storage, tmp_path: Path) -> None:
    """Above the upload chunk size, object stores take the resumable / multipart path."""
    from transforms import storage as storage_module

    size = 2 * getattr(storage_module, "UPLOAD_CHUNK", 8 << 20) + 12345
    source = tmp_path / "big.bin"
    with open(source, "wb") as handle:
        handle.write(os.urandom(1 << 20) * (size >> 20))
        handle.write(os.urandom(size - (size >> 20 << 20)))
    storage.put_file(str(source), "media/big.bin")
    assert storage.size("media/big.bin") == size
    digest = hashlib.sha256()
    with storage.fs.open(storage.path("media/big.bin"), "rb") as handle:
        while chunk := handle.read(4 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()


def test_list_gives_relative_paths_of_direct_children(storage: Storage) -> None:
    assert list(storage.list("results")) == []
    storage.write_bytes("results/part-1.parquet", b"1")
    storage.write_bytes("results/part-2.parquet", b"2")
    storage.write_bytes("other/x.json", b"{}")
    listed = sorted(p for p in storage.list("results") if not p.endswith("/"))
    assert listed == ["results/part-1.parquet", "results/part-2.parquet"]


def test_delete_and_move(storage: Storage) -> None:
    storage.write_bytes("results/_tmp-run/shard.parquet", b"rows")
    storage.move("results/_tmp-run/shard.parquet", "results/part-run-00000.parquet")
    assert storage.read_bytes("results/part-run-00000.parquet") == b"rows"
    assert not storage.exists("results/_tmp-run/shard.parquet")
    storage.delete("results/part-run-00000.parquet")
    assert not storage.exists("results/part-run-00000.parquet")
    storage.delete("results/never-existed.parquet")  # no error


def test_uri_is_a_full_address_the_store_can_open(storage: Storage, root: tuple[str, dict[str, Any]]) -> None:
    storage.write_bytes("media/image/k.png", b"png-bytes")
    uri = storage.uri("media/image/k.png")
    scheme = root[0].split("://", 1)[0] + "://" if "://" in root[0] else "/"
    assert uri.startswith(scheme) and uri.endswith("/media/image/k.png")
    with open_input(uri, "rb", root[1]) as handle:
        assert handle.read() == b"png-bytes"


def test_storage_pickles_without_its_filesystem(storage: Storage) -> None:
    storage.write_bytes("p.bin", b"before")
    copy = pickle.loads(pickle.dumps(storage))
    assert copy._fs is None
    assert copy.read_bytes("p.bin") == b"before"


def test_expand_inputs_finds_files_by_glob(storage: Storage, root: tuple[str, dict[str, Any]]) -> None:
    storage.write_bytes("in/a.jsonl", b'{"prompt": "a"}\n')
    storage.write_bytes("in/b.jsonl", b'{"prompt": "b"}\n')
    storage.write_bytes("in/c.parquet", b"PAR1")
    found = expand_inputs(f"{root[0]}/in/*.jsonl", root[1])
    assert [f.rsplit("/", 1)[1] for f in found] == ["a.jsonl", "b.jsonl"]
    assert found == [storage.uri("in/a.jsonl"), storage.uri("in/b.jsonl")]
    assert expand_inputs(f"{root[0]}/in/a.jsonl", root[1]) == [storage.uri("in/a.jsonl")]
    assert expand_inputs(f"{root[0]}/in/none-*.jsonl", root[1]) == []


def test_temporary_names_are_unique_across_threads_and_forked_processes(tmp_path: Path) -> None:
    import threading

    from transforms.storage import TemporaryNames

    names = TemporaryNames()
    final = str(tmp_path / "media" / "k.png")
    made: list[list[str]] = [[] for _ in range(8)]

    def draw(into: list[str]) -> None:
        into.extend(names.beside(final) for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drawn = [name for into in made for name in into]
    assert len(set(drawn)) == len(drawn) == 16000
    assert all(name.startswith(final + ".tmp-") for name in drawn)

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child draws with the parent's instance, counter and all
        os.write(write, names.beside(final).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode()
    parent = names.beside(final)
    assert child.rsplit("-", 2)[1] != parent.rsplit("-", 2)[1]  # another tag: the same count cannot collide


def test_a_local_write_never_leaves_a_partial_file_under_the_final_name(tmp_path: Path) -> None:
    from transforms.storage import write_new_local_file

    storage = Storage(str(tmp_path / "root"))
    big = os.urandom(3 << 20)
    storage.write_bytes("a/b.bin", big)
    assert (tmp_path / "root" / "a" / "b.bin").read_bytes() == big
    with pytest.raises(FileExistsError):  # the temporary name is always a new file
        write_new_local_file(str(tmp_path / "root" / "a" / "b.bin"), b"x")
    assert sorted(p.name for p in (tmp_path / "root" / "a").iterdir()) == ["b.bin"]


@pytest.mark.parametrize("kind", ["gs", "s3"])
def test_objects_are_served_with_the_content_type_they_were_written_with(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store: ObjectStore = request.getfixturevalue("gcs_store" if kind == "gs" else "s3_store")
    storage = Storage(store.fresh_root("typed"), store.storage_options)
    source = tmp_path / "clip"  # no extension: nothing to guess the type from
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    storage.write_bytes("media/image/k.png", b"\x89PNG", "image/png")
    storage.put_file(str(source), "media/video/k.mp4", "video/mp4")
    storage.write_bytes("_ledger/k.json", b"{}")

    def served_as(relpath: str) -> str:
        info = storage.fs.info(storage.path(relpath))
        return info.get("contentType") or info.get("ContentType")

    assert served_as("media/image/k.png") == "image/png"
    assert served_as("media/video/k.mp4") == "video/mp4"
    assert served_as("_ledger/k.json") in ("application/octet-stream", "binary/octet-stream")
