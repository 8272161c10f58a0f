"""The benchmark's static server: serves saved pages over keep-alive HTTP/1.1 and 404s the rest."""

from __future__ import annotations

import http.client
from pathlib import Path

from bench.static_server import StaticPage, StaticServer, parse_head, save_pages

PAGES = [
    StaticPage("/", 200, "text/html; charset=utf-8", b"<html><a href='/listing/1'>one</a></html>"),
    StaticPage("/category/x?page=2", 200, "text/html; charset=utf-8", "<p>caf\u00e9</p>".encode()),
]


def test_serves_pages_and_404_on_one_connection(tmp_path: Path) -> None:
    pages_file = tmp_path / "pages.pickle"
    save_pages(PAGES, pages_file)
    with StaticServer(pages_file) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            answers, sockets = [], []
            for target in ("/", "/category/x?page=2", "/nowhere", "/"):
                connection.request("GET", target)
                sockets.append(connection.sock)
                response = connection.getresponse()
                answers.append((response.status, response.getheader("Content-Type"), response.read()))
        finally:
            connection.close()
    # One socket for all four requests: the server kept the connection alive.
    assert all(sock is sockets[0] for sock in sockets)
    assert answers[0] == (200, "text/html; charset=utf-8", PAGES[0].body)
    assert answers[1] == (200, "text/html; charset=utf-8", PAGES[1].body)
    assert answers[2][0] == 404
    assert answers[3] == answers[0]


def test_parse_head_keep_alive_and_absolute_targets() -> None:
    assert parse_head(b"GET /a?b=1 HTTP/1.1\r\nHost: x") == (b"GET", b"/a?b=1", True, 0)
    assert parse_head(b"GET / HTTP/1.1\r\nConnection: close")[2] is False
    assert parse_head(b"GET / HTTP/1.0\r\nHost: x")[2] is False
    assert parse_head(b"GET http://h:1/p?q HTTP/1.1\r\nHost: h")[1] == b"/p?q"
    assert parse_head(b"POST /f HTTP/1.1\r\nContent-Length: 3")[3] == 3
