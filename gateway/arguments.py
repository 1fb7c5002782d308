"""argparse types for the CLI's numbers: one line naming the value and what was expected."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def number_argument(cast: type, what: str, bounds: str, accepts: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: `text` as `cast` when `accepts` it, else "'text' is not `what` (`bounds`)"."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not accepts(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({bounds})")
        return value

    parse.__name__ = what
    return parse


port_number = number_argument(int, "a port number", "1-65535", lambda p: 1 <= p <= 65535)
worker_count = number_argument(int, "a number of workers", "1 or more", lambda n: n >= 1)
job_count = number_argument(int, "a number of jobs", "1 or more", lambda n: n >= 1)
images_in_flight = number_argument(int, "a number of images in flight", "1 or more", lambda n: n >= 1)
seconds = number_argument(float, "a number of seconds", "more than 0", lambda s: s > 0)
