"""A captured page on the wire from a worker to the writer: JSON, secrets redacted before they leave.

Only what the spider captured travels (URL, status, body, HTTP exchange, capture time, page types); the
writer's pipelines extract, normalize, capture and store it as a single-process crawl would. Cookie,
Authorization and Set-Cookie values are redacted here, as the raw store would redact them, so a session
never sits in Redis.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime

from dnm.items import HttpExchange, PageItem
from dnm.rawstore import SECRET_REQUEST_HEADERS, SECRET_RESPONSE_HEADERS, redact

VERSION = 1


def to_wire(item: PageItem) -> bytes:
    """A page as the bytes a worker hands over."""
    http = item.http
    message = {
        "v": VERSION,
        "url": item.url,
        "page_type": item.page_type,
        "status": item.status,
        "body": base64.b64encode(item.body).decode("ascii"),
        "sha256": item.sha256,
        "fetched_at": item.fetched_at.isoformat(),
        "encoding": item.encoding,
        "expected_type": item.expected_type,
        "http": None
        if http is None
        else {
            "method": http.method,
            "request_headers": redact(http.request_headers, SECRET_REQUEST_HEADERS),
            "protocol": http.protocol,
            "reason": http.reason,
            "response_headers": redact(http.response_headers, SECRET_RESPONSE_HEADERS),
        },
    }
    return json.dumps(message, separators=(",", ":")).encode()


def from_wire(data: bytes) -> PageItem:
    """The page a worker handed over; raises ValueError for anything else."""
    try:
        message = json.loads(data)
        if message.get("v") != VERSION:
            raise ValueError(f"hand-off format {message.get('v')!r}, this writer reads {VERSION}")
        http = message["http"]
        body = base64.b64decode(message["body"], validate=True)
        if hashlib.sha256(body).hexdigest() != message["sha256"]:
            raise ValueError(f"the body of {message['url']} does not match its SHA-256")
        return PageItem(
            url=message["url"],
            page_type=message["page_type"],
            status=int(message["status"]),
            body=body,
            sha256=message["sha256"],
            fetched_at=datetime.fromisoformat(message["fetched_at"]),
            encoding=message["encoding"],
            expected_type=message["expected_type"],
            http=None
            if http is None
            else HttpExchange(
                method=http["method"],
                request_headers=tuple((name, value) for name, value in http["request_headers"]),
                protocol=http["protocol"],
                reason=http["reason"],
                response_headers=tuple((name, value) for name, value in http["response_headers"]),
            ),
        )
    except (KeyError, TypeError, json.JSONDecodeError, binascii.Error) as exc:
        raise ValueError(f"not a handed-over page: {exc}") from exc
