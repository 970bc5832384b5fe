"""Beam building blocks: read prompts, generate (the DoFn around the orchestrator),
store media, the job ledger, write the results table."""
