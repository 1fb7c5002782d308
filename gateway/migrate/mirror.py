"""The bounded queue of mirrored jobs: the answering side never waits for them.

`submit(job)` never blocks: when `size` jobs are already waiting it returns
False (the caller counts a drop). `workers` tasks run the jobs; a job that
raises is logged and forgotten. Workers start on first use, in the running
loop (the app may be served without a lifespan).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

log = logging.getLogger("cardgate.shadow")

Job = Callable[[], Awaitable[None]]


class MirrorQueue:
    def __init__(self, size: int, workers: int):
        self.size = max(1, size)
        self.workers = max(1, workers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._tasks: list[asyncio.Task] = []

    def _ensure_started(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None:
            self._loop = loop
            self._queue = asyncio.Queue(maxsize=self.size)
            self._tasks = [loop.create_task(self._work(self._queue), name=f"shadow-mirror-{i}") for i in range(self.workers)]
        return self._queue

    def submit(self, job: Job) -> bool:
        queue = self._ensure_started()
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            return False
        return True

    @staticmethod
    async def _work(queue: asyncio.Queue) -> None:
        while True:
            job = await queue.get()
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in a mirror job must not stop the worker
                log.exception("shadow mirror job failed")
            finally:
                queue.task_done()

    async def join(self) -> None:
        """Wait until every submitted job has run (tests, shutdown)."""
        if self._queue is not None and self._loop is asyncio.get_running_loop():
            await self._queue.join()

    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._loop is asyncio.get_running_loop():  # tasks of another (finished) loop cannot be awaited here
            for task in self._tasks:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        self._tasks = []
        self._queue = None
        self._loop = None
