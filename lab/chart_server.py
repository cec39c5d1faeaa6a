"""The lab's in-country chart mirror process: a read-only HTTPS file server for one repository.

Run by `lab.chart_mirror.ChartMirror` as a lab daemon:
    python -m lab.chart_server --root DIR --port N --cert C --key K
Only GET/HEAD of files under the root; TLS 1.2+ with a certificate from the lab CA, as a site's
mirror would present one from the site's CA.
"""

from __future__ import annotations

import argparse
import functools
import ssl
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class _Handler(SimpleHTTPRequestHandler):
    def list_directory(self, path):  # type: ignore[no-untyped-def]
        self.send_error(404, "no listing")  # a repository is read through its index
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), functools.partial(_Handler, directory=args.root))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
