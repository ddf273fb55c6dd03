"""The `rates ingest` client commands, without a server."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading


def test_cli_reports_an_unreachable_api_in_one_line() -> None:
    """`rates ingest status` against a closed port exits 1 naming the URL, without a traceback."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rates",
            "ingest",
            "status",
            "1",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "cannot reach the rates API at http://127.0.0.1:9/batches/1" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_a_proxy_error_page_in_one_line() -> None:
    """An HTML 502 from something in front of the API is shown as its status and text; the
    request carried the bearer token (batch views need one)."""
    seen: list[str | None] = []

    class BadGateway(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), BadGateway) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = subprocess.run(
            [sys.executable, "-m", "rates", "ingest", "status", "1", "--url", url, "--token", "t"],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        server.shutdown()
    assert result.returncode == 1
    assert "502: <html><body>502 Bad Gateway</body></html>" in result.stderr
    assert seen == ["Bearer t"]
    assert "Traceback" not in result.stderr
