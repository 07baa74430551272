"""A real Spark standalone cluster on loopback from pyspark's own jars: a master, one small worker and the Spark
Thrift server (HiveServer2) submitted to that master in client mode, every file it writes (logs, the worker's
work folder, the Derby metastore, the warehouse) under one folder. The cluster runs in a time zone that is not
UTC (Europe/Amsterdam unless told otherwise), so a model that relies on the session time zone shows it."""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyspark
import thrift_sasl
from pyhive import hive
from thrift.transport import TSocket

HOST = "127.0.0.1"
THRIFT_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
# A system property on the command line of every JVM the cluster starts (master, worker, Thrift driver and its
# executors), so its processes can be told apart from any other Spark on the machine (other suites run beside).
MARKER_PROPERTY = "mail_warehouse.spark_cluster"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child between fork and exec only calls it


class SparkClusterError(RuntimeError):
    """A part of the cluster did not start; the message holds the tail of each process's log."""


@dataclass(frozen=True)
class SparkExecutor:
    """One entry of the Thrift application's executors (its driver's REST API): "driver" or the executor's number."""

    id: str
    host_port: str
    total_tasks: int

    @property
    def is_driver(self) -> bool:
        return self.id == "driver"


def spark_home() -> Path:
    """pyspark's package folder: its bin/ scripts and jars are a Spark distribution."""
    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def read_json(url: str, timeout: float = 5) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it ends, so a test run that is killed (a CI
    timeout) leaves no cluster behind; the JVMs' shutdown hooks take their executors with them."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Process:
    """One Spark JVM in a process group of its own (the worker's executors join the worker's group), its output
    in a log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: dict[str, str], cwd: Path) -> None:
        self.name, self.command, self.log = name, command, log
        with log.open("wb") as output:
            self.popen = subprocess.Popen(
                command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                start_new_session=True, preexec_fn=_die_with_parent,
            )  # fmt: skip
        self.pgid = self.popen.pid  # a new session's leader: its pid is the group's id

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as error:
            return f"({self.log}: {error})"
        return "\n".join(text.splitlines()[-lines:])

    def group_alive(self) -> bool:
        self.popen.poll()  # reaps an exited leader, which would otherwise keep the group alive as a zombie
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def stop(self, timeout: float) -> None:
        """SIGTERM to the whole group (the JVMs' shutdown hooks stop executors and deregister), SIGKILL to
        whatever is left after `timeout`."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.group_alive():
            if time.monotonic() >= deadline:
                self._signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=10)
                return
            time.sleep(0.2)


