"""Spark plumbing of the job: the file listing, the CNN inside Spark, the feature store."""
