"""Redis Streams source against a real ``redis-server`` on 127.0.0.1 (asyncio and uvloop).

The truth each test checks against is the server itself (``XPENDING``, ``CLIENT
LIST``, the ids ``XADD`` returned) and, for exactly-once, an uninterrupted run on
the same entries in another process: its final weights, History and ledger of the
entries each batch trained on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest

import aiofit
from aiofit import layers
from aiofit.callbacks import BackupAndRestore, Callback
from aiofit.engine.resume import ResumePoint, SourcePosition
from aiofit.sources import RedisStream, StreamField, encode_entry, from_redis_stream

from ..callbacks.conftest import Crash, CrashAt
from ..conftest import ASYNCIO_BACKENDS

redis = pytest.importorskip("redis", reason="redis-py is not installed (pip install redis)")
import redis.asyncio as aioredis  # noqa: E402

CHILD = Path(__file__).with_name("_redis_child.py")
FIELDS = {"x": StreamField("x", "float32", (3,)), "y": StreamField("y", "int64", ())}
X = np.random.default_rng(5).normal(size=(40, 3)).astype("float32")
Y = (X[:, 0] > 0).astype("int64")


@pytest.fixture(params=ASYNCIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """redis-py's client is asyncio-only: asyncio and uvloop (trio is tested apart)."""
    return request.param  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for_ping(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()


def _wait_for_ping(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis.from_url(url) as client:
                client.ping()
            return
        except redis.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"redis-server could not start (exit code {server.poll()})")
            time.sleep(0.05)


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex}"


async def produce(url: str, key: str, x: np.ndarray = X, y: np.ndarray = Y) -> list[str]:
    """XADD one entry per sample; the ids, in order."""
    async with aioredis.Redis.from_url(url) as client:
        ids = [
            await client.xadd(key, encode_entry(a, b, fields=FIELDS))
            for a, b in zip(x, y, strict=True)
        ]
    return [i.decode() for i in ids]


async def pending_ids(url: str, key: str, group: str, consumer: str | None = None) -> list[str]:
    async with aioredis.Redis.from_url(url) as client:
        items = await client.xpending_range(key, group, "-", "+", 10_000, consumername=consumer)
    return [item["message_id"].decode() for item in items]


def make_model() -> aiofit.Sequential:
    model = aiofit.Sequential(
        [layers.Input(shape=(3,)), layers.Dense(8, activation="relu"), layers.Dropout(0.2),
         layers.Dense(2, activation="softmax")],
        seed=1,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def stream(url: str, key: str, consumer: str = "c1", group: str = "g", **kwargs: Any) -> Any:
    options = {"fields": FIELDS, "block_ms": 50, **kwargs}
    return from_redis_stream(url, key, group, consumer, 8, **options)


# -- batching and field mapping --------------------------------------------------------------


@pytest.mark.anyio
async def test_batches_stack_entries_in_order_with_a_short_last_batch(
    redis_url: str, key: str
) -> None:
    await produce(redis_url, key, X[:20], Y[:20])
    async with stream(redis_url, key, count=3) as data:
        batches = [batch async for batch in data]
        assert [batch async for batch in data] == []  # one-shot, like an async generator
    assert [len(b[0]) for b in batches] == [8, 8, 4]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), X[:20])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), Y[:20])
    assert batches[0][0].dtype == np.float32
    assert batches[0][1].dtype == np.int64
    assert data.statistics().entries == 20


@pytest.mark.anyio
async def test_json_fields_and_sample_weight(redis_url: str, key: str) -> None:
    fields = {"x": StreamField("features", "float64", (2, 2), encoding="json"),
              "y": "target", "sample_weight": StreamField("w", "float32", ())}  # fmt: skip
    x = np.arange(12, dtype="float64").reshape(3, 2, 2) / 3
    async with aioredis.Redis.from_url(redis_url) as client:
        for i in range(3):
            entry = encode_entry(x[i], [i, -i], np.float32(i + 0.5), fields=fields)
            assert json.loads(entry["features"]) == x[i].tolist()
            await client.xadd(key, entry)
    async with from_redis_stream(redis_url, key, "g", "c", 5, fields=fields, block_ms=10) as data:
        [(bx, by, bw)] = [batch async for batch in data]
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(by, np.array([[0, 0], [1, -1], [2, -2]], dtype="float32"))
    np.testing.assert_array_equal(bw, np.array([0.5, 1.5, 2.5], dtype="float32"))


