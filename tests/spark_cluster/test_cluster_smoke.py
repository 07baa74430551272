"""The Spark cluster of `make test-spark-cluster` itself: a query runs on the worker's executor, the cluster's
default time zone is not UTC, and what a HiveServer2 session's `set:hiveconf:` configuration (dbt-spark's
`server_side_parameters`) can and cannot change. A failed start leaves no process behind."""

from __future__ import annotations

import contextlib
import socket

import pytest
from pyhive.exc import OperationalError

from tests.spark_cluster.cluster import HOST, SparkCluster, SparkClusterError

pytestmark = pytest.mark.spark_cluster


def query(cluster: SparkCluster, sql: str, configuration: dict[str, str] | None = None) -> list[tuple]:
    with (
        contextlib.closing(cluster.connect(configuration)) as connection,
        contextlib.closing(connection.cursor()) as cursor,
    ):
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.slow
def test_a_failed_start_leaves_no_process_behind(tmp_path):
    cluster = SparkCluster(tmp_path / "cluster")
    with socket.socket() as squatter:  # the Thrift server cannot bind its port: it exits after master and worker run
        squatter.bind((HOST, cluster.thrift_port))
        with pytest.raises(SparkClusterError, match="Spark's thriftserver exited") as failure:
            cluster.start()
    assert "Address already in use" in (cluster.logs_dir / "thriftserver.log").read_text()
    assert "--- master" in str(failure.value) and "--- thriftserver" in str(failure.value)
    assert cluster.running_pids() == []


def test_a_query_runs_on_the_workers_executor(spark_cluster):
    assert spark_cluster.master_status()["aliveworkers"] == 1
    before = spark_cluster.worker_tasks()

    assert query(spark_cluster, "select count(*) from range(0, 1000000, 1, 4)") == [(1_000_000,)]

    assert spark_cluster.worker_ran_tasks(), spark_cluster.executors()
    assert spark_cluster.worker_tasks() - before >= 4  # one task per partition of the range, at least
    executors = spark_cluster.executors()
    assert [executor.id for executor in executors if not executor.is_driver] == ["0"]
    assert all(executor.host_port.startswith(f"{HOST}:") for executor in executors)


def test_the_cluster_is_not_in_utc(spark_cluster):
    assert spark_cluster.time_zone == "Europe/Amsterdam"
    assert query(spark_cluster, "select current_timezone()") == [("Europe/Amsterdam",)]
    # the executors' JVMs too (-Duser.timezone), read in a task on each of the range's partitions
    in_tasks = "select distinct java_method('java.lang.System', 'getProperty', 'user.timezone') from range(0, 4, 1, 4)"
    assert query(spark_cluster, in_tasks) == [("Europe/Amsterdam",)]
    assert query(spark_cluster, "select cast(timestamp'2026-07-01 12:00:00Z' as string)") == [("2026-07-01 14:00:00",)]


def test_set_hiveconf_sets_a_runtime_setting_for_that_session_only(spark_cluster):
    in_utc = {"set:hiveconf:spark.sql.session.timeZone": "UTC"}
    assert query(spark_cluster, "select current_timezone()", in_utc) == [("UTC",)]
    assert query(spark_cluster, "select cast(timestamp'2026-07-01 12:00:00Z' as string)", in_utc) == [
        ("2026-07-01 12:00:00",)
    ]
    assert query(spark_cluster, "select current_timezone()") == [("Europe/Amsterdam",)]


def test_a_setting_without_the_set_hiveconf_prefix_is_ignored(spark_cluster):
    assert query(spark_cluster, "select current_timezone()", {"spark.sql.session.timeZone": "UTC"}) == [
        ("Europe/Amsterdam",)
    ]


@pytest.mark.parametrize(
    ("key", "value", "refusal"),
    [
        ("spark.sql.warehouse.dir", "/tmp/elsewhere", "CANNOT_MODIFY_STATIC_CONFIG"),  # a static SQL setting
        ("spark.executor.memory", "2g", "CANNOT_MODIFY_CONFIG"),  # a Spark core setting
        ("spark.sql.session.timeZone", "Not/AZone", "INVALID_CONF_VALUE.TIME_ZONE"),
    ],
)
def test_a_setting_a_session_cannot_take_refuses_the_session(spark_cluster, key, value, refusal):
    with pytest.raises(OperationalError, match=refusal):
        spark_cluster.connect({f"set:hiveconf:{key}": value})
