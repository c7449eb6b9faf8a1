"""Decision-side models: tokens, grants, data keys (built with the decision API)."""
