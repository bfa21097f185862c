"""Airflow integration: the only place in the library that imports Airflow."""
