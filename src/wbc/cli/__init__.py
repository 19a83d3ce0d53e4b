"""`wbc`: one verb per function, a module per verb. main() only parses, wires and turns errors into messages."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
from collections.abc import Iterator

# whole_number: the benchmarks' argument type, imported from here by them as every version since 0.11 has it
# (A/B runs of an earlier commit's src, from before wbc.cli was a package)
from wbc.cli.parser import build_parser, whole_number  # noqa: F401
from wbc.errors import WbcError
from wbc.io import lines_shown


def main(argv: list[str] | None = None) -> int:
    if (data := sys.modules.get("wbc.data")) is not None:  # a second command in one process says its notes again
        data.forget_notes()
    # Started with stdout or stderr closed (`>&-`), Python holds None there: a flush failed with a traceback, and a
    # message printed to a None stderr went to stdout, into the table. Either goes nowhere instead.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (the process's own, for its lifetime)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        # A file name the terminal's encoding cannot show (latin-1, a Windows code page, bytes that are
        # not UTF-8) is printed escaped, not fatal halfway through a table.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    with terminate_as_interrupt():
        return _run(args)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (what `timeout`, a batch scheduler or `kill` sends) raised as Ctrl+C is, for the block: what was
    done is kept as for Ctrl+C (`wbc predict`'s table of the files read, a training's --resume), where the
    process ended with nothing said. The handler before is put back after (tests call `main` in one process)."""
    try:
        old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread: the main thread's handler stands
        yield
        return
    try:
        yield
    finally:
        if old is not None:  # None: a handler not set from Python, which cannot be put back from it
            signal.signal(signal.SIGTERM, old)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
        return code
    except WbcError as e:
        print(f"wbc: error: {lines_shown(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wbc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe or socket broke: not ours to hide
        # `wbc ... | head`: the reader has what it wanted. Point stdout at /dev/null so that the
        # interpreter's own flush at exit does not fail again; 141 is what a shell reports for SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except OSError as e:  # a file system refusal the checks before the work could not foresee
        where = f"{e.filename}: " if e.filename else ""
        print(f"wbc: error: {lines_shown(f'{where}{e.strerror or e}')}", file=sys.stderr)
        return 2


def _stdout_reader_gone() -> bool:
    """Whether stdout's reader has gone: poll reports an error (a pipe) or a hang-up (a socket) on it."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no file descriptor: captured or replaced
        return False
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
