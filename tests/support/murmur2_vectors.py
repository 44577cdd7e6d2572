"""Kafka's own murmur2 test vectors (clients' UtilsTest.testMurmur2): key -> Java's signed hash.

A Java producer puts a key on partition ``(hash & 0x7fffffff) % partitions``.
"""

from __future__ import annotations

JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
