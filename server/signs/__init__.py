"""The signboard register: known (permitted) signs, so that only new or changed signs open cases.

* :mod:`~server.signs.fingerprint`: an appearance fingerprint of a sign's crop, and similarity;
* :mod:`~server.signs.register`: the pure decision for one sighting (attached / new / changed ...);
* :mod:`~server.signs.ingest`: that decision inside an ingest batch (lookup, crop, sightings);
* :mod:`~server.signs.service`: register entries from a permitted case, by hand, removed;
* :mod:`~server.signs.permits`: a permit list imported from CSV or GeoJSON;
* :mod:`~server.signs.zones`: where no sign may hang (a GeoJSON file named in the settings).
"""
