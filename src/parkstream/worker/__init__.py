"""The stream worker: thin Faust agents around the pure decider."""
