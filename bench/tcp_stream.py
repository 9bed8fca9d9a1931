"""TCP batch streams: ``fit`` from loopback TCP vs ``fit`` from memory, and the raw stream.

Float32 batches of 256x784 with int labels. The same MLP (784-256-10) is trained
by ``fit`` from in-memory arrays and by ``fit`` from :func:`aiofit.sources.from_tcp`
reading a :func:`aiofit.sources.serve_batches` server over 127.0.0.1, interleaved
round by round. The ratio is memory time / TCP time (target >= 0.8). The server
runs in its own process, as a data producer would, on ``aiofit.run``'s loop as
``python -m aiofit serve`` runs it (on this 2-core machine it still competes
with training for the CPU); a second row shows the server in the
trainer's own process and event loop, for contrast, and a third the same
batches from an async generator with no network at all: the engine's own
streaming path, so the rest of the gap is the network's. A fourth row is a
reference without aiofit's engine or any event loop: a plain thread reading
frames from a blocking socket into a bounded queue, and a loop calling
``train_on_batch``, against the same loop over the in-memory batches: what the
network costs any consumer on this machine. The raw stream alone (frames read
and decoded, no training) is reported in MB/s.

Run: ``python -m bench.tcp_stream [--quick]`` (a few seconds), or ``python -m bench``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from aiofit.engine import fit
from aiofit.sources import from_tcp, serve_batches
from aiofit.sources.wire import FrameDecoder
from bench._models import default_backend, mlp, run_on
from bench._report import make_row, median_spread, pick

BATCH, FEATURES, CLASSES = 256, 784, 10
TARGET = 0.8


def make_data(batches: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((batches * BATCH, FEATURES), dtype=np.float32)
    y = rng.integers(0, CLASSES, size=batches * BATCH)
    return x, y


def fit_from_memory(model: Any, x: np.ndarray, y: np.ndarray, backend: str) -> float:
    async def main() -> float:
        start = time.perf_counter()
        await fit(model, x, y, batch_size=BATCH, shuffle=False, verbose=0)
        return time.perf_counter() - start

    return run_on(backend, main)


def fit_from_tcp(model: Any, x: np.ndarray, y: np.ndarray, backend: str,
                 port: int | None = None) -> float:
    """Fit from a server in this process, or from the one listening on ``port``."""
    async def main() -> float:
        async with contextlib.AsyncExitStack() as stack:
            if port is None:
                server = await stack.enter_async_context(serve_batches(x, y, batch_size=BATCH))
                host, where = server.host, server.port
            else:
                host, where = "127.0.0.1", port
            start = time.perf_counter()
            await fit(model, from_tcp(host, where), verbose=0)
            return time.perf_counter() - start

    return run_on(backend, main)


# Run as `python -m aiofit serve` runs a server: on aiofit.run's loop (uvloop when
# installed; measured side by side, a plain asyncio server process costs the
# trainer ~0.08 of the ratio on this 2-core machine).
_SERVER = """
import sys, anyio, aiofit
from aiofit.sources import serve_batches
from bench.tcp_stream import make_data

async def main():
    x, y = make_data(int(sys.argv[1]))
    async with serve_batches(x, y, batch_size=int(sys.argv[2])) as server:
        print(server.port, flush=True)
        await anyio.sleep_forever()

aiofit.run(main())
"""


@contextlib.contextmanager
def server_process(batches: int) -> Iterator[int]:
    """A ``serve_batches`` server of the same data in a child process; yields its port."""
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(batches), str(BATCH)], stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield int(child.stdout.readline())
    finally:
        child.terminate()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()


def fit_from_generator(model: Any, x: np.ndarray, y: np.ndarray, backend: str) -> float:
    """Fit from an async generator of the same in-memory batches: the engine's
    streaming path with no network, to tell its cost from the network's."""
    async def main() -> float:
        async def batches() -> Any:
            for start in range(0, len(x), BATCH):
                yield x[start : start + BATCH], y[start : start + BATCH]

        start = time.perf_counter()
        await fit(model, batches(), verbose=0)
        return time.perf_counter() - start

    return run_on(backend, main)


def _socket_batches(port: int) -> Iterator[tuple[np.ndarray, ...]]:
    """The batches of the server on ``port``, read with a blocking socket."""
    decoder = FrameDecoder()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while True:
            while (frame := decoder.next_frame()) is None:
                received = sock.recv_into(decoder.get_buffer())
                if not received:
                    raise ConnectionError("the server closed the stream before its END frame")
                decoder.advance(received)
            if frame.end:
                return
            yield frame.arrays


def plain_loops(model: Any, x: np.ndarray, y: np.ndarray, port: int) -> float:
    """No engine, no event loop: in-memory loop time / socket-fed loop time."""
    start = time.perf_counter()
    for at in range(0, len(x), BATCH):
        model.train_on_batch(x[at : at + BATCH], y[at : at + BATCH])
    from_memory = time.perf_counter() - start

    buffer: queue.Queue[tuple[np.ndarray, ...] | None] = queue.Queue(maxsize=10)

    def read() -> None:
        try:
            for batch in _socket_batches(port):
                buffer.put(batch)
        finally:
            buffer.put(None)

    reader = threading.Thread(target=read)
    start = time.perf_counter()
    reader.start()
    try:
        while (batch := buffer.get()) is not None:
            model.train_on_batch(*batch)
        from_socket = time.perf_counter() - start
    finally:
        while reader.is_alive():  # after an error, let the reader run to its end
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.1)
        reader.join()
    return from_memory / from_socket


