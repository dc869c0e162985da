"""The central server: MQTT ingest, case matching, REST API and the review page."""
