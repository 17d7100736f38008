"""One `gateway serve`'s flag table in shared memory, which its workers read per request.

Under load a busy worker's threads wait for its GIL, so a flip its own listener hears can
take a while to land in its table. With several workers, `gateway serve`'s supervisor,
which serves no requests, follows the flag store (gateway.serve.relay) and posts the whole
table on a board: a file it maps into memory, whose path the workers inherit (BOARD_ENV).
A request to a paired route first compares the board's sequence number with the one its
worker last read, one memory read; when they differ, the worker applies the board's
flags before it chooses. So every request that starts after the board changed is served
by the new flag, and no thread of a busy worker has to wake for it. The worker's own
listener keeps running, and every flag carries its store version, so the board and the
listener can only move a flag forward, whichever comes first.

    layout   [seq u64][length u32][reserved u32][JSON {"key": [mode, percent, version]}]
    writer   seq is odd while it writes, even when done (a seqlock; one writer)
    reader   copies, and copies again while seq was odd or moved meanwhile

    board = FlagBoard.create(path, keys)            # the supervisor
    board.publish({"GET /users": (Flag(Mode.CANARY, 10.0), 7)})
    watch = BoardWatch(FlagBoard.open(path), follower.apply)    # a worker
    watch.check()                                   # PathGroup, before it reads a flag
    check = board_watch(follower.apply)   # Gateway.build(): watch.check from BOARD_ENV, or None
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from gateway._process.workers import is_supervisor
from gateway.exceptions import first_line
from gateway.flags.table import Flag
from gateway.modes import Mode

__all__ = ["BOARD_ENV", "BoardWatch", "FlagBoard", "board_watch"]

log = logging.getLogger("gateway")

BOARD_ENV = "GATEWAY_SERVE_FLAG_BOARD"  # set by the supervisor, inherited by its workers
_HEADER = struct.Struct("<QII")
_LENGTH = struct.Struct("<I")
_READ_ATTEMPTS = 10_000  # a write takes microseconds; this many copies mean a dead writer

Posted = Mapping[str, tuple[Flag, int]]  # route key -> (flag, the store version it came at)


class FlagBoard:
    """The shared table: `create` makes it (one writer), `open` maps it read-only."""

    def __init__(self, memory: mmap.mmap, path: str) -> None:
        self._memory = memory
        self.path = path
        self.size = len(memory)
        self._seq = memoryview(memory)[:8].cast("Q")
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: str, keys: Iterable[str]) -> FlagBoard:
        """A new board at `path` (mode 0600), big enough for every flag of `keys`."""
        longest = max((mode.value for mode in Mode), key=len)
        widest = {key: [longest, 100.0, 2**63] for key in keys}
        size = _HEADER.size + 2 * len(_encode(widest)) + 4096
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)
            memory = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(memory, path)

    @classmethod
    def open(cls, path: str) -> FlagBoard:
        """The board at `path`, read-only; ValueError when the file is not one."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < _HEADER.size:
                raise ValueError(
                    f"{path} is {size} bytes: not a flag board (expected at least "
                    f"{_HEADER.size}, written by gateway serve's supervisor)"
                )
            memory = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        return cls(memory, path)

    @property
    def seq(self) -> int:
        """Even, and higher after every publish; 0 until the first."""
        return int(self._seq[0])

    def publish(self, flags: Posted) -> int:
        """Post the whole table; returns the new sequence number. Safe from any thread."""
        payload = _encode({k: [f.mode.value, f.percent, v] for k, (f, v) in flags.items()})
        if _HEADER.size + len(payload) > self.size:
            raise ValueError(
                f"the flag table is {len(payload)} bytes; the board at {self.path} holds "
                f"{self.size - _HEADER.size} (it was sized for the routes at startup)"
            )
        with self._lock:
            seq = self.seq
            self._seq[0] = seq + 1
            self._memory[_HEADER.size : _HEADER.size + len(payload)] = payload
            _LENGTH.pack_into(self._memory, 8, len(payload))
            self._seq[0] = seq + 2
        return seq + 2

    def read(self) -> tuple[int, dict[str, tuple[Flag, int]]]:
        """(sequence number, the table) as one consistent copy."""
        memory = self._memory
        for _ in range(_READ_ATTEMPTS):
            before = self._seq[0]
            if before & 1:
                time.sleep(0)  # a write in progress: let the writer finish
                continue
            (length,) = _LENGTH.unpack_from(memory, 8)
            payload = memory[_HEADER.size : _HEADER.size + length]  # a slice stops at the end
            if self._seq[0] == before:
                return int(before), _decode(payload) if before else {}
        raise TimeoutError(f"the flag board at {self.path} stayed mid-write")

    def close(self) -> None:
        self._seq.release()
        self._memory.close()


class BoardWatch:
    """Brings one worker's flags up to the board before a request chooses.

    `apply(key, flag, version, source)` is FlagFollower.apply: it takes a flag only when
    its version is newer than the worker's, so a board behind the worker changes nothing.
    Runs on the event loop (PathGroup.handle), which is the only caller.
    """

    def __init__(self, board: FlagBoard, apply: Callable[[str, Flag, int, str], bool]) -> None:
        self.board = board
        self.apply = apply
        self.seen = 0
        self._seq = board._seq

    def check(self) -> None:
        """Per request: one read of shared memory unless the board moved."""
        if self._seq[0] != self.seen:
            self.catch_up()

    def catch_up(self) -> None:
        seq, flags = self.board.read()
        for key, (flag, version) in flags.items():
            self.apply(key, flag, version, "board")
        self.seen = seq


def board_watch(
    apply: Callable[[str, Flag, int, str], bool], environ: Mapping[str, str] = os.environ
) -> Callable[[], None] | None:
    """The per-request check of a worker whose supervisor posts a board (BOARD_ENV), or
    None: not under `gateway serve --workers N`, in the supervisor itself, or a board that
    cannot be read (logged; the worker's own listener still follows the store)."""
    path = environ.get(BOARD_ENV)
    if not path or is_supervisor():
        return None
    try:
        board = FlagBoard.open(path)
    except (OSError, ValueError) as exc:
        log.warning(
            "%s=%s: cannot read the flag board (%s); flags reach this worker through its "
            "own listener only",
            BOARD_ENV,
            path,
            first_line(exc),
        )
        return None
    return BoardWatch(board, apply).check


def _encode(table: object) -> bytes:
    return json.dumps(table, separators=(",", ":")).encode()


def _decode(payload: bytes) -> dict[str, tuple[Flag, int]]:
    return {
        key: (Flag(Mode(mode), float(percent)), int(version))
        for key, (mode, percent, version) in json.loads(payload).items()
    }