def raw_stream(x: np.ndarray, y: np.ndarray, backend: str) -> tuple[float, int]:
    """Seconds to read (and decode) the whole stream with no training, and its bytes."""

    async def main() -> tuple[float, int]:
        async with serve_batches(x, y, batch_size=BATCH) as server:
            stream = from_tcp(server.host, server.port)
            start = time.perf_counter()
            async for _ in stream:
                pass
            return time.perf_counter() - start, stream.statistics().bytes

    return run_on(backend, main)


def measure(level: str, backend: str) -> dict[str, Any]:
    batches = pick(level, 3, 24, 60)
    rounds = pick(level, 1, 5, 9)
    x, y = make_data(batches)
    in_memory, over_tcp = mlp(sizes=(FEATURES, 256, CLASSES)), mlp(sizes=(FEATURES, 256, CLASSES))
    fit_from_memory(in_memory, x[:BATCH], y[:BATCH], backend)  # warm up both paths
    fit_from_tcp(over_tcp, x[:BATCH], y[:BATCH], backend)
    ratios, same_process, generator, mem_times, tcp_times, rates = [], [], [], [], [], []
    plain: list[float] = []
    with server_process(batches) as port:
        for r in range(rounds):
            # Alternate who goes first: the shared machine's speed drifts.
            if r % 2:
                tcp_t = fit_from_tcp(over_tcp, x, y, backend, port)
                mem_t = fit_from_memory(in_memory, x, y, backend)
            else:
                mem_t = fit_from_memory(in_memory, x, y, backend)
                tcp_t = fit_from_tcp(over_tcp, x, y, backend, port)
            ratios.append(mem_t / tcp_t)
            mem_times.append(mem_t)
            tcp_times.append(tcp_t)
            same_process.append(fit_from_memory(in_memory, x, y, backend)
                                / fit_from_tcp(over_tcp, x, y, backend))  # fmt: skip
            generator.append(fit_from_memory(in_memory, x, y, backend)
                             / fit_from_generator(over_tcp, x, y, backend))  # fmt: skip
            plain.append(plain_loops(in_memory, x, y, port))
            seconds, nbytes = raw_stream(x, y, backend)
            rates.append(nbytes / seconds / 2**20)
    return {"ratios": ratios, "same_process": same_process, "generator": generator,
            "plain": plain,
            "mem": mem_times,
            "tcp": tcp_times, "rates": rates, "batches": batches, "rounds": rounds,
            "backend": backend}  # fmt: skip


def rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    ratio, spread = median_spread(m["ratios"])
    rate, rate_spread = median_spread(m["rates"])
    same, same_spread = median_spread(m["same_process"])
    gen, gen_spread = median_spread(m["generator"])
    plain, plain_spread = median_spread(m["plain"])
    mem = float(np.median(m["mem"])) / m["batches"] * 1e3
    tcp = float(np.median(m["tcp"])) / m["batches"] * 1e3
    case = f"fit from TCP vs memory, {BATCH}x{FEATURES} f32, MLP 784-256-10 ({m['backend']})"
    return [
        make_row(
            "tcp_stream", case,
            f"{ratio:.2f}x (±{spread * 100:.0f}%): {tcp:.1f} vs {mem:.1f} ms/batch",
            target=f">= {TARGET}x", passed=ratio >= TARGET, median=ratio, spread=spread,
            unit="memory time / TCP time", rounds=m["rounds"], batches=m["batches"],
            ms_per_batch_tcp=tcp, ms_per_batch_memory=mem,
        ),
        make_row(
            "tcp_stream", f"the same, server in the trainer's own process ({m['backend']})",
            f"{same:.2f}x (±{same_spread * 100:.0f}%)", median=same, spread=same_spread,
            unit="memory time / TCP time",
        ),
        make_row(
            "tcp_stream", f"the same batches from an async generator, no network ({m['backend']})",
            f"{gen:.2f}x (±{gen_spread * 100:.0f}%)", median=gen, spread=gen_spread,
            unit="memory time / generator time",
        ),
        make_row(
            "tcp_stream", "reference, no engine or event loop: train_on_batch fed by a "
            "blocking-socket reader thread, vs the same loop from memory",
            f"{plain:.2f}x (±{plain_spread * 100:.0f}%)", median=plain, spread=plain_spread,
            unit="memory time / socket time",
        ),
        make_row(
            "tcp_stream", f"raw stream over loopback, no training ({m['backend']})",
            f"{rate:.0f} MB/s (±{rate_spread * 100:.0f}%)", median=rate, spread=rate_spread,
            unit="MiB/s",
        ),
    ]  # fmt: skip


def run(level: str = "full") -> list[dict[str, Any]]:
    """Measure on the default event loop (uvloop when installed) and report."""
    return rows(measure(level, default_backend()))


def main() -> None:
    from bench._report import format_table

    level = "quick" if "--quick" in sys.argv else "full"
    print(format_table(run(level)))


if __name__ == "__main__":
    main()
