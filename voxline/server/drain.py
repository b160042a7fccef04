"""Graceful drain of a gunicorn worker on SIGTERM: leave the rotation, then finish in-flight.

gunicorn's own SIGTERM handling closes the listener at once. A replica behind a load balancer
should first answer `/ready` with 503 and keep serving what the balancer still sends until it
notices (`delay_s`, a few health-check intervals), and only then stop accepting; requests in
flight then finish within gunicorn's graceful timeout, which counts from the SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

logger = logging.getLogger(__name__)


def install(worker: Any, delay_s: float) -> None:
    """Replace the gunicorn worker's SIGTERM handler with drain-then-stop."""
    services = getattr(worker.wsgi, "services", None)
    if services is None:
        logger.warning("drain: the WSGI app is not Voxline's; gunicorn's own SIGTERM handling")
        return
    stopping = threading.Event()

    def stop() -> None:
        logger.info("drain: no new connections; finishing requests in flight")
        # The worker's loop checks `alive` at least once a second, then stops accepting and
        # waits for its requests in flight (gunicorn's graceful timeout).
        worker.alive = False

    def on_term(signum: int, frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        services.drain()
        logger.info("SIGTERM: serving %.1f s more while load balancers notice", delay_s)
        timer = threading.Timer(delay_s, stop)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_term)
