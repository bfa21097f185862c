"""The pitlake pages of the Airflow UI, without Airflow: what they show and the HTML.

What they read, never write: the feature definitions (:mod:`pitlake.features`), each Delta table's log
(its latest version, row count and freshness from the add actions' statistics: no data file is
scanned), ``ops.validation_results`` (only the files the log's statistics point at), the MLflow registry
with each version's lineage manifest, and the result records Airflow tasks leave under
``$PITLAKE_HOME/runs/airflow``.

- :mod:`.features`: the feature catalog; :mod:`.validations` and :mod:`.validation_pages`: validation runs;
  :mod:`.models` and :mod:`.model_pages`: registered models and a version's lineage; :mod:`.runs` and
  :mod:`.run_page`: one Airflow run; :mod:`.lake`: Delta log statistics; :mod:`.html`: the layout;
- :mod:`.app`: the FastAPI app, given its guards by the Airflow plugin (``plugins/pitlake_ui.py``).
"""
