"""``parkstream dev``: the whole system on one machine, under one supervisor."""
