"""Request and response models of the REST API, one module per resource.

Naming follows Base / Create / Update / Public: ``Public`` is what a client
reads, ``Create`` / ``Update`` what it may send. Every field is described so the
OpenAPI page documents the API by itself.
"""
