"""StreetWatch: street-violation detection from cameras, from the edge box to the dispatcher.

The ``streetwatch`` package holds what every role shares: the wire contract
(:mod:`streetwatch.events`), the error hierarchy (:mod:`streetwatch.errors`),
repository paths and the ``streetwatch`` command-line entry point. Role code
lives in the top-level packages ``edge``, ``server`` and ``training``.
"""

__version__ = "0.1.0"