def test_raw_encoding_is_little_endian_bytes() -> None:
    entry = encode_entry(
        np.array([1.0, -2.0]), 3, fields={"x": "x", "y": StreamField("y", "int16", ())}
    )
    assert entry == {"x": np.array([1, -2], "<f4").tobytes(), "y": b"\x03\x00"}


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros(3), None), {"fields": FIELDS}, ValueError, "needs it"),
        ((np.zeros(3), 1, 1.0), {"fields": FIELDS}, ValueError, "has no field"),
        (
            (np.zeros(4), 1),
            {"fields": FIELDS},
            ValueError,
            r"shape \(3,\).*Received: shape \(4,\)",
        ),
        (
            (np.zeros(3), 1.5),
            {"fields": FIELDS},
            TypeError,
            "cannot cast.*Received: dtype float64",
        ),
        ((np.zeros(3), 1), {"fields": {"y": "y"}}, ValueError, "must map 'x'"),
        ((np.zeros(3), 1), {"fields": {"x": "x", "z": "z"}}, ValueError, "unknown role 'z'"),
    ],
)
def test_encode_entry_refuses_what_the_spec_cannot_read(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        encode_entry(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"dtype": "U3"}, "must be numeric"), ({"dtype": "O"}, "must be numeric"),
     ({"encoding": "pickle"}, "encoding must be"), ({"shape": (-1,)}, "shape must be")],
)  # fmt: skip
def test_stream_field_checks(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=f"{match}.*Received"):
        StreamField("x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"batch_size": 0}, "batch_size must be an int >= 1"), ({"count": 0}, "count must be"),
     ({"block_ms": -1}, "block_ms must be"), ({"stream": ""}, "stream must be a non-empty"),
     ({"consumer": 3}, "consumer must be")],
)  # fmt: skip
def test_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    options = {"url": "redis://127.0.0.1:1", "stream": "s", "group": "g", "consumer": "c",
               "batch_size": 4, **kwargs}  # fmt: skip
    with pytest.raises((TypeError, ValueError), match=f"{match}.*Received"):
        from_redis_stream(**options)


def test_without_redis_py_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r'pip install "aiofit\[redis\]"'):
        from_redis_stream("redis://127.0.0.1:1", "s", "g", "c", 4)


def test_trio_is_refused_with_a_clear_error(redis_url: str, key: str) -> None:
    async def read() -> None:
        async with stream(redis_url, key) as data:
            await anext(data)

    with pytest.raises(RuntimeError, match="asyncio.*only.*Received: .*trio"):
        anyio.run(read, backend="trio")


# -- bad entries -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"y": b"\x00" * 8}, r"no field 'x'.*Received: fields \['y'\]"),
        ({"x": b"\x00" * 13, "y": b"\x00" * 8}, "13 bytes is not a multiple of the item size 4"),
        ({"x": b"\x00" * 16, "y": b"\x00" * 8}, "cannot reshape"),
    ],
)
async def test_bad_entry_is_a_data_error_naming_its_id(
    redis_url: str, key: str, entry: dict[str, bytes], match: str
) -> None:
    ids = await produce(redis_url, key, X[:3], Y[:3])
    async with aioredis.Redis.from_url(redis_url) as client:
        bad = (await client.xadd(key, entry)).decode()
    model = make_model()
    before = model.get_weights()
    with pytest.raises(aiofit.DataError, match=f"entry {bad}: .*{match}"):
        await model.fit(stream(redis_url, key), verbose=0, callbacks=[])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before, strict=True))
    assert await pending_ids(redis_url, key, "g") == [*ids, bad]  # nothing acked


