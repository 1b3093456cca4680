"""One SparkSession for the whole suite, lakehouses under tmp_path, small builders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    from jobs.config import SparkConf
    from jobs.session import get_spark

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    conf = SparkConf(master="local[2]", shuffle_partitions=2, ui=False, progress=False, log_level="ERROR")
    session = get_spark(conf)
    yield session
    session.stop()


@pytest.fixture
def lakehouse(spark, tmp_path):
    from jobs.tables import EmbeddedLakehouse

    return EmbeddedLakehouse(spark, str(tmp_path / "wh"))


def write_conf(path: Path, warehouse: Path, inputs: list[dict], **ingest) -> Path:
    """A profile for tests: local[2] Spark, a temp warehouse, the given inputs."""
    data = {
        "profile": "test",
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
        "storage": {"engine": "embedded", "warehouse": str(warehouse)},
        "ingest": {"inputs": inputs, **ingest},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def python() -> str:
    return sys.executable
