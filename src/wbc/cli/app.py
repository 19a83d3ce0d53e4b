"""`wbc app`: the Streamlit server started on a model, its address and port checked before it starts."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from wbc.errors import WbcError, install_command


def cmd_app(args: argparse.Namespace) -> int:
    import subprocess

    from wbc.app.analysis import MAX_UPLOAD_MB
    from wbc.predict import Predictor

    try:
        import streamlit  # noqa: F401
    except ImportError as e:
        raise WbcError(f"the app needs Streamlit: {install_command('app')}") from e
    Predictor(args.model)  # fail here, in one line, if the model is missing or corrupt
    # Before the address is printed: Streamlit meets a bad address with a traceback, and names a busy
    # port only after wbc has said where the app is.
    _check_address(args.address, args.port)
    env = dict(os.environ)
    if args.model:
        env["WBC_MODEL"] = str(Path(args.model).resolve())
    page = Path(__file__).parent.parent / "app" / "main.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(page), "--server.headless", "true",
           "--server.port", str(args.port), "--server.address", args.address,
           "--server.maxUploadSize", str(MAX_UPLOAD_MB), "--browser.gatherUsageStats", "false",
           # Users, not developers: no "File change. Rerun" bar when the installed code changes.
           "--server.fileWatcherType", "none", "--server.runOnSave", "false",
           "--client.toolbarMode", "viewer"]
    # An IPv6 address goes in brackets in a URL: http://::1:8501 is no address a browser opens.
    host = f"[{args.address}]" if ":" in args.address else args.address
    print(f"wbc app: http://{host}:{args.port}  (Ctrl+C stops it)", flush=True)
    if os.name == "posix":
        # Become the server rather than its parent: a service manager's or container's SIGTERM to
        # `wbc app` then stops Streamlit, where a child would outlive its killed parent and hold the port.
        sys.stderr.flush()
        os.execve(sys.executable, cmd, env)
    return subprocess.call(cmd, env=env)


def _check_address(address: str, port: int = 0) -> None:
    """WbcError unless this machine can listen on `address` at `port` (0: the address alone), probed as
    Streamlit binds: IPv6 where the address holds a ":", else IPv4; a `unix://` socket path is refused (the
    installed Streamlit's server took it and then stopped with a traceback)."""
    import errno
    import socket

    if address.startswith("unix://"):
        raise WbcError(f"--address {address}: the app's server cannot listen on a Unix socket; give a host address "
                       "(localhost, 0.0.0.0 for every network, or one of this machine's own) and put a proxy in front "
                       "for a socket")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        where = socket.getaddrinfo(address, 0, family, socket.SOCK_STREAM)[0][4]
    except (socket.gaierror, UnicodeError) as e:
        raise WbcError(f"--address {address}: not an address or host name this machine can resolve ({e})") from e

    def bind(at_port: int) -> None:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no refusal
            probe.bind((where[0], at_port, *where[2:]))

    try:
        bind(0)  # any free port: the address alone
    except OSError as e:
        raise WbcError(f"--address {address}: not an address of this machine ({e.strerror or e}); "
                       "give localhost, 0.0.0.0 (every network) or one of its own addresses") from e
    if not port:
        return
    try:
        bind(port)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise WbcError(f"port {port} on {address} is in use (another wbc app, or another server): "
                           f"choose another with --port, e.g. --port {port + 1 if port < 65535 else 8501}") from e
        if e.errno == errno.EACCES:
            raise WbcError(f"port {port}: this user may not listen on it (ports below 1024 need root); "
                           "choose one above 1023 with --port, e.g. the default 8501") from e
        raise WbcError(f"port {port} on {address}: cannot listen there ({e.strerror or e})") from e
