"""What the shop's feeds are: the bronze tables' schemas and the vocabularies ingestion enforces.

The demo generator writes data in this vocabulary; ingestion checks against it. Neither imports the
other, so ingesting a real feed never loads the demo (or numpy).
"""
