"""Models fitted on the features: PCA and the classifier (Spark ML), their refit policy,
and the saved models applied with NumPy."""
