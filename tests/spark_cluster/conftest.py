"""One Spark standalone cluster (master, worker, Thrift server) on loopback for the whole session.

The cluster needs the `spark` extra (pyspark's jars, PyHive): without it, as in `make test`, these tests are not
even collected (`make test-spark-cluster` installs it)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.spark_cluster.cluster import SparkCluster

if not all(importlib.util.find_spec(module) for module in ("pyspark", "pyhive", "thrift_sasl")):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    from tests.spark_cluster.cluster import SparkCluster

    cluster = SparkCluster(tmp_path_factory.mktemp("spark_cluster"))
    with cluster:
        yield cluster
    left = cluster.running_pids()
    assert not left, f"the Spark cluster's processes {left} still run after stop() (logs: {cluster.logs_dir})"
