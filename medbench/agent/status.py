"""How a task ended: the upstream status words, plus one for replay mismatches, defined once."""

COMPLETED = "completed"
INVALID_ACTION = "agent_invalid_action"
LIMIT_REACHED = "limit_reached"
CONTEXT_LIMIT = "context_limit"
ERROR = "error"
CASSETTE_MISMATCH = "cassette_mismatch"

ALL_STATUSES = (COMPLETED, INVALID_ACTION, LIMIT_REACHED, CONTEXT_LIMIT, ERROR, CASSETTE_MISMATCH)
