"""The REST API under ``/api/v1``: one router module per resource, shared dependencies in ``deps``.

Every call sends ``Authorization: Bearer <token>`` (tokens come from
``streetwatch user create``, ``POST /users`` or ``POST /auth/token``).

=====================================  ============  =================================================
route                                  needs         what
=====================================  ============  =================================================
GET  /devices, /devices/{id}           viewer        boxes: status, last seen, versions, position
GET  /events, /events/{id}             viewer        filters: violation_type, device_id, case_id,
                                                     since/until, bbox; sort; limit/offset or cursor
GET  /cases, /cases/{id}               viewer        filters: state (repeatable), violation_type,
                                                     priority, device_id, assigned_team, since/until,
                                                     bbox; sort; limit/offset with total. Detail:
                                                     events, evidence URLs, transitions
POST /cases/{id}/actions               reviewer      confirm / reject / dispatch(team) / resolve /
                                                     close / reopen, with a reason (module ``reviews``)
GET  /evidence/{sha256}                viewer        the JPEG (content-addressed, cacheable for good)
GET  /users                            admin         list users
POST /users                            admin         make a user; the answer holds its first token
GET  /users/me                         any token     who am I (device tokens too)
POST /auth/token                       (password)    sign in: username + password -> a new token
=====================================  ============  =================================================

Also served by :mod:`server.app`: ``/open311/v2/...`` (viewer, see :mod:`server.open311`),
``/metrics`` (viewer, :mod:`server.metrics`), ``/healthz``, ``/openapi.json`` and ``/docs``.

Roles: viewer < reviewer < admin; a ``device`` token is refused (403) by every
dispatcher endpoint. No or a bad token: 401. Errors are JSON ``{"detail": ...}``;
a workflow move the case's state does not allow: 409 with the allowed moves.
"""
