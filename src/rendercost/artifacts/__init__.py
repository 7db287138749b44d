"""Where images live: a local folder or an S3-compatible bucket. Knows nothing of jobs or money."""
