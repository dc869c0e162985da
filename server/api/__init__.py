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
                                                     priority, candidate, device_id, assigned_team,
                                                     since/until, bbox, overdue; sort (urgent...);
                                                     limit/offset or cursor. Detail: events, evidence
                                                     URLs, transitions, review, allowed_actions
GET  /cases/counts                     viewer        counts per type and state (the same filters)
POST /cases/{id}/actions               reviewer      confirm / reject(reason code) / dispatch(team) /
                                                     resolve / close / reopen / relabel / annotate
                                                     (boxes, attributes) / note / merge (``reviews``)
POST /cases/bulk-actions               reviewer      one action on a filter or ids, a result per case
GET  /review-options                   viewer        reject reasons, classes, attributes per type
GET  /stats/...                        viewer        precision, throughput, open-cases, recurrences
                                                     (JSON or ?format=csv; module ``stats``)
GET  /labels                           viewer        reviewed cases as training labels
GET  /signs, /signs/{id}               viewer        the signboard register: known signs, sightings
POST /signs, DELETE /signs/{id}        reviewer      add (place, permit, evidence crop) / remove
GET  /evidence/{sha256}                viewer        the JPEG (content-addressed, cacheable for good)
GET  /evidence/{sha256}/thumbnail      viewer        a small JPEG of it (?size=, longer side)
GET  /fleet                            viewer        per box: versions, last seen, health, rollout
POST /fleet/rollouts (+ /halt, /resume) admin         stage a signed model/config rollout in waves
GET  /fleet/downloads/{command_id}      device        the file a command names, that box only (Range)
GET  /users                            admin         list users
POST /users                            admin         make a user; the answer holds its first token
GET  /users/me                         any token     who am I (device tokens too)
GET  /teams                            viewer        active teams (?include_inactive=true: admin)
POST /teams, PATCH /teams/{id}         admin         add, rename, deactivate teams (module ``teams``)
POST /auth/token                       (password)    sign in: username + password -> a new token
=====================================  ============  =================================================

Also served by :mod:`server.app`: ``/open311/v2/...`` (viewer, see :mod:`server.api.open311`),
``/metrics`` (viewer, :mod:`server.api.metrics`), ``/healthz``, ``/openapi.json`` and ``/docs``;
and the dispatcher console (:mod:`server.web`): the page at ``/console/`` (``/`` redirects),
``POST|GET|DELETE /session`` (cookie sign-in, who is signed in, sign-out), ``GET /live/cases``
(Server-Sent Events of new and changed cases) and ``GET /console/config``. The console's
session cookie stands for a token everywhere; its writes must carry the ``X-StreetWatch-CSRF``
header.

Roles: viewer < reviewer < admin; a ``device`` token is refused (403) by every
dispatcher endpoint. No or a bad token: 401. Errors are JSON ``{"detail": ...}``;
a workflow move the case's state does not allow, or a case no longer in the ``expected_state``
the reviewer saw: 409 ``{"detail", "case_id", "state", "expected_state"}``. The review contract
the console is built on: ``docs/api-review.md``.
"""
