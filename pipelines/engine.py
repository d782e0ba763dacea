"""The ``--engine`` and ``--spark-master`` options shared by the commands that can run on Spark.

Declared here, apart from :mod:`pipelines.spark`, so that a command run with the default Polars
engine never imports PySpark.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import typer

__all__ = ["DEFAULT_MASTER", "SPARK_EXTRA", "Engine", "EngineOption", "SparkMasterOption"]

DEFAULT_MASTER: Final = "local[*]"
"""Spark master used when none is given: every core of this machine."""

SPARK_EXTRA: Final = "pip install 'guanxi[spark]'"
"""How to install PySpark for ``--engine spark`` (the ``spark`` extra); Java 17 is needed too."""

Engine = Literal["polars", "spark"]
"""Where a job runs: in this process with Polars, or on Spark (:mod:`pipelines.spark`)."""

EngineOption = Annotated[
    Engine,
    typer.Option(
        "--engine",
        # "\\[": --help reads Rich markup, where a bare "[spark]" is a style tag and vanishes
        help="polars: in this process; spark: on the Spark master of --spark-master "
        "(needs the guanxi\\[spark] extra and Java 17).",
    ),
]

SparkMasterOption = Annotated[
    str,
    typer.Option(
        "--spark-master",
        help="Spark master URL for --engine spark: local[*], local[2], spark://host:7077, yarn.",
    ),
]
