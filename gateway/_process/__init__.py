"""Process facts below everything that serves: worker processes and prometheus-client's
multiprocess mode (`workers`), and the garbage-collector policy applied after startup (`gc`).

Imports: nothing of the gateway (the standard library and prometheus-client only).
"""
