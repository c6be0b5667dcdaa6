"""Runs moto's server handling one request at a time.

DynamoDB evaluates a condition expression and applies the write atomically per item. moto's own
`moto_server` is threaded and does not lock items, so two concurrent conditional writes can both
pass their condition there, which DynamoDB never allows. Serving requests one at a time restores
the guarantee the store relies on, so the concurrency tests test koogate and not moto.

It also exits when the process that started it is gone: test binaries keep one shared server in
a static that is never dropped, and nothing `make test` starts may outlive it.

usage: python moto_serial.py HOST PORT
"""

import os
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def exit_with_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    threading.Thread(target=exit_with_parent, daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, processes=1, use_reloader=False)


if __name__ == "__main__":
    main()