@pytest.mark.anyio
async def test_bad_json_entry_names_its_id(redis_url: str, key: str) -> None:
    fields = {"x": StreamField("x", encoding="json"), "y": StreamField("y", encoding="json")}
    async with aioredis.Redis.from_url(redis_url) as client:
        await client.xadd(key, {"x": b"[1, 2]", "y": b"1"})
        bad = (await client.xadd(key, {"x": b'["a", 2]', "y": b"1"})).decode()
    async with from_redis_stream(redis_url, key, "g", "c", 4, fields=fields, block_ms=10) as data:
        with pytest.raises(aiofit.DataError, match=f"entry {bad}: field 'x'.*not a number"):
            await anext(data)


@pytest.mark.anyio
async def test_entries_of_different_shapes_in_one_batch(redis_url: str, key: str) -> None:
    fields = {"x": "x", "y": "y"}  # 1-D of any length
    async with aioredis.Redis.from_url(redis_url) as client:
        await client.xadd(key, encode_entry([1, 2], [0], fields=fields))
        bad = (await client.xadd(key, encode_entry([1, 2, 3], [0], fields=fields))).decode()
    async with from_redis_stream(redis_url, key, "g", "c", 4, fields=fields, block_ms=10) as data:
        with pytest.raises(aiofit.DataError, match=rf"entry {bad}: .*shape \(3,\)"):
            await anext(data)


# -- consumer groups and acknowledgement -----------------------------------------------------


@pytest.mark.anyio
async def test_two_consumers_of_a_group_split_the_stream(redis_url: str, key: str) -> None:
    await produce(redis_url, key)
    seen: dict[str, list[np.ndarray]] = {"c1": [], "c2": []}

    async def consume(name: str) -> None:
        async with stream(redis_url, key, consumer=name, count=2) as data:
            async for x, _ in data:
                seen[name].append(x)
                await anyio.lowlevel.checkpoint()  # let the other consumer read in between

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, "c1")
        tg.start_soon(consume, "c2")
    rows = [tuple(r) for name in seen for batch in seen[name] for r in batch]
    assert seen["c1"]
    assert seen["c2"]
    assert sorted(rows) == sorted(map(tuple, X))  # every entry once, by one consumer
    pending = {name: await pending_ids(redis_url, key, "g", name) for name in seen}
    assert len(pending["c1"]) + len(pending["c2"]) == len(X)  # read, never acked
    assert not set(pending["c1"]) & set(pending["c2"])


class PendingProbe(Callback):
    """After the backup callback ran at batch ``at``, records this consumer's pending ids."""

    def __init__(self, url: str, key: str, at: int) -> None:
        super().__init__()
        self.url, self.key, self.at = url, key, at
        self.pending: list[str] | None = None

    async def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if batch == self.at:
            self.pending = await pending_ids(self.url, self.key, "g", "c1")


@pytest.mark.anyio
async def test_entries_are_acked_only_once_a_backup_covers_them(
    redis_url: str, key: str, tmp_path: Path
) -> None:
    ids = await produce(redis_url, key)  # 40 entries: 5 batches of 8
    probe = PendingProbe(redis_url, key, at=3)
    backup = BackupAndRestore(tmp_path, save_freq=3)
    await make_model().fit(stream(redis_url, key), verbose=0, callbacks=[backup, probe])
    # Backed up after batch 2: entries 0-23 acked; batch 3 trained but not covered,
    # and what was read ahead, are still pending.
    assert probe.pending is not None
    assert probe.pending[:8] == ids[24:32]
    assert set(probe.pending) <= set(ids[24:])
    # fit completed: a last backup covered everything, then all was acked.
    assert await pending_ids(redis_url, key, "g") == []
    assert not await anyio.Path(tmp_path).exists()


@pytest.mark.anyio
async def test_without_a_backup_nothing_is_acked(redis_url: str, key: str) -> None:
    ids = await produce(redis_url, key)
    await make_model().fit(stream(redis_url, key), verbose=0)
    assert await pending_ids(redis_url, key, "g") == ids