class SparkCluster:
    """A Spark standalone master, one worker and the Thrift server on 127.0.0.1, in `folder`.

    `start()` (or `with`) returns once the master shows one ALIVE worker, an executor on it has registered with the
    Thrift driver and a HiveServer2 session answers `select 1` (a job: the Thrift server runs even that on an
    executor). `stop()` ends every process it started, also after a failed start. The ports are free ones,
    chosen at construction. Start and stop it from the thread that lives as long as it does: its processes get
    SIGTERM when that thread ends."""

    def __init__(
        self,
        folder: Path,
        *,
        time_zone: str = "Europe/Amsterdam",
        worker_cores: int = 2,
        worker_memory: str = "1g",
        executor_cores: int = 2,
        executor_memory: str = "768m",
        driver_memory: str = "768m",
        daemon_memory: str = "256m",
        start_timeout: float = 180,
        stop_timeout: float = 30,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.time_zone = time_zone
        self.worker_cores, self.worker_memory = worker_cores, worker_memory
        self.executor_cores, self.executor_memory = executor_cores, executor_memory
        self.driver_memory, self.daemon_memory = driver_memory, daemon_memory
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.host = HOST
        self.master_port, self.master_ui_port, self.worker_ui_port = free_port(), free_port(), free_port()
        self.thrift_port, self.thrift_ui_port = free_port(), free_port()
        self.spark_home = spark_home()
        # seconds from start() to each part being up: "master", "worker", "executor", "thrift"
        self.startup_seconds: dict[str, float] = {}
        self._processes: list[_Process] = []
        self._application_id: str | None = None
        self._tasks_before_use = 0

    # -- addresses ------------------------------------------------------------------------------------------

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_ui_url(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    @property
    def thrift_ui_url(self) -> str:
        """The Thrift driver's web UI and REST API (/api/v1/...)."""
        return f"http://{HOST}:{self.thrift_ui_port}"

    @property
    def warehouse_dir(self) -> Path:
        return self.folder / "warehouse"

    @property
    def metastore_home(self) -> Path:
        """Derby's system home: the metastore_db folder and derby.log are written here."""
        return self.folder / "metastore"

    @property
    def logs_dir(self) -> Path:
        return self.folder / "logs"

    @property
    def worker_dir(self) -> Path:
        return self.folder / "worker"

    # -- what runs ------------------------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """The Thrift server's environment; the master's and the worker's add their heap and Java options."""
        env = {
            **os.environ,
            "SPARK_HOME": str(self.spark_home),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOG_DIR": str(self.logs_dir),
            "SPARK_WORKER_DIR": str(self.worker_dir),
            # an empty conf folder: no spark-defaults.conf or log4j2.properties from elsewhere changes the cluster
            "SPARK_CONF_DIR": str(self.folder / "conf"),
        }
        # SPARK_DAEMON_MEMORY would also be the Thrift server's heap, over --driver-memory (spark-submit's rule
        # for a Thrift server)
        for inherited in (
            "SPARK_DAEMON_MEMORY", "SPARK_DAEMON_JAVA_OPTS", "SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS",
            "SPARK_SUBMIT_OPTS", "SPARK_DRIVER_MEMORY", "PYSPARK_SUBMIT_ARGS",
        ):  # fmt: skip
            env.pop(inherited, None)
        if "JAVA_HOME" not in env:
            java = shutil.which("java")
            if java is None:
                raise SparkClusterError(
                    "no java on PATH and no JAVA_HOME: install Java 17 (Debian: openjdk-17-jre-headless)"
                )
            env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
        return env

    def daemon_environment(self) -> dict[str, str]:
        return {
            **self.environment(),
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            "SPARK_DAEMON_JAVA_OPTS": self._java_options(),
        }

    def _marker(self) -> str:
        return f"-D{MARKER_PROPERTY}={self.folder}"

    def _java_options(self) -> str:
        return f"{self._marker()} -Duser.timezone={self.time_zone}"

    def master_command(self) -> list[str]:
        return [
            str(self.spark_home / "bin" / "spark-class"),
            "org.apache.spark.deploy.master.Master",
            "--host", HOST,
            "--port", str(self.master_port),
            "--webui-port", str(self.master_ui_port),
        ]  # fmt: skip

    def worker_command(self) -> list[str]:
        return [
            str(self.spark_home / "bin" / "spark-class"),
            "org.apache.spark.deploy.worker.Worker",
            "--host", HOST,
            "--webui-port", str(self.worker_ui_port),
            "--cores", str(self.worker_cores),
            "--memory", self.worker_memory,
            "--work-dir", str(self.worker_dir),
            self.master_url,
        ]  # fmt: skip

    def thrift_confs(self) -> dict[str, str]:
        return {
            "spark.sql.warehouse.dir": str(self.warehouse_dir),
            "spark.driver.extraJavaOptions": f"{self._java_options()} -Dderby.system.home={self.metastore_home}",
            "spark.executor.extraJavaOptions": self._java_options(),
            "spark.sql.session.timeZone": self.time_zone,
            "spark.executor.cores": str(self.executor_cores),
            "spark.executor.memory": self.executor_memory,
            # one executor: without a cap the master would start as many as the worker's cores allow
            "spark.cores.max": str(self.executor_cores),
            "spark.driver.host": HOST,
            "spark.driver.bindAddress": HOST,
            "spark.ui.enabled": "true",
            "spark.ui.port": str(self.thrift_ui_port),
            "spark.ui.showConsoleProgress": "false",
            # a taken port is an error to see, not a silent move to the next port, where no one looks
            "spark.port.maxRetries": "0",
        }

    def thrift_command(self) -> list[str]:
        confs = [part for key, value in self.thrift_confs().items() for part in ("--conf", f"{key}={value}")]
        return [
            str(self.spark_home / "bin" / "spark-submit"),
            "--class", THRIFT_SERVER_CLASS,
            "--master", self.master_url,
            "--deploy-mode", "client",
            "--name", "mail_warehouse Thrift server",
            "--driver-memory", self.driver_memory,
            *confs,
            "spark-internal",
            "--hiveconf", f"hive.server2.thrift.port={self.thrift_port}",
            "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
        ]  # fmt: skip

    # -- start and stop -------------------------------------------------------------------------------------

    def start(self) -> SparkCluster:
        for folder in (self.logs_dir, self.worker_dir, self.metastore_home, self.warehouse_dir, self.folder / "conf"):
            folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            master = self._launch("master", self.master_command(), self.daemon_environment())
            self._wait("master", "the master's web UI to answer", master, self._master_answers, started)
            worker = self._launch("worker", self.worker_command(), self.daemon_environment())
            # the Thrift server starts beside the worker: the master gives its application an executor as soon
            # as the worker registers
            thrift = self._launch("thriftserver", self.thrift_command(), self.environment())
            self._wait("worker", "1 ALIVE worker on the master", worker, self._worker_alive, started)
            self._wait("executor", "an executor to register with the Thrift driver", thrift, self._executor_up, started)
            self._wait("thrift", f"`select 1` on {HOST}:{self.thrift_port}", thrift, self._thrift_answers, started)
            self._wait("thrift", "the driver to count the `select 1` task", thrift, self._probe_counted, started)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """The Thrift server first (its application ends cleanly), then the worker and its executors, then the
        master."""
        while self._processes:
            self._processes.pop().stop(self.stop_timeout)

    def __enter__(self) -> SparkCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _launch(self, name: str, command: list[str], env: dict[str, str]) -> _Process:
        process = _Process(name, command, self.logs_dir / f"{name}.log", env, self.folder)
        self._processes.append(process)
        return process

    def _wait(self, part: str, what: str, process: _Process, ready: Callable[[], bool], started: float) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            for launched in self._processes:
                if launched.exited():
                    raise SparkClusterError(
                        f"Spark's {launched.name} exited with {launched.popen.returncode} while waiting for "
                        f"{what}; its log: {launched.log}\n{self.log_tails()}"
                    )
            try:
                if ready():
                    self.startup_seconds[part] = time.monotonic() - started
                    return
            except Exception as error:  # not up yet: connection refused, a half-started server, ...
                last_error = error
            time.sleep(0.5)
        raise SparkClusterError(
            f"timed out after {self.start_timeout:.0f} s waiting for {what} (Spark's {process.name}, log "
            f"{process.log}); last error: {last_error!r}\n{self.log_tails()}"
        )

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {process.name} ({process.log}), last {lines} lines:\n{process.tail(lines)}"
            for process in self._processes
        )

    def _master_answers(self) -> bool:
        return self.master_status().get("status") == "ALIVE"

    def _worker_alive(self) -> bool:
        workers = self.master_status().get("workers", [])
        return sum(worker.get("state") == "ALIVE" for worker in workers) == 1

    def _executor_up(self) -> bool:
        return any(not executor.is_driver for executor in self.executors())

    def _thrift_answers(self) -> bool:
        # a plain connect first: thrift logs every refused connection as an error
        socket.create_connection((HOST, self.thrift_port), timeout=5).close()
        with (
            contextlib.closing(self.connect(timeout=60)) as connection,
            contextlib.closing(connection.cursor()) as cursor,
        ):
            cursor.execute("select 1")
            return cursor.fetchall() == [(1,)]

    def _probe_counted(self) -> bool:
        self._tasks_before_use = self._worker_tasks_in_total()
        return self._tasks_before_use > 0

    # -- what it exposes ------------------------------------------------------------------------------------

    def connect(self, configuration: dict[str, str] | None = None, timeout: float | None = None) -> hive.Connection:
        """A PyHive connection to the Thrift server, a new Spark session each (the server is not single-session);
        `configuration` is sent with the session's opening, as dbt-spark's `server_side_parameters` are. The
        transport is PyHive's own for hive.server2.authentication NONE (SASL PLAIN), built here only to give its
        socket a `timeout` (seconds per read): without one, a port that accepts but never answers hangs."""
        username = getpass.getuser()
        thrift_socket = TSocket.TSocket(HOST, self.thrift_port)
        thrift_socket.setTimeout(None if timeout is None else timeout * 1000)
        transport = thrift_sasl.TSaslClientTransport(
            lambda: hive.get_installed_sasl(host=HOST, sasl_auth="PLAIN", username=username, password="x"),
            "PLAIN",
            thrift_socket,
        )
        return hive.connect(thrift_transport=transport, username=username, configuration=configuration)

    def master_status(self) -> dict:
        """The master's JSON (/json/): status, workers with their state and cores, applications."""
        status = read_json(f"{self.master_ui_url}/json/")
        assert isinstance(status, dict)
        return status

    def application_id(self) -> str:
        """The Thrift server's application id, from its driver's REST API."""
        if self._application_id is None:
            applications = read_json(f"{self.thrift_ui_url}/api/v1/applications")
            assert isinstance(applications, list)
            if not applications:
                raise SparkClusterError(f"the Thrift driver ({self.thrift_ui_url}) lists no application yet")
            self._application_id = applications[0]["id"]
        return self._application_id

    def executors(self, *, include_dead: bool = False) -> list[SparkExecutor]:
        """The Thrift application's executors, the driver included, from its driver's REST API: the active ones,
        or every one it has had."""
        endpoint = "allexecutors" if include_dead else "executors"
        entries = read_json(f"{self.thrift_ui_url}/api/v1/applications/{self.application_id()}/{endpoint}")
        assert isinstance(entries, list)
        return [
            SparkExecutor(id=entry["id"], host_port=entry["hostPort"], total_tasks=entry["totalTasks"])
            for entry in entries
        ]

    def _worker_tasks_in_total(self) -> int:
        return sum(executor.total_tasks for executor in self.executors(include_dead=True) if not executor.is_driver)

    def worker_tasks(self) -> int:
        """Tasks executors other than the driver have run since start() returned (its own `select 1` not counted)."""
        return self._worker_tasks_in_total() - self._tasks_before_use

    def worker_ran_tasks(self, timeout: float = 10) -> bool:
        """Whether an executor that is not the driver has run a task since start() returned. The driver's status
        store is fed by an asynchronous listener, so a query that has just returned may show a moment later: this
        waits up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        while self.worker_tasks() == 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)
        return True

    def running_pids(self) -> list[int]:
        """This cluster's JVMs that still run: `pgrep -f org.apache.spark`, narrowed to the processes whose command
        line carries this cluster's marker (any other Spark on the machine is not ours)."""
        found = subprocess.run(["pgrep", "-f", "org.apache.spark"], capture_output=True, text=True, check=False)
        marker = self._marker().encode()
        pids = []
        for pid in map(int, found.stdout.split()):
            with contextlib.suppress(OSError):  # ended in the meantime
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                    pids.append(pid)
        return pids
