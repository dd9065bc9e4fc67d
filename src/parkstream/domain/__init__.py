"""The functional core: events, commands, decoders' outputs and the space decider.

Nothing in this package performs I/O or reads the clock; time is an argument.
"""