@pytest.mark.anyio
@pytest.mark.parametrize(("save_freq", "first"), [(2, 1), ("epoch", 2)])
async def test_crashed_fit_resumes_on_the_pending_entries(
    redis_url: str, key: str, tmp_path: Path, save_freq: int | str, first: int
) -> None:
    await produce(redis_url, key)
    options: dict[str, Any] = {"epochs": 5, "steps_per_epoch": 1, "verbose": 0}
    full = make_model()
    full_history = await full.fit(stream(redis_url, key, group="full"), **options)
    model = make_model()
    crashing = [BackupAndRestore(tmp_path, save_freq), CrashAt(2, 0)]
    with pytest.raises(Crash):
        await model.fit(stream(redis_url, key), **options, callbacks=crashing)
    model = make_model()
    history = await model.fit(stream(redis_url, key), **options,
                              callbacks=[BackupAndRestore(tmp_path, save_freq)])  # fmt: skip
    # Both back up after epoch 1, the crash is after epoch 2's batch: the batch-based
    # backup resumes at the end of epoch 1 (its batch is done), the epoch one at epoch 2.
    assert history.epoch == full_history.epoch[first:]
    assert history.history["loss"] == full_history.history["loss"][first:]
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), full.get_weights(), strict=True)
    )
    assert await pending_ids(redis_url, key, "g", "c1") == []


@pytest.mark.anyio
async def test_crash_between_backup_and_ack_trains_nothing_twice(
    redis_url: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await produce(redis_url, key)
    options: dict[str, Any] = {"epochs": 5, "steps_per_epoch": 1, "verbose": 0}
    full = make_model()
    full_history = await full.fit(stream(redis_url, key, group="full"), **options)
    commit, commits = RedisStream.commit, []

    async def crash_on_second_commit(self: RedisStream, state: dict[str, Any]) -> None:
        commits.append(state["last_id"])
        if len(commits) == 2:
            raise Crash  # the backup after batch 3 is durable; its entries are not acked
        await commit(self, state)

    monkeypatch.setattr(RedisStream, "commit", crash_on_second_commit)
    with pytest.raises(Crash):
        await make_model().fit(
            stream(redis_url, key), **options, callbacks=[BackupAndRestore(tmp_path, 2)]
        )
    monkeypatch.undo()
    assert commits == [ids[15], ids[31]]
    assert (await pending_ids(redis_url, key, "g"))[:16] == ids[16:32]
    model = make_model()
    history = await model.fit(
        stream(redis_url, key), **options, callbacks=[BackupAndRestore(tmp_path, 2)]
    )
    assert history.epoch == [3, 4]  # the end of epoch 3 (its one batch was backed up), then 4
    assert history.history["loss"] == full_history.history["loss"][3:]
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), full.get_weights(), strict=True)
    )
    assert await pending_ids(redis_url, key, "g") == []


@pytest.mark.anyio
async def test_backup_of_another_consumer_is_refused(
    redis_url: str, key: str, tmp_path: Path
) -> None:
    await produce(redis_url, key)
    crashing = [BackupAndRestore(tmp_path, 1), CrashAt(0, 1)]
    with pytest.raises(Crash):
        await make_model().fit(stream(redis_url, key), verbose=0, callbacks=crashing)
    with pytest.raises(ValueError, match="another Redis stream.*Received"):
        await make_model().fit(stream(redis_url, key, consumer="other"), verbose=0,
                               callbacks=[BackupAndRestore(tmp_path, 1)])  # fmt: skip


@pytest.mark.anyio
async def test_cancellation_leaves_no_connection_open(redis_url: str, key: str) -> None:
    await produce(redis_url, key, X[:8], Y[:8])
    trained = anyio.Event()

    class Signal(Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            trained.set()

    data = stream(redis_url, key, consumer="cancelled", block_ms=100, stop_on_idle=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: make_model().fit(data, verbose=0, callbacks=[Signal()]))
        await trained.wait()
        async with aioredis.Redis.from_url(redis_url) as client:
            names = [c["name"] for c in await client.client_list()]
            assert "aiofit:cancelled" in names  # blocked in XREADGROUP for more entries
        tg.cancel_scope.cancel()
    async with aioredis.Redis.from_url(redis_url) as client:
        names = [c["name"] for c in await client.client_list()]
    assert "aiofit:cancelled" not in names


# -- the real thing: SIGKILL, in child processes ---------------------------------------------


def _child(*args: object) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, str(CHILD), *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, timeout=90, check=False)


