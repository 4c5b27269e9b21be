"""Run moto's server with one request at a time.

moto's stock server (`moto_server`) handles requests on many threads and its
backends are not atomic under concurrency: two conflicting conditional writes or
TransactWriteItems can both succeed (TestEmulatorGate shows it). Streambed's
correctness rests on exactly those conditions, so the local stack wraps moto's
WSGI application in a process-wide lock. Requests still arrive on many threads
(so slow clients do not block accept), but the backend sees them one by one.

Usage: bin/localstack/venv/bin/python moto_serial.py [--host 127.0.0.1] [--port 5000]
"""

import argparse
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, run_simple


def serialized(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        with lock:
            result = app(environ, start_response)
            try:
                # Drain the body inside the lock: a lazy iterable could still be
                # touching backend state after the call returns.
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]

    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()

    app = DomainDispatcherApplication(create_backend_app)
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    run_simple(args.host, args.port, serialized(app), threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
