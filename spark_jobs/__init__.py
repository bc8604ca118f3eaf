"""Standalone PySpark scripts submitted with ``spark-submit``; they read and write ``webhdfs://`` paths only."""
