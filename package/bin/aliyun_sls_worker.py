"""One worker process of an input with ``workers`` > 1, started by the input's supervisor (never by splunkd).

It speaks to the supervisor over its stdin and stdout; see sls_forwarder/workers.py
(the channel) and sls_forwarder.modinput.worker_main.
"""

import import_declare_test  # noqa: F401  first: puts the app's lib/ on sys.path, as in aliyun_sls.py

import sys

from sls_forwarder.modinput import worker_main

if __name__ == "__main__":
    sys.exit(worker_main())
