"""An SMTP sink on loopback in its own process, for the benchmarks: accepts every
message (aiosmtpd), parses nothing, and appends one line per message to a file
(``<MAIL FROM> <recipient count> <bytes>``), so the gateway's process pays nothing
for the server side.

    python bench/smtp_sink.py PORT LOGFILE      # runs until terminated
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Counting:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def handle_DATA(self, server, session, envelope):
        line = f"{envelope.mail_from} {len(envelope.rcpt_tos)} {len(envelope.content)}\n"
        os.write(self.fd, line.encode())
        return "250 Message accepted for delivery"


def main() -> None:
    port, path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Counting(path), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
