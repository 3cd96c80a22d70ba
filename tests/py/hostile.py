"""Hostile API endpoints on 127.0.0.1 for the tests: each path prefix is a
behaviour (`/echo401/v1/...`, `/stall/v1/...`), and the server counts what
it received. Optionally served over TLS with a self-signed certificate."""
import http.server
import json
import ssl
import subprocess
import threading
import time


def _behaviours(auth):
    return {
        "echo401": (401, "application/json", json.dumps(
            {"error": {"code": "unauthorized", "message": f"token rejected: {auth}", "details": {"echo": auth}}})),
        "echo500html": (500, "text/html", f"<html><body><h1>500</h1><pre>Authorization: {auth}</pre></body></html>"),
        "echo502": (502, "application/json", json.dumps(
            {"error": {"code": "bad_gateway", "message": f"upstream saw {auth}", "details": None}})),
        "echo200text": (200, "text/plain", f"hello, you sent {auth}"),
        "missing": (404, "application/json", json.dumps(
            {"error": {"code": "not_found", "message": "volume not found", "details": None}})),
        "ok": (200, "application/json", json.dumps({"volumes": [], "meta": {"pagination": {
            "page": 1, "per_page": 50, "previous_page": None, "next_page": None, "last_page": 1, "total_entries": 0}}})),
    }


_LOCATION = {"id": 1, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE", "city": "Nuremberg",
             "latitude": 49.45, "longitude": 11.07, "network_zone": "eu-central"}
_PAGE = {"pagination": {"page": 1, "per_page": 50, "previous_page": None, "next_page": None, "last_page": 1,
                        "total_entries": 1}}


def _token_data(path, token):
    """A project whose data carries pieces of the token: a volume's name, a
    label, its device, and a server's name."""
    if "/servers" in path:
        return json.dumps({"servers": [{"id": 1, "name": "web-01", "status": "running", "location": _LOCATION,
                                        "labels": {"note": token[2:14]}}], "meta": _PAGE})
    volume = {"id": 5, "name": "vol-" + token[:12], "server": 1, "size": 10, "location": _LOCATION,
              "created": "2026-01-01T00:00:00Z", "linux_device": "/dev/disk/by-id/" + token[-10:],
              "protection": {"delete": False}, "labels": {"echo": token, token[3:13]: "x"}, "status": "available",
              "format": "ext4"}
    return json.dumps({"volumes": [volume], "meta": _PAGE})


class Hostile:
    """A running hostile server; `url(mode)` is an endpoint for one behaviour."""

    def __init__(self, tls_dir=None, stall_seconds=30):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                mode = self.path.strip("/").split("/", 1)[0]
                outer.requests.append((self.command, self.path))
                if mode == "stall":
                    time.sleep(stall_seconds)
                    return
                auth = self.headers.get("Authorization", "")
                if mode == "redirect":
                    # A Location padded so that a cut at 120 characters falls inside the token.
                    self.send_response(302)
                    self.send_header("Location", "https://elsewhere.example/" + "p" * 100 + auth.removeprefix("Bearer "))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode == "tokendata":
                    status, ctype, body = 200, "application/json", _token_data(self.path, auth.removeprefix("Bearer "))
                else:
                    status, ctype, body = _behaviours(auth)[mode]
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-Correlation-Id", self.headers.get("Authorization", ""))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls_dir is not None:
            cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                            "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, mode, host="127.0.0.1"):
        return f"{self.scheme}://{host}:{self.port}/{mode}/v1"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
