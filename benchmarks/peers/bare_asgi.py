"""The floor: a bare ASGI app that reads the body and answers 200 with empty TwiML, nothing else.

Run by uvicorn with the inbox's own server settings (uvloop, httptools, one process), so the
gap between it and the inbox is what the inbox's own work costs (benchmarks/inbound.py does it):

    uvicorn --loop uvloop --http httptools --no-access-log benchmarks.peers.bare_asgi:app
"""

from typing import Any

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
HEADERS = [(b"content-type", b"text/xml; charset=utf-8"), (b"content-length", str(len(TWIML)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":  # lifespan: nothing to start
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": TWIML})
