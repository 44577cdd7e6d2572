"""The ingest domain: request bodies checked and turned into Kafka messages.

The API's routes and the internal producer library validate through this one package, so an
event is accepted or rejected the same way wherever it enters.

- :mod:`~tracking_common.ingest.ingestor`: :class:`Ingestor`, the entry point;
- :mod:`~tracking_common.ingest.errors`: the refusals of a whole request;
- :mod:`~tracking_common.ingest.batch`: :class:`Batch` and :class:`Rejection`, the outcome;
- :mod:`~tracking_common.ingest.structs`, :mod:`~tracking_common.ingest.decoding`: the event
  model as msgspec Structs and the one-pass decoding of ``/v1`` bodies;
- :mod:`~tracking_common.ingest.tracker`: the tracker-protocol rules;
- :mod:`~tracking_common.ingest.schema_checks`: Iglu checks of self-describing data.
"""

from tracking_common.ingest.batch import Batch, Rejection
from tracking_common.ingest.errors import (
    IngestError,
    SchemaRegistryUnavailableError,
    TooManyEventsError,
    UnreadableBodyError,
)
from tracking_common.ingest.ingestor import Ingestor
from tracking_common.ingest.tracker import PAYLOAD_DATA_PREFIX

__all__ = [
    "PAYLOAD_DATA_PREFIX",
    "Batch",
    "IngestError",
    "Ingestor",
    "Rejection",
    "SchemaRegistryUnavailableError",
    "TooManyEventsError",
    "UnreadableBodyError",
]
