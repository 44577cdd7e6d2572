"""The publisher's partitioner: Java's partition for every key, a hash cache that stays bounded."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st
from tracking_producer import CachedPartitioner
from tracking_producer.partitioner import murmur2

from tests.support.murmur2_vectors import JAVA_MURMUR2

PARTITIONS = list(range(12))


@given(key=st.binary(min_size=1, max_size=64), recurs=st.booleans())
def test_the_partition_is_the_default_partitioners(key: bytes, recurs: bool) -> None:
    partitioner = CachedPartitioner()

    first = partitioner.keyed(key, PARTITIONS, recurs=recurs)
    again = partitioner.keyed(key, PARTITIONS, recurs=recurs)

    assert first == again == DefaultPartitioner()(key, PARTITIONS, PARTITIONS)


def test_keys_that_never_recur_leave_nothing_behind() -> None:
    partitioner = CachedPartitioner()

    for _ in range(10_000):
        partitioner.keyed(str(uuid.uuid4()).encode(), PARTITIONS, recurs=False)

    assert partitioner.cached_keys == 0


def test_recurring_keys_are_kept_up_to_the_bound() -> None:
    partitioner = CachedPartitioner(max_keys=100)

    for user in range(3):
        partitioner.keyed(f"shop:u-{user}".encode(), PARTITIONS, recurs=True)
    assert partitioner.cached_keys == 3

    for user in range(1_000):
        partitioner.keyed(f"shop:v-{user}".encode(), PARTITIONS, recurs=True)
    assert partitioner.cached_keys <= 100


def test_murmur2_gives_kafkas_test_vectors() -> None:
    for key, expected in JAVA_MURMUR2.items():
        assert murmur2(key) == expected & 0xFFFFFFFF
        assert aiokafka_murmur2(key) & 0xFFFFFFFF == expected & 0xFFFFFFFF


@given(key=st.binary(max_size=80))
def test_murmur2_equals_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF
