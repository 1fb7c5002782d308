"""The `cardgate` command.

    cardgate serve [--host 127.0.0.1] [--port 8080] [--workers 1] [--config FILE] [--insecure]
    cardgate check-config [FILE]
    cardgate --version

The config file is --config FILE (check-config: FILE), else $CARDGATE_CONFIG, else none (defaults).

Subcommands are argparse subparsers: to add one, write `add_<name>_command(subparsers)`
that registers a parser with `set_defaults(func=<callable(args) -> exit code>)` and
append it to COMMANDS below.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import importlib.metadata
import ipaddress
import logging
import os
import signal
import socket
import sys
import time

from gateway.arguments import job_count, port_number, worker_count
from gateway.config import Config, ConfigError, dialects_without_credentials, enabled_dialects, load_config
from gateway.logs import configure_logging
from gateway.migrate.commands import add_compare_command, add_report_command

log = logging.getLogger("cardgate.cli")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def decide_unsigned(config: Config, host: str, insecure: bool) -> tuple[bool, list[str], str | None]:
    """(allow_unsigned, warnings, refusal): may vendors without credentials serve unsigned requests?

    Only on loopback, or with --insecure. Bound elsewhere with no credentials at
    all, the gateway refuses to start (the refusal message is returned).
    """
    enabled = enabled_dialects(config)
    missing = dialects_without_credentials(config)
    allow_unsigned = is_loopback(host) or insecure
    warnings: list[str] = []
    if enabled and len(missing) == len(enabled) and not allow_unsigned:
        return False, [], (
            f"no credentials configured and bound to {host}: refusing to serve unsigned requests "
            "to the network. Configure credentials, bind to 127.0.0.1, or pass --insecure."
        )
    if missing and allow_unsigned:
        why = "--insecure was given" if insecure and not is_loopback(host) else f"bound to loopback ({host})"
        warnings.append(f"no credentials configured for {', '.join(missing)}: serving unsigned requests ({why})")
    elif missing:
        warnings.append(f"no credentials configured for {', '.join(missing)}: their requests will be refused")
    return allow_unsigned, warnings, None


def warm_up(engine) -> float:
    """Read one synthetic image so the first real request does not pay for lazy set-up; seconds taken.

    The image holds no card, so the read usually ends in an engine error: that is fine,
    the networks have run once either way.
    """
    import cv2
    import numpy as np

    from engine.errors import EngineError
    from engine.types import ReadOptions

    image = np.full((540, 856, 3), 180, np.uint8)
    cv2.rectangle(image, (40, 40), (816, 500), (90, 60, 30), -1)
    cv2.putText(image, "6222 0000 0000 0000", (90, 330), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (240, 240, 240), 4)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    started = time.perf_counter()
    for _ in range(2):
        try:
            engine.read(jpeg, ReadOptions())
        except EngineError:
            pass
    return time.perf_counter() - started


def build_app(config: Config, allow_unsigned: bool, loopback: bool = True):
    """The shipped app: the real engine, loaded and warmed, every dialect."""
    from engine import Engine
    from gateway.app import create_app

    engine = Engine.load()
    log.info("engine loaded and warmed in %.2f s", warm_up(engine))
    return create_app(config, engine, allow_unsigned=allow_unsigned, loopback=loopback)


CONFIG_ENV = "CARDGATE_CONFIG"


def config_path(given: str | None) -> str | None:
    """The config file: the one given on the command line, else $CARDGATE_CONFIG (compose sets it)."""
    return given or os.environ.get(CONFIG_ENV) or None


def read_config(path: str | None) -> Config | None:
    """The config, or None after saying in one line on stderr what is wrong with it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def serve_command(args: argparse.Namespace) -> int:
    args.config = config_path(args.config)  # the workers read the same file
    config = read_config(args.config)
    if config is None:
        return 2
    configure_logging(config.log.level, config.log.format)
    allow_unsigned, warnings, refusal = decide_unsigned(config, args.host, args.insecure)
    if refusal:
        log.error(refusal)
        return 2
    # Before the warnings and the model load: a mistake here is all the user needs to read.
    problem = bind_problem(args.host, args.port)
    if problem:
        log.error("cannot listen on %s: %s", address(args.host, args.port), problem)
        return 1
    for warning in warnings:
        log.warning(warning)
    if args.workers > 1:
        return supervise_workers(args, allow_unsigned)
    return serve_one(args, config, allow_unsigned, reuse_port=False)


