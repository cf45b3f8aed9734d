"""Decoding one huge server-sent event: the linear decoder against the quadratic one it replaced.

One event whose ``data:`` line is ``--size`` bytes (10 MB by default) is fed to a decoder in
reads of 16 KB and 64 KB, the sizes a socket read gives. ``old`` is the decoder before the fix,
reimplemented here as the reference: on every read it prepends the unfinished line to the new
text and splits the whole again, so each read costs the length of the line so far. ``new`` is
``rxagent.chat_models.SSEDecoder``, which keeps the pieces of the unfinished line in a list and
joins them once. Both run in this process, in turn, best of ``--repeat``; the figure that
matters is the ratio. Both must give the same event.

    python bench/sse_decoding.py                  # 10 MB, 16 KB and 64 KB reads
    python bench/sse_decoding.py --size 1000000   # a smoke pass
"""

from __future__ import annotations

import argparse
import codecs
import time
from collections.abc import Callable

from rxagent.chat_models import SSEDecoder


class OldDecoder:
    """The reference: the old algorithm, data lines only (all the bench sends)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[str]:
        events: list[str] = []
        text = self._tail + self._decoder.decode(data)  # the copy on every read
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")  # and the re-split
        self._tail = lines.pop()
        for line in lines:
            if line[:6] == "data: ":
                self._data.append(line[6:])
            elif not line and self._data:
                events.append("\n".join(self._data))
                self._data = []
        return events


def new_decoder() -> Callable[[bytes], list[str]]:
    decoder = SSEDecoder(max_event_size=None)
    return lambda data: [event.data for event in decoder.feed(data)]


def old_decoder() -> Callable[[bytes], list[str]]:
    return OldDecoder().feed


def run(
    make: Callable[[], Callable[[bytes], list[str]]], body: bytes, read: int
) -> tuple[float, int]:
    feed = make()
    events: list[str] = []
    start = time.perf_counter()
    for offset in range(0, len(body), read):
        events += feed(body[offset : offset + read])
    elapsed = time.perf_counter() - start
    assert len(events) == 1 and len(events[0]) == len(body) - 8, "wrong event"
    return elapsed, len(events[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000, help="bytes in the one line")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    body = b"data: " + b"x" * args.size + b"\n\n"
    print(f"one data line of {args.size:,} bytes, best of {args.repeat}")
    print("| read size | old | new | old / new |")
    print("| ---: | ---: | ---: | ---: |")
    for read in (16 * 1024, 64 * 1024):
        old = min(run(old_decoder, body, read)[0] for _ in range(args.repeat))
        new = min(run(new_decoder, body, read)[0] for _ in range(args.repeat))
        print(f"| {read // 1024} KB | {old * 1000:,.1f} ms | {new * 1000:,.2f} ms "
              f"| {old / new:,.0f}x |")


if __name__ == "__main__":
    main()
