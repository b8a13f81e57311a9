"""Studies: one run per model x seed, on one machine or a Ray cluster, summarised with its spread over seeds."""
