"""Suite-wide fixtures: the real Kafka broker and the local collector."""

pytest_plugins = ["tests.support.kafka", "tests.support.collector"]
