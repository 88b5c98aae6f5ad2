"""Watch a running FDP Live from a terminal: `python -m realtime.subscribe [--endpoint ...] [--topics ...]`.

Prints one line per message (coloured with rich on a terminal, or `--plain`, or the raw `--json`), after checking
each message against the schema: a message that does not follow it is reported on stderr and skipped, so this is
also the quickest way to check a publisher. Ctrl-C exits 130 quietly.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

import zmq

from fdp.cli import CommandParser, run_main
from fdp.errors import ConfigError
from realtime import schema
from realtime.publishers.zmq import DEFAULT_ENDPOINT
from realtime.schema import Message, SchemaError

_STYLES = {schema.TOPIC_PREDICTION: "cyan", schema.TOPIC_EVENT: "bold magenta", schema.TOPIC_STATUS: "green",
           schema.TOPIC_END: "bold yellow", schema.TOPIC_FRAME: "blue"}


def build_parser() -> CommandParser:
    parser = CommandParser(prog="python -m realtime.subscribe",
                                     description="Print the messages of a running FDP Live, each checked against "
                                                 "the schema.")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the publisher's endpoint (default: %(default)s)")
    parser.add_argument("--topics", nargs="+", default=[schema.TOPIC_PREFIX], metavar="TOPIC",
                        help="topic prefixes to subscribe to (default: %(default)s, i.e. everything)")
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--plain", action="store_true", help="plain lines, no colour")
    style.add_argument("--json", action="store_true", help='raw {"topic", "payload"} JSON lines, for other tools')
    parser.add_argument("--count", type=int, default=0, metavar="N", help="exit after N valid messages (0: never)")
    parser.add_argument("--until-end", action="store_true", help="exit after the end-of-stream message")
    return parser


def format_message(message: Message) -> str:
    """One human-readable line for a validated message."""
    p = message.payload
    head = f"{message.topic} #{p['seq']}"
    if message.topic == schema.TOPIC_PREDICTION:
        lat = p["latency_ms"]
        return (f"{head} face {p['face_id']} frame {p['frame_index']} @{p['media_s']:.3f}s  "
                f"{p['label']} {p['probs'].get(p['label'], 0.0):.2f}  motion {p['motion']:.2f}"
                f"{'  ME' if p['me_active'] else ''}  e2e {lat['e2e']:.1f} ms")
    if message.topic == schema.TOPIC_EVENT:
        return (f"{head} face {p['face_id']} frames {p['onset_frame']}-{p['offset_frame']} "
                f"{p['onset_media_s']:.3f}-{p['offset_media_s']:.3f}s ({p['duration_s']:.3f} s)  "
                f"{p['label']} {p['probs'].get(p['label'], 0.0):.2f}  peak motion {p['peak_motion']:.2f}")
    if message.topic == schema.TOPIC_STATUS:
        p50, p99 = (f"{v:.1f}" if v is not None else "-" for v in (p["e2e_ms_p50"], p["e2e_ms_p99"]))
        return (f"{head} {p['source']}  model {p['model']} on {p['engine']}/{p['device']}  {p['fps']:.1f} fps  "
                f"e2e p50 {p50} p99 {p99} ms  dropped {p['dropped_frames']}  faces {p['faces']}  "
                f"labels {','.join(p['labels'])}")
    if message.topic == schema.TOPIC_END:
        return f"{head} {p['reason']}  frames {p['frames']}  events {p['events']}"
    size_kb = len(message.jpeg or b"") / 1000
    return f"{head} frame {p['frame_index']} {p['width']}x{p['height']} jpeg {size_kb:.1f} kB"


def _make_printer(plain: bool, raw_json: bool) -> Callable[[Message], None]:
    """A function that shows one message the chosen way (rich only when it is used)."""
    if raw_json:
        return lambda message: print(message.to_json_line(), flush=True)
    if plain:
        return lambda message: print(format_message(message), flush=True)
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    # Text, not markup: labels and reasons come off the network and must not be read as rich markup.
    return lambda message: console.print(Text(format_message(message), style=_STYLES.get(message.topic, "")))


def main(argv: list[str] | None = None) -> int:
    """Subscribe, validate and print until Ctrl-C (or --count / --until-end)."""
    args = build_parser().parse_args(argv)
    if args.count < 0:
        raise ConfigError(f"--count {args.count} must be 0 (never stop) or more")
    show = _make_printer(args.plain, args.json)
    # Ctrl-C raises KeyboardInterrupt (exit 130 in run_main) even when this process inherited SIGINT ignored, as a
    # background job of a non-interactive shell does and Python then leaves it. Set before subscribing: a publisher
    # that has seen the subscription knows Ctrl-C is handled.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    socket: zmq.Socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        try:
            socket.connect(args.endpoint)
        except zmq.ZMQError as error:
            raise ConfigError(f"{args.endpoint}: cannot connect ({zmq.strerror(error.errno or 0)}); give --endpoint as "
                              "tcp://HOST:PORT") from None
        for topic in args.topics:
            socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        return _listen(socket, show, args.count, args.until_end)
    finally:
        socket.close(linger=0)


def _listen(socket: zmq.Socket, show: Callable[[Message], None], count: int, until_end: bool) -> int:
    received = 0
    while True:
        if not socket.poll(200):
            continue
        frames = socket.recv_multipart()
        try:
            message = schema.decode(frames)
        except SchemaError as error:
            print(f"invalid message: {error}", file=sys.stderr, flush=True)
            continue
        try:
            show(message)
        except BrokenPipeError:  # the reader went away (| head): that is an ordinary way to stop
            sys.stdout = open(os.devnull, "w")  # so the interpreter's final flush does not complain
            return 0
        received += 1
        if (count and received >= count) or (until_end and message.topic == schema.TOPIC_END):
            return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
