"""The uvicorn server to run the app with: it ends the console's live streams when it stops.

A stopping uvicorn waits for open responses, and a live stream (``server.web.live``) is open
as long as a console is. :class:`HttpServer` tells the streams to end the moment it is asked to
stop, whether by a signal (``streetwatch server run``) or by code setting ``should_exit`` (the
demo, tests), so Ctrl-C with consoles open stops at once; the browsers reconnect to whichever
server answers next and miss nothing (their cursor). ``timeout_graceful_shutdown`` stays a
backstop for any other slow response.

    HttpServer(uvicorn.Config(app, host=..., port=..., timeout_graceful_shutdown=SHUTDOWN_GRACE_S)).run()
"""

from __future__ import annotations

import uvicorn

from server.web.live import end_live_streams


class HttpServer(uvicorn.Server):
    """``uvicorn.Server`` whose ``should_exit`` also ends the app's live streams."""

    _exit = False

    @property
    def should_exit(self) -> bool:
        return self._exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit = value
        if value:
            end_live_streams(self.config.app)
