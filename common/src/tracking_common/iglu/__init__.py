"""Iglu: schema keys, local schema directories, and resolution from Iglu registries.

- :mod:`~tracking_common.iglu.keys`: the ``iglu:`` URI grammar and :class:`SchemaKey`;
- :mod:`~tracking_common.iglu.errors`: the error tree;
- :mod:`~tracking_common.iglu.validators`: compiling schemas, validating instances;
- :mod:`~tracking_common.iglu.repository`: Iglu directories read synchronously (the bundled
  schemas, ``IGLU_SCHEMA_DIR``), for the tracker-protocol envelopes and the local collector;
- :mod:`~tracking_common.iglu.registries`, :mod:`~tracking_common.iglu.resolver`,
  :mod:`~tracking_common.iglu.resolver_config`: asynchronous resolution through embedded and
  HTTP registries in Snowplow's order, configured by Snowplow's resolver configuration.

Iglu Central's schemas and this project's own ship inside the package, under ``schemas/iglu``
(see ``SOURCE.md`` there).
"""

from tracking_common.iglu.errors import (
    RegistryUnavailableError,
    SchemaNotFoundError,
    SchemaUnusableError,
    SchemaValidationError,
)
from tracking_common.iglu.keys import (
    CONTEXTS_SCHEMA,
    IGLU_URI_PATTERN,
    MAX_FILE_NAME_BYTES,
    PAYLOAD_DATA_SCHEMA,
    UNSTRUCT_EVENT_SCHEMA,
    SchemaKey,
)
from tracking_common.iglu.repository import MAX_CACHED_MISSES, IgluRepository, bundled_repository
from tracking_common.iglu.validators import BUNDLED_SCHEMA_DIR

__all__ = [
    "BUNDLED_SCHEMA_DIR",
    "CONTEXTS_SCHEMA",
    "IGLU_URI_PATTERN",
    "MAX_CACHED_MISSES",
    "MAX_FILE_NAME_BYTES",
    "PAYLOAD_DATA_SCHEMA",
    "UNSTRUCT_EVENT_SCHEMA",
    "IgluRepository",
    "RegistryUnavailableError",
    "SchemaKey",
    "SchemaNotFoundError",
    "SchemaUnusableError",
    "SchemaValidationError",
    "bundled_repository",
]
