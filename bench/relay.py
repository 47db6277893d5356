"""A TCP relay on 127.0.0.1 in front of a local server, for the benchmarks: it counts the requests that pass (and the
GETs of objects among them), and can hold each chunk of a request for a while, to add the round trip that loopback
lacks. Stop it with close()."""
from __future__ import annotations

import re
import socket
import threading
import time

REQUEST_LINE = re.compile(rb"^(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/1\.[01]$")


class Relay:
    def __init__(self, upstream_port: int, delay_s: float = 0.0):
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.gets = 0  # GETs of objects (not listings)
        self.requests = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        pending = b""
        try:
            while data := src.recv(1 << 16):
                if requests:
                    pending = self._count(pending + data)
                    if self.delay_s:
                        time.sleep(self.delay_s)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _count(self, text: bytes) -> bytes:
        """Counts the complete request lines in `text`; returns the unfinished last line."""
        *lines, rest = text.split(b"\r\n")
        for line in lines:
            m = REQUEST_LINE.match(line)
            if m:
                with self.lock:
                    self.requests += 1
                    if m.group(1) == b"GET" and b"list-type" not in m.group(2):
                        self.gets += 1
        return rest

    def close(self) -> None:
        self.sock.close()