def _load(path: Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    with np.load(path) as data:
        weights = [data[f"w{i}"] for i in range(len(data.files) - 1)]
        return weights, json.loads(bytes(data["record"]))


def _ledger(path: Path) -> list[tuple[int, list[int]]]:
    lines = path.read_text().splitlines()
    return [(int(step), [int(k) for k in ks.split(",")]) for step, ks in map(str.split, lines)]


@pytest.mark.slow
def test_sigkilled_fit_trains_every_entry_exactly_once(redis_url: str, key: str,
                                                       tmp_path: Path) -> None:  # fmt: skip
    from tests.sources import _redis_child as child

    x, y = child.entries()
    with redis.Redis.from_url(redis_url) as client:
        for a, b in zip(x, y, strict=True):
            client.xadd(key, encode_entry(a, b, fields=child.FIELDS))
    backup, ledger = tmp_path / "backup", tmp_path / "ledger.txt"
    # 5 batches per epoch, a backup every 4: the last before global batch 13 (epoch 2,
    # batch 3) is after global batch 11; batches 12 and 13 were trained, not covered.
    killed = _child(redis_url, key, "g", tmp_path / "never.npz", ledger, backup, 13)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    before = _ledger(ledger)
    assert [step for step, _ in before] == list(range(14))
    assert len(pending_sync(redis_url, key, "g")) >= 16  # batches 12, 13 and the read-ahead
    resumed = _child(redis_url, key, "g", tmp_path / "resumed.npz", ledger, backup)
    full_ledger = tmp_path / "full.txt"
    full = _child(redis_url, key, "full", tmp_path / "full.npz", full_ledger)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert full.returncode == 0, full.stderr.decode()
    weights, record = _load(tmp_path / "resumed.npz")
    full_weights, full_record = _load(tmp_path / "full.npz")
    assert all(np.array_equal(a, b) for a, b in zip(weights, full_weights, strict=True))
    assert record["first"] == [2, 2]
    assert record["history"]["loss"] == full_record["history"]["loss"][2:]
    after = _ledger(ledger)[len(before) :]
    assert after[0][0] == 12
    # What the weights saw: the killed run up to its last backup, then the resumed run.
    lineage = [ks for step, ks in before if step < 12] + [ks for _, ks in after]
    assert [k for ks in lineage for k in ks] == list(range(len(x)))  # each once, in order
    assert before[12:] == after[:2]  # the uncovered batches came back whole
    assert lineage == [ks for _, ks in _ledger(full_ledger)]
    assert pending_sync(redis_url, key, "g") == []  # all trained entries acked
    assert not backup.exists()


def pending_sync(url: str, key: str, group: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return [p["message_id"] for p in client.xpending_range(key, group, "-", "+", 10_000)]


def test_stream_state_round_trips_through_the_backup_json() -> None:
    state = {"stream": "s", "group": "g", "consumer": "c", "last_id": "17-3", "batches": 4}
    point = ResumePoint(2, 1, {"loss": 1.5}, {"loss": 8}, 5, SourcePosition(None, stream=state))
    back = ResumePoint.from_dict(json.loads(json.dumps(point.to_dict())))
    assert back == point
    assert back.source is not None
    assert back.source.stream == state
    old = point.to_dict()
    del old["source"]["stream"]  # a backup written before streams could resume
    assert ResumePoint.from_dict(old).source == SourcePosition(None)


def test_the_redis_example_trains_every_entry_and_acknowledges_them(redis_url: str) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "redis_stream.py"
    result = subprocess.run(
        [sys.executable, str(example), "--url", redis_url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    # 5 passes of the 1,437 training digits: all trained, all acknowledged once the
    # last backup is durable
    assert "trained on 7185 entries, acknowledged 7185" in result.stdout
    accuracy = float(result.stdout.rsplit("test accuracy", 1)[1])
    assert accuracy >= 0.9  # 5 epochs of a small MLP on the digits
