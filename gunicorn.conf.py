"""Gunicorn settings for Voxline: one process, many threads, one model."""

import os

# One worker only: every worker process loads its own copy of the model (GPU memory, RAM and
# startup time multiply) and requests in different workers would not share one queue.
workers = 1
worker_class = "gthread"
# One thread per open request: streams in progress plus those waiting in the synthesis queue.
threads = int(os.environ.get("VOXLINE_THREADS", "32"))
bind = os.environ.get("VOXLINE_BIND", "127.0.0.1:8020")
# No preload: the app (and CUDA) must initialise inside the worker, never before fork.
preload_app = False
# A long stream is one request: the worker timeout only has to cover a stuck worker, and
# gthread workers heartbeat from their main loop, so streams of any length can finish.
timeout = int(os.environ.get("VOXLINE_WORKER_TIMEOUT", "120"))
# On SIGTERM: /ready answers 503 at once, new requests are still served for
# VOXLINE_DRAIN_DELAY_S (the load balancer's health checks notice meanwhile), then the worker
# stops accepting and its requests in flight finish; all of it within graceful_timeout.
graceful_timeout = int(os.environ.get("VOXLINE_GRACEFUL_TIMEOUT", "30"))
drain_delay_s = float(os.environ.get("VOXLINE_DRAIN_DELAY_S", "2"))
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("VOXLINE_LOG_LEVEL", "info")
# API keys (`?api_key=` in the request line) and credential headers are redacted in every
# line gunicorn writes; post_worker_init extends that to the app's own log handlers.
logger_class = "voxline.logredact.RedactingLogger"
# %(M)s is the request time in milliseconds.
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}o)s'


def post_worker_init(worker):
    """Redact secrets in the app's log handlers (configured while the app loaded); drain on
    SIGTERM instead of closing the listener at once (voxline.server.drain)."""
    from voxline.logredact import install_filter
    from voxline.server.drain import install

    install_filter()
    install(worker, min(drain_delay_s, graceful_timeout / 2))
