"""Many recognizers behind one endpoint: `python -m realtime.proxy --frontend ENDPOINTS --backend ENDPOINT`.

ZeroMQ's own forwarder (`zmq.proxy` between an XSUB socket connected to every recognizer's PUB endpoint and an
XPUB socket bound for subscribers): subscribers connect once, their subscriptions travel upstream to every
recognizer, and each message arrives unchanged, so its `source` field (`run_live.py --source-name NAME`) says
which camera it came from. Recognizers may start before or after the proxy (ZeroMQ reconnects); as with any PUB,
a subscriber sees only what is published after its subscription has reached the recognizer. Loopback by default.
"""

from __future__ import annotations

import signal
import threading

import zmq

from fdp.cli import CommandParser, run_command, run_main
from fdp.errors import ConfigError

DEFAULT_BACKEND = "tcp://127.0.0.1:5560"
WAIT_S = 0.2  # how long the main thread waits on the forwarder at a time: the longest a signal waits to be seen


def build_parser() -> CommandParser:
    parser = CommandParser(prog="python -m realtime.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--frontend", nargs="+", required=True, metavar="ENDPOINT",
                        help="the recognizers' --zmq endpoints, e.g. tcp://127.0.0.1:5555 tcp://127.0.0.1:5556")
    parser.add_argument("--backend", default=DEFAULT_BACKEND, metavar="ENDPOINT",
                        help="where subscribers connect (default: %(default)s; tcp://*:PORT for every interface)")
    return parser


def open_sockets(context: zmq.Context, frontends: list[str], backend: str) -> tuple[zmq.Socket, zmq.Socket]:
    """(XSUB connected to every frontend, XPUB bound to the backend); a bad endpoint is one ConfigError line."""
    upstream, downstream = context.socket(zmq.XSUB), context.socket(zmq.XPUB)
    for socket in (upstream, downstream):
        socket.setsockopt(zmq.LINGER, 0)
    try:
        for endpoint in frontends:
            try:
                upstream.connect(endpoint)
            except zmq.ZMQError as error:
                raise ConfigError(f"--frontend {endpoint}: cannot connect ({zmq.strerror(error.errno or 0)}); give "
                                  "each recognizer's --zmq endpoint as tcp://HOST:PORT") from None
        try:
            downstream.bind(backend)
        except zmq.ZMQError as error:
            raise ConfigError(f"--backend {backend}: cannot bind ({zmq.strerror(error.errno or 0)}); pick another "
                              "endpoint, e.g. tcp://127.0.0.1:5561, or stop the program that holds it") from None
    except ConfigError:
        upstream.close()
        downstream.close()
        raise
    return upstream, downstream


def _stop(signum: int, frame: object) -> None:
    """SIGTERM: a clean stop (exit 0), closing the sockets on the way out."""
    raise SystemExit(0)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _forwarder(upstream: zmq.Socket, downstream: zmq.Socket, control: zmq.Socket, stopped: threading.Event) -> None:
    """The forwarder thread: Ctrl-C and SIGTERM blocked here (libzmq's own threads block them already), so the
    kernel hands them to the main thread, never to a poll inside `zmq.proxy_steerable`: interrupted there, it
    raised in this thread, and the main thread, woken by the same signal, closed the sockets under it or waited
    on it for ever (a proxy that ignored SIGTERM, seen in CI). Sets `stopped` however it ends."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        while True:
            try:
                zmq.proxy_steerable(upstream, downstream, None, control)
                return
            except zmq.error.InterruptedSystemCall:
                continue
    finally:
        stopped.set()


def forward(context: zmq.Context, upstream: zmq.Socket, downstream: zmq.Socket) -> None:
    """Forward on a thread of its own until this thread is interrupted (Ctrl-C, SIGTERM), then stop the forwarder
    through its control socket and return. Python runs signal handlers on the main thread only, between
    bytecodes: a main thread blocked inside `zmq.proxy` sees a signal only if it lands while libzmq is waiting
    in poll (EINTR), and one that lands while libzmq is forwarding was left pending for ever (the proxy then
    ignored SIGTERM, seen once on a loaded machine). A main thread that waits in short, interruptible waits (on
    `stopped`, not on the thread) always sees it. While the forwarder starts, and once stopping, Ctrl-C and
    SIGTERM are held back (and seen the moment they are let through): cut short there, the clean-up would leave
    the forwarder or its control sockets running, and the context's termination would wait on them for ever."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # held until the forwarder is up: a signal in
    # between skipped the clean-up below and left the control sockets open for the context to wait on
    control, steer = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    control.bind("inproc://fdp-proxy-control")
    steer.connect("inproc://fdp-proxy-control")
    stopped = threading.Event()  # waited on, not the thread: a Thread.join cut short by a signal's exception can
    # leave the thread marked as ended while it still runs (CPython 3.11), and the sockets were closed under it
    forwarder = threading.Thread(target=_forwarder, args=(upstream, downstream, control, stopped), name="fdp-proxy",
                                 daemon=True)
    forwarder.start()
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        while not stopped.wait(WAIT_S):
            pass
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            steer.send(b"TERMINATE")
            stopped.wait()
            steer.close(linger=0)
            control.close(linger=0)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)


def main(argv: list[str] | None = None) -> int:
    """Forward until Ctrl-C (exit 130) or SIGTERM (exit 0)."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)
    context = zmq.Context()
    upstream, downstream = open_sockets(context, args.frontend, args.backend)
    print(f"proxy: {', '.join(args.frontend)} -> {downstream.getsockopt_string(zmq.LAST_ENDPOINT)}", flush=True)
    try:
        forward(context, upstream, downstream)
    finally:
        upstream.close()
        downstream.close()
        context.term()
    return 0


def command() -> int:
    """`fdp-proxy`, the installed name of `python -m realtime.proxy`."""
    return run_command(main, "fdp-proxy")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
