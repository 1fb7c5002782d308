"""Runs blocking engine reads off the event loop, in a bounded worker pool.

`threads` reads run at once; up to `queue_size` more wait. Past that the
request is refused at once with EngineBusyError (each dialect answers its own
rate-limit/busy code) instead of piling up latency.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from core.errors import EngineBusyError


def _lower_priority(nice: int) -> None:
    """Run this engine thread `nice` steps below the event loop (Linux threads have their own
    nice value). With every core busy reading cards, the loop still gets the CPU the moment a
    request arrives or an answer is ready, so parsing, signing and rendering do not wait behind
    a read: server overhead stays low under load, and total throughput is unchanged."""
    if nice and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
        except OSError:  # not permitted in some sandboxes: run at normal priority
            pass


class EngineRunner:
    def __init__(self, threads: int = 1, queue_size: int = 8, nice: int = 0):
        if threads < 1 or queue_size < 0 or nice < 0:
            raise ValueError("threads must be >= 1, queue_size >= 0 and nice >= 0")
        self.threads = threads
        self.queue_size = queue_size
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="engine", initializer=_lower_priority, initargs=(nice,))
        self._lock = threading.Lock()
        self._pending = 0  # running + queued; decremented by the worker when the call really ends
        self._running = 0

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return max(0, self._pending - self._running)

    def _release(self, _future: Any) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., Any], *args: Any, stages: dict[str, float] | None = None) -> Any:
        """`fn(*args)` in a worker thread. `stages`, when given, gets "queue" (seconds waited for a
        thread) and "engine" (seconds the call ran), also when the call raises."""
        with self._lock:
            if self._pending >= self.threads + self.queue_size:
                raise EngineBusyError(f"{self._pending} engine calls pending")
            self._pending += 1
        submitted = time.perf_counter()
        times = [0.0, 0.0]  # started, ended (perf_counter), written by the worker thread

        def call() -> Any:
            times[0] = time.perf_counter()
            with self._lock:
                self._running += 1
            try:
                return fn(*args)
            finally:
                times[1] = time.perf_counter()
                with self._lock:
                    self._running -= 1

        try:
            future = self._pool.submit(call)
        except BaseException:
            self._release(None)
            raise
        # Released when the thread finishes, not when the awaiting request goes away:
        # a cancelled request must not free a slot its read is still occupying.
        future.add_done_callback(self._release)
        try:
            return await asyncio.wrap_future(future)
        finally:
            # A failed read's exception is held by the future and its traceback holds this frame:
            # the frame must let go of the future, or the two (and the image in `args`) make a
            # cycle that only the cycle collector frees.
            del future
            if stages is not None and times[1]:
                stages["queue"] = times[0] - submitted
                stages["engine"] = times[1] - times[0]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
