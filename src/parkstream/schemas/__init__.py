"""JSON Schemas of the public contract: generated from the models, published, checked.

``generate`` owns the ``schemas/`` directory (current and published schemas, the index);
``compat`` decides whether a new schema still serves the consumers of an old one.
"""
