"""Table contracts: one module per table group, each with Spark schema, partitioning and expectation suite."""

from schemas.base import TableSpec

__all__ = ["TableSpec"]
