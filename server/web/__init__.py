"""The dispatcher console: a browser page served by the server itself (``/console/``).

``console.install(app)`` adds the page (static files, no build step, nothing from another
origin), the cookie sign-in (``session``), the live stream of case changes (``live``) and the
page's settings (``config``). Everything the page shows or changes goes through the REST API,
so the console can do nothing a token cannot.
"""
