"""One Spark standalone cluster (master, worker, Thrift server) on loopback for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.spark_cluster.cluster import SparkCluster


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory) -> Iterator[SparkCluster]:
    cluster = SparkCluster(tmp_path_factory.mktemp("spark_cluster"))
    with cluster:
        yield cluster
    left = cluster.running_pids()
    assert not left, f"the Spark cluster's processes {left} still run after stop() (logs: {cluster.logs_dir})"
