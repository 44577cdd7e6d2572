"""A local Snowplow-compatible collector with fault injection, for tests and benchmarks."""
