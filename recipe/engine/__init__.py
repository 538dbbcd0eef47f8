"""Execution on DuckDB: a cache database of materialised nodes, run and resumed step by step."""
