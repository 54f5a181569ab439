"""A local HTTP server that speaks the OCR.space protocol, for the OCR client's tests: it parses
the multipart request and answers as told, one scripted mode per request ("ok" when the
script is empty)."""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RATE_LIMIT_BODY = "You may only perform this action upto maximum 180 number of times within 3600 seconds"


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


class FakeOcrSpace:
    def __init__(self, text: str = "12 34\r\n", slow_s: float = 2.0) -> None:
        self.text, self.slow_s = text, slow_s
        self.script: list[str] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fields = parse_multipart(self.headers["Content-Type"], body)
                server.requests.append({"path": self.path, "apikey": self.headers.get("apikey"), "fields": fields})
                mode = server.script.pop(0) if server.script else "ok"
                status, headers, payload = server.answer(mode)
                if mode == "timeout":
                    time.sleep(server.slow_s)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/parse/image"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self, mode: str) -> tuple[int, dict, bytes]:
        as_json = {"Content-Type": "application/json"}
        result = {"ParsedResults": [{"TextOverlay": None, "TextOrientation": "0", "FileParseExitCode": 1,
                                     "ParsedText": self.text, "ErrorMessage": "", "ErrorDetails": ""}],
                  "OCRExitCode": 1, "IsErroredOnProcessing": False, "ProcessingTimeInMilliseconds": "31",
                  "SearchablePDFURL": "Searchable PDF not generated as it was not requested."}
        if mode in ("ok", "timeout"):
            return 200, as_json, json.dumps(result).encode()
        if mode == "429":
            return 429, {**as_json, "Retry-After": "1"}, b'"Too many requests"'
        if mode == "500":
            return 500, {"Content-Type": "text/html"}, b"<html>Internal Server Error</html>"
        if mode == "403":
            return 403, as_json, b'"The API key is invalid"'
        if mode == "rate_limit_string":
            return 200, as_json, json.dumps(RATE_LIMIT_BODY).encode()
        if mode == "malformed":
            return 200, as_json, b'{"ParsedResults": [{"ParsedText": "12'
        if mode == "no_results":  # JSON, but without the parsed text
            return 200, as_json, json.dumps({"OCRExitCode": 1, "IsErroredOnProcessing": False}).encode()
        if mode == "processing_error":
            failed = {"OCRExitCode": 3, "IsErroredOnProcessing": True,
                      "ErrorMessage": ["Unable to recognize the file type or E216:Unable to detect the file extension"],
                      "ProcessingTimeInMilliseconds": "0"}
            return 200, as_json, json.dumps(failed).encode()
        raise ValueError(mode)

    def __enter__(self) -> FakeOcrSpace:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