def address(host: str, port: int) -> str:
    """host:port, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def hypercorn_config(args: argparse.Namespace, config: Config):
    from hypercorn.config import Config as HypercornConfig

    hconfig = HypercornConfig()
    hconfig.bind = [address(args.host, args.port)]
    hconfig.accesslog = None  # the gateway writes its own access line
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    # After the drain (serve_until), requests still running get this long.
    hconfig.graceful_timeout = config.server.drain_timeout_s
    # Request line + headers: Tencent's GET form carries the image in the query string (the vendor
    # allows 32 KB); the same 64 KiB as deploy/nginx.conf's large_client_header_buffers.
    hconfig.h11_max_incomplete_size = 64 * 1024
    return hconfig


def reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A listening socket of this worker's own on a port the other workers bind too (SO_REUSEPORT):
    the kernel spreads new connections evenly over the workers. (With one shared socket, the
    first worker to wake up tends to accept a whole burst of keep-alive connections.)"""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(backlog)
    return sock


BIND_HINTS = {
    errno.EADDRINUSE: "address already in use (another gateway?)",
    errno.EADDRNOTAVAIL: "not an address of this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def bind_problem(host: str, port: int) -> str | None:
    """Why the gateway cannot listen on host:port, or None, found by binding a plain socket there
    and closing it. `serve` checks this first, so a mistake costs one line and no model load.
    It also keeps --workers N off a port another gateway serves: the workers' SO_REUSEPORT sockets
    would bind beside its workers without a word, and the kernel would then share the connections
    between the two gateways, old config and all; a plain socket cannot bind there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no listener
            probe.bind((host.strip("[]"), port))
    except OSError as exc:  # socket.gaierror too: a host name that does not resolve
        return BIND_HINTS.get(exc.errno) or exc.strerror or str(exc)
    return None


def serve_one(args: argparse.Namespace, config: Config, allow_unsigned: bool, reuse_port: bool) -> int:
    """One process: load and warm the engine, serve until SIGTERM/SIGINT, drain, exit."""
    hconfig = hypercorn_config(args, config)
    try:
        app = build_app(config, allow_unsigned, is_loopback(args.host))
    except Exception as exc:  # no weights, engine not built, ...: say so without a trace
        log.error("cannot load the engine: %s: %s", type(exc).__name__, exc)
        return 1
    listening = hconfig.bind[0]
    if reuse_port:
        sock = reuse_port_socket(args.host, args.port, hconfig.backlog)
        hconfig.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) it from here

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("cardgate serving on %s (pid %d)", listening, os.getpid())
        await serve_until(app, hconfig, stop, config.server.drain_timeout_s)

    asyncio.run(main())
    return 0


def _worker_main(options: dict, allow_unsigned: bool) -> None:
    """Entry point of each worker process (--workers > 1)."""
    args = argparse.Namespace(**options)
    config = load_config(args.config)
    configure_logging(config.log.level, config.log.format)
    sys.exit(serve_one(args, config, allow_unsigned, reuse_port=True))


def supervise_workers(args: argparse.Namespace, allow_unsigned: bool) -> int:
    """--workers N: N processes, each with its own engine and its own SO_REUSEPORT socket.

    SIGTERM/SIGINT is passed on to every worker, which drains and exits. Should a worker
    die on its own, the others are stopped too and the exit status is 1, so a supervisor
    (compose, Kubernetes, systemd) restarts the whole thing.
    """
    import multiprocessing

    options = {k: v for k, v in vars(args).items() if k != "func"}
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no torch state shared across fork
    workers = [
        context.Process(target=_worker_main, args=(options, allow_unsigned), name=f"cardgate-worker-{i}")
        for i in range(args.workers)
    ]
    stopping = False

    def stop_all(*_):
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for worker in workers:
        worker.start()
    failed = False
    while any(worker.is_alive() for worker in workers):
        if not stopping and any(not w.is_alive() for w in workers):
            failed = True
            log.error("a worker exited (%s): stopping the others", [w.exitcode for w in workers])
            stop_all()
        time.sleep(0.2)
    return 1 if failed else 0


async def serve_until(app, hconfig, stop: asyncio.Event, drain_timeout: float) -> None:
    """Serve `app` until `stop` is set, then shut down gracefully.

    Draining first: /readyz turns 503 (load balancers stop sending), new requests
    get the dialect's ShuttingDownError answer, and requests in flight finish (up
    to `drain_timeout` s). Only then does Hypercorn stop listening, and it closes
    whatever connections are still open when the rest of `drain_timeout` is over:
    the whole shutdown takes at most `drain_timeout`, whatever clients do (a
    stalled body is answered sooner, at [server] body_timeout_s).
    """
    from hypercorn.asyncio import serve

    gateway = app.state.gateway
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def drain_on_stop() -> None:
        await stop.wait()
        began = loop.time()
        log.info("shutting down: draining %d request(s) in flight", gateway.metrics.in_flight)
        if not await gateway.drain(drain_timeout):
            log.warning("drain timeout (%.0f s) reached with %d request(s) in flight", drain_timeout, gateway.metrics.in_flight)
        # Hypercorn gives the connections still open graceful_timeout more after it stops
        # listening (it reads the value then): only what the drain left, not a second drain_timeout.
        hconfig.graceful_timeout = max(0.0, drain_timeout - (loop.time() - began))
        shutdown.set()

    drainer = asyncio.create_task(drain_on_stop())
    try:
        await serve(app, hconfig, shutdown_trigger=shutdown.wait)
    finally:
        drainer.cancel()


def add_serve_command(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve the vendor APIs over HTTP")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port_number, default=8080, help="TCP port to listen on")
    parser.add_argument("--workers", type=worker_count, default=1, help="processes, each with its own engine")
    parser.add_argument("--config", metavar="FILE", help=f"TOML config (see README); default: ${CONFIG_ENV}")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="serve unsigned requests for vendors without credentials even when not bound to loopback",
    )
    parser.set_defaults(func=serve_command)


def check_config_command(args: argparse.Namespace) -> int:
    path = config_path(args.file)
    if path is None:
        print(f"cardgate check-config: no FILE given and ${CONFIG_ENV} is not set", file=sys.stderr)
        return 2
    if read_config(path) is None:
        return 2
    print("ok")
    return 0


def add_check_config_command(subparsers) -> None:
    parser = subparsers.add_parser("check-config", help="check a config file as serve would, without serving")
    parser.add_argument("file", nargs="?", metavar="FILE", help=f"TOML config; default: ${CONFIG_ENV}")
    parser.set_defaults(func=check_config_command)


def load_engine(command: str):
    """The real engine, or None after saying in one line why it cannot be loaded."""
    from engine import Engine

    try:
        return Engine.load()
    except Exception as exc:  # no weights, engine not built, ...: say so without a trace
        print(f"cardgate {command}: cannot load the engine: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def scan_command(args) -> int:
    from engine.evaluate import iter_images, scan

    engine = None
    if any(True for _ in iter_images(args.paths, [])):  # with nothing to read, scan says so without the model
        engine = load_engine("scan")
        if engine is None:
            return 1
    return scan(engine, args.paths, fmt=args.format, show_full=args.show_full_numbers, jobs=args.jobs)


def add_scan_command(subparsers) -> None:
    parser = subparsers.add_parser("scan", help="read card images or folders, one record per image")
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl",
                        help="one JSON object per image, or CSV with a header line")
    parser.add_argument("--jobs", type=job_count, default=1, metavar="N", help="images read at once (threads); output keeps the input order")
    parser.add_argument("--show-full-numbers", action="store_true", help="print whole card numbers (default: first 6 + last 4)")
    parser.set_defaults(func=scan_command)


def eval_command(args) -> int:
    import json

    from engine.evaluate import evaluate, not_card_false_accepts
    from gateway.migrate.labels import LabelsError, check_labels

    try:
        check_labels(args.labels)  # before the model loads: a wrong file costs one line
    except LabelsError as exc:
        print(f"cardgate eval: {exc}", file=sys.stderr)
        return 2
    engine = load_engine("eval")
    if engine is None:
        return 1
    report = evaluate(engine, args.labels)
    if args.not_card:
        report["not_a_card"] = not_card_false_accepts(engine)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


def add_eval_command(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="score the engine on a labelled set (labels.tsv format)")
    parser.add_argument("labels", metavar="LABELS.tsv")
    parser.add_argument("--not-card", action="store_true", help="also count numbers read on images with no card")
    parser.set_defaults(func=eval_command)


# Each adds one subcommand.
COMMANDS = [add_serve_command, add_check_config_command, add_scan_command, add_eval_command, add_compare_command, add_report_command]


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, where there is one to show (not None, not a flag's False)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """The class of the top-level parser and of every subcommand's, whichever module adds it."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):
        """A mistake on the command line is one line on stderr (argparse's usage block is for --help)."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def package_version() -> str:
    try:
        return importlib.metadata.version("cardgate")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="cardgate", description="self-hosted bank card OCR gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
