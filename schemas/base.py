"""What a table is: name, Spark schema, partitioning and the expectation suite that gates it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql.types import ArrayType, DataType, StringType, StructField, StructType

# A suite is built per run because some expectations depend on the run (its id, the reconciled counts).
SuiteBuilder = Callable[[Mapping[str, Any]], list]

# An append's check column (``jobs.gates.Output.check``): the key when the table already holds it. Suites
# expect it null when the run passes ``params["new_keys"]``.
ALREADY_IN = "_already_in"


# A chat record's messages (``udfs.chat``), in bronze, silver and the exports: role and content, in order.
MESSAGES_TYPE = ArrayType(
    StructType(
        [
            StructField("role", StringType(), False, metadata={"description": "user, assistant, system, …"}),
            StructField("content", StringType(), False, metadata={"description": "the message text"}),
        ]
    ),
    False,
)
# What ``format`` holds: a plain document, or a chat record with ``messages``.
FORMATS = ("text", "chat")


def col(name: str, dtype: DataType, nullable: bool, description: str) -> StructField:
    """A schema field with its description kept in the field metadata (shown by DESCRIBE and the docs)."""
    return StructField(name, dtype, nullable, metadata={"description": description})


@dataclass(frozen=True)
class TableSpec:
    """A table contract.

    Args:
        name: ``layer.table``, e.g. ``bronze.documents``: its SQL name and its folder under the warehouse.
        schema: the Spark schema every write must match (names and types; the suite checks nullability).
        description: one line for humans and the Delta table metadata.
        partition_by: partition columns, in order.
        suite: builds the table's Great Expectations expectations from run parameters.
    """

    name: str
    schema: StructType
    description: str
    partition_by: tuple[str, ...] = ()
    suite: SuiteBuilder | None = field(default=None, compare=False)

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def short(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def suite_name(self) -> str:
        return f"{self.name}.suite"

    @property
    def data_schema(self) -> StructType:
        """The columns stored inside the Parquet files (partition columns live in the Delta log)."""
        return StructType([f for f in self.schema.fields if f.name not in self.partition_by])

    def expectations(self, params: Mapping[str, Any] | None = None) -> list:
        """A run's expectations: not-null for every non-nullable column, the suite's own, and the row count.

        ``params["expected_rows"]`` is how a stage states its reconciliation (rows read = published +
        filtered + rejected): every table's suite then expects exactly that many staged rows.
        ``params["new_keys"]``: an append whose keys the table must not hold yet (its check fills
        ``ALREADY_IN``).
        """
        import great_expectations as gx

        params = params or {}
        exps = [
            gx.expectations.ExpectColumnValuesToNotBeNull(column=f.name)
            for f in self.schema.fields
            if not f.nullable
        ]
        if self.suite is not None:
            exps.extend(self.suite(params))
        if "expected_rows" in params:
            exps.append(gx.expectations.ExpectTableRowCountToEqual(value=params["expected_rows"]))
        if params.get("new_keys"):
            exps.append(gx.expectations.ExpectColumnValuesToBeNull(column=ALREADY_IN))
        return exps
