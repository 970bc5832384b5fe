"""The machinery every provider shares: the contract, the driver and orchestrator, the
job window, limits, HTTP, keys, claims, prices."""
